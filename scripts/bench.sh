#!/usr/bin/env bash
# Builds wsc and the benchmark in release mode, builds the C twin of the
# C ABI row, and runs the benchmark, printing the markdown table on stdout
# (progress goes to stderr). Any argument is passed on to the benchmark:
#
#   scripts/bench.sh               # the full run (about 10 minutes)
#   scripts/bench.sh --quick       # tiny counts: does it all still work?
#   scripts/bench.sh --url ws://127.0.0.1:9001/   # an external echo server
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

cargo build --release --lib --example bench >&2
c_args=()
if command -v cc >/dev/null && [ -f include/wsc.h ]; then
    cc -O2 -std=c99 -Wall -Wextra -Werror -Iinclude c-examples/bench.c \
        -Ltarget/release -lwsc -lpthread -Wl,-rpath,"$root/target/release" \
        -o target/release/bench_c >&2
    c_args=(--c-bench "$root/target/release/bench_c")
else
    echo "bench.sh: no C compiler or header: row (d) calls the C ABI from Rust" >&2
fi
echo "bench.sh: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')" >&2
exec target/release/examples/bench "${c_args[@]}" "$@"
