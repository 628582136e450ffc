#!/usr/bin/env bash
# Runs every C/C++ example and the C API tests twice: under valgrind (no
# memory errors, nothing definitely lost) and built with AddressSanitizer,
# against loopback servers this script starts itself (examples/echo_server).
#
#   c-examples/check.sh                 # release library (target/release)
#   PROFILE=debug c-examples/check.sh   # debug library
#   WSC_CYCLES=200 c-examples/check.sh  # fewer connect/close cycles
#
# Logs: c-examples/build/check-logs/. Exit status: number of failed runs.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
PROFILE=${PROFILE:-release}
LOGS=$HERE/build/check-logs
VALGRIND=(valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
          --show-leak-kinds=definite --suppressions="$HERE/valgrind.supp" --quiet)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}

profile_flag=()
[ "$PROFILE" = release ] && profile_flag=(--release)
cargo build "${profile_flag[@]}" --manifest-path "$ROOT/Cargo.toml" --lib --example echo_server
make -s -C "$HERE" PROFILE="$PROFILE"
make -s -C "$HERE" PROFILE="$PROFILE" SAN=address
mkdir -p "$LOGS"

# The servers print two lines ("echo URL", "extra URL") and run until killed.
fifo=$(mktemp -u)
mkfifo "$fifo"
"$ROOT/target/$PROFILE/examples/echo_server" >"$fifo" &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null; rm -f "$fifo"' EXIT
exec 3<"$fifo"
read -r -t 30 _ ECHO <&3
read -r -t 30 _ EXTRA <&3
echo "servers: $ECHO $EXTRA"

failed=0
# run LABEL STDIN_TEXT COMMAND...: runs it, keeps the log, reports.
run() {
    local label=$1 input=$2
    shift 2
    local log="$LOGS/$label.log"
    if printf '%b' "$input" | timeout 600 "$@" >"$log" 2>&1; then
        echo "PASS $label"
    else
        echo "FAIL $label (exit $?; log $log)"
        tail -n 30 "$log" | sed 's/^/    /'
        failed=$((failed + 1))
    fi
}

# run_all MODE BUILD_DIR PREFIX...: every program, under PREFIX (valgrind or nothing).
run_all() {
    local mode=$1 build=$2
    shift 2
    run "$mode-echo_client" "" "$@" "$build/echo_client" "$ECHO"
    run "$mode-echo_client_static" "" "$@" "$build/echo_client_static" "$ECHO"
    run "$mode-flow_control" "" "$@" "$build/flow_control" "$ECHO"
    run "$mode-cpp_client" "" "$@" "$build/cpp_client" "$ECHO"
    run "$mode-cpp_api_test" "" "$@" "$build/cpp_api_test" "$ECHO" "$EXTRA"
    run "$mode-handler" "" "$@" "$build/handler" "$ECHO"
    run "$mode-handler_both" "" "$@" "$build/handler"
    run "$mode-wscat" 'one\ntwo\n' "$@" "$build/wscat" -n 2 "$ECHO"
    run "$mode-dlopen_client" "" "$@" "$build/dlopen_client" "$ECHO" "$build/lib/libwsc.so" 3
    run "$mode-c_api_test" "" "$@" "$build/c_api_test" "$ECHO" "$EXTRA"
    run "$mode-race_test" "" "$@" "$build/race_test" "$ECHO" 150
    run "$mode-exit_test" "" "$@" "$build/exit_test" "$ECHO"
    run "$mode-memory_test" "" "$@" "$build/memory_test" "$ECHO"
    run "$mode-server_test" "" "$@" "$build/server_test"
    run "$mode-reconnect_test" "" "$@" "$build/reconnect_test"
    run "$mode-loop_poll" "" "$@" "$build/loop_poll" "$ECHO" 50
    run "$mode-loop_libuv" "" "$@" "$build/loop_libuv" "$ECHO" 50
    run "$mode-loop_glib" "" "$@" "$build/loop_glib" "$ECHO" 50
    run "$mode-observe_test" "" "$@" "$build/observe_test" "$ECHO"
}

run_all valgrind "$HERE/build" "${VALGRIND[@]}"
run_all asan "$HERE/build-address" env

echo "$failed run(s) failed"
exit "$failed"
