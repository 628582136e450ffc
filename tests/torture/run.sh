#!/usr/bin/env bash
# API torture through the C API (c-examples/torture.c) against an
# independent server (Node ws, from tests/interop), then a shorter run under
# valgrind's helgrind.
#
#   tests/torture/run.sh
#
# TORTURE_SECONDS (default 10; 30 when CI=true) and TORTURE_THREADS (8) size
# the main run; HELGRIND_SECONDS (default 3) the helgrind one. Without Node,
# the peers or valgrind it fails when CI=true and otherwise says loudly that
# it skipped.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
ci=${CI:-}
seconds=${TORTURE_SECONDS:-$([[ $ci == true ]] && echo 30 || echo 10)}
threads=${TORTURE_THREADS:-8}
hg_seconds=${HELGRIND_SECONDS:-3}
bin=$root/target/torture/torture

unavailable() {
  if [[ $ci == true ]]; then
    echo "torture: FAILED: $1 (CI=true: a missing prerequisite is a failure)" >&2
    exit 1
  fi
  printf '\n*** TORTURE SKIPPED: %s ***\n\n' "$1" >&2
  exit 0
}

command -v node >/dev/null || unavailable "node not found (the peer is Node ws)"
"$root/tests/interop/setup.sh" || unavailable "tests/interop/setup.sh failed"

echo "torture: building libwsc (release) and c-examples/torture.c"
(cd "$root" && cargo build --release --lib --quiet)
mkdir -p "$(dirname "$bin")"
cc -g -O1 -std=c99 -Wall -Wextra -Werror -I"$root/include" "$root/c-examples/torture.c" \
  -L"$root/target/release" -lwsc -lpthread -Wl,-rpath,"$root/target/release" -o "$bin"

# shellcheck source=../interop/lib.sh
source "$root/tests/interop/lib.sh"
trap stop_peer EXIT
start_peer node
base="ws://127.0.0.1:$(peer_port plain)"

echo "torture: $threads threads for $seconds s against Node ws at $base"
timeout $((seconds + 120)) "$bin" "$base" "$seconds" "$threads"

# With reconnect on, against a peer that is killed (SIGKILL) and restarted
# on the same port at random moments: the same invariants.
r_seconds=${TORTURE_RECONNECT_SECONDS:-$([[ $ci == true ]] && echo 15 || echo 5)}
py=$root/tests/interop/venv/bin/python
pyout=$(mktemp)
start_py() { "$py" "$root/tests/interop/py_echo.py" "$1" >"$pyout" 2>/dev/null & pypid=$!; }
start_py 0
for _ in $(seq 200); do grep -q port "$pyout" && break; sleep 0.05; done # its port, once listening
port=$(tr -dc 0-9 <"$pyout")
[[ -n $port ]] || unavailable "the Python websockets peer did not start"
echo "torture: reconnect on, $threads threads for $r_seconds s; the peer on port $port is killed and restarted at random"
TORTURE_RECONNECT=1 timeout $((r_seconds + 120)) "$bin" "ws://127.0.0.1:$port" "$r_seconds" "$threads" &
tpid=$!
kills=0
while kill -0 "$tpid" 2>/dev/null; do
  sleep "0.$((RANDOM % 9 + 1))" # chaos pacing, not synchronisation
  kill -9 "$pypid" 2>/dev/null || true
  wait "$pypid" 2>/dev/null || true
  kills=$((kills + 1))
  start_py "$port"
done
wait "$tpid" || { kill -9 "$pypid" 2>/dev/null; echo "torture: FAILED with reconnect on"; exit 1; }
kill -9 "$pypid" 2>/dev/null || true
rm -f "$pyout"
echo "torture: reconnect run passed ($kills kills of the peer)"

if ! command -v valgrind >/dev/null; then
  unavailable "valgrind not found: the helgrind run did not happen (the main run PASSED)"
fi
log=$root/target/torture/helgrind.log
echo "torture: 2 threads for $hg_seconds s under helgrind (log: target/torture/helgrind.log)"
timeout $((hg_seconds * 20 + 300)) valgrind --tool=helgrind --error-limit=no --log-file="$log" \
  "$bin" "$base" "$hg_seconds" 2
python3 "$here/valgrind_races.py" "$log" "$bin"
echo "torture: PASSED"
