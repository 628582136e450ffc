#!/usr/bin/env bash
# Builds wsc and the benchmark in release mode, builds the C twin of the
# C ABI rows and the clients of the libraries wsc is compared with
# (libwebsockets, websocketpp), and runs the benchmark, printing the markdown
# table on stdout (progress goes to stderr). Any argument is passed on to the
# benchmark:
#
#   scripts/bench.sh               # the full run (about 12 minutes)
#   scripts/bench.sh --quick       # tiny counts: does it all still work?
#   scripts/bench.sh --url ws://127.0.0.1:9001/   # an external echo server
#
# A library that is not installed (Debian: libwebsockets-dev;
# libwebsocketpp-dev and libasio-dev) leaves its rows out, with a note here;
# with CI=true it fails the run instead, so CI cannot lose rows unnoticed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/target/release
warn=(-O2 -Wall -Wextra -Werror -Iinclude)

cargo build --release --lib --example bench >&2
missing() {
    echo "bench.sh: $*" >&2
    if [ "${CI:-}" = true ]; then exit 1; fi
}
# stale OUT SOURCE: OUT is missing or older than SOURCE or a header it includes.
stale() {
    local f
    for f in "$2" c-examples/benchutil.h c-examples/testutil.h include/wsc.h; do
        [ "$1" -nt "$f" ] || return 0
    done
    return 1
}

c_args=()
if command -v cc >/dev/null && [ -f include/wsc.h ]; then
    cc -std=c99 "${warn[@]}" c-examples/bench.c -L"$out" -lwsc -lpthread -Wl,-rpath,"$out" \
        -o "$out/bench_c" >&2
    c_args=(--c-bench "$out/bench_c")
else
    missing "no C compiler or header: rows (d) call the C ABI from Rust"
fi

if command -v cc >/dev/null && pkg-config --exists libwebsockets 2>/dev/null; then
    # shellcheck disable=SC2046 # pkg-config prints separate words
    cc -std=c99 "${warn[@]}" $(pkg-config --cflags libwebsockets) c-examples/bench_lws.c \
        $(pkg-config --libs libwebsockets) -lpthread -o "$out/bench_lws" >&2
    c_args+=(--lws "$out/bench_lws")
else
    missing "no libwebsockets (apt-get install libwebsockets-dev): its rows are left out"
fi

# websocketpp and standalone asio are header-only, without pkg-config files.
wspp_flags=(-std=c++17 -DASIO_STANDALONE -D_WEBSOCKETPP_CPP11_STL_)
if command -v c++ >/dev/null &&
    printf '#include <asio.hpp>\n#include <websocketpp/client.hpp>\n' |
    c++ "${wspp_flags[@]}" -E -x c++ - >/dev/null 2>&1; then
    if stale "$out/bench_wspp" c-examples/bench_wspp.cpp; then
        echo "bench.sh: compiling c-examples/bench_wspp.cpp (about 30 s)" >&2
        c++ "${wspp_flags[@]}" "${warn[@]}" c-examples/bench_wspp.cpp -lpthread -o "$out/bench_wspp" >&2
    fi
    c_args+=(--wspp "$out/bench_wspp")
else
    missing "no websocketpp or asio (apt-get install libwebsocketpp-dev libasio-dev): its rows are left out"
fi

echo "bench.sh: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')" >&2
exec "$out/examples/bench" "${c_args[@]}" "$@"
