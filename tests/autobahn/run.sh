#!/usr/bin/env bash
# Autobahn|Testsuite (RFC 6455 conformance) against wsc, both sides.
#
#   tests/autobahn/run.sh [ws] [wss] [server] [server-wss]   (default: all four)
#
# ws, wss: wsc as a client through its C API. Builds libwsc (release) and
#   c-examples/autobahn_client.c, starts `wstest -m fuzzingserver` on
#   127.0.0.1 only (wstest_loopback.py) and lets the client run every case.
# server: wsc as a server. Starts the demo's endpoint server
#   (`target/release/examples/demo --serve PORT`: endpoint `echo`, whose
#   handler echoes every message) on 127.0.0.1 and runs `wstest -m
#   fuzzingclient` against ws://127.0.0.1:PORT/websockets/v4/service/echo.
# server-wss: the same over TLS: `demo --serve PORT --tls good.pem good.key`
#   (the test PKI of tests/interop/gen-certs.sh) and the fuzzingclient against
#   wss://127.0.0.1:PORT/websockets/v4/service/echo. The fuzzingclient (Twisted's
#   ClientContextFactory) does not verify certificates; wstest_loopback.py makes
#   it verify the chain against the test CA (AUTOBAHN_CLIENT_CA).
#
# Installs the suite (Python 2.7 only) into tests/autobahn/venv, runs every
# case but 12.* and 13.* (permessage-deflate, which wsc does not offer), then
# prints a summary and compares each case with expected-<mode>.json.
#
# Fails on any FAILED or UNIMPLEMENTED case, a missing case, or a result that
# differs from the expected file. Without Python 2.7 or the suite it fails
# when CI=true and otherwise says loudly that it was skipped.
#
# Environment: AUTOBAHN_PYTHON2 (the python2.7 to use), AUTOBAHN_CASES (a
# comma-separated case list for a quick run, e.g. "1.*,5.*": the expected
# comparison is skipped then), AUTOBAHN_UPDATE_EXPECTED=1 (rewrite the
# expected files from this run).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venv=$here/venv
reports=$here/reports
modes=("$@")
[[ ${#modes[@]} -gt 0 ]] || modes=(ws wss server server-wss)

unavailable() {
  if [[ ${CI:-} == true ]]; then
    echo "autobahn: FAILED: $1 (CI=true: a missing prerequisite is a failure)" >&2
    exit 1
  fi
  printf '\n*** AUTOBAHN SKIPPED: %s ***\n\n' "$1" >&2
  exit 0
}

find_python2() {
  local p
  for p in "${AUTOBAHN_PYTHON2:-}" "$HOME/.pyenv/versions/2.7.18/bin/python2.7" \
    "$(command -v python2.7 || true)"; do
    [[ -n $p && -x $p ]] && { echo "$p"; return 0; }
  done
  return 1
}

install_suite() {
  [[ -x $venv/py2/bin/wstest ]] && return 0
  local py2
  py2=$(find_python2) || unavailable "no Python 2.7 found (autobahntestsuite is Python 2 only; set AUTOBAHN_PYTHON2)"
  echo "autobahn: installing autobahntestsuite into tests/autobahn/venv (Python 2.7: $py2)"
  {
    python3 -m venv "$venv/tool" &&
      "$venv/tool/bin/pip" install -q --disable-pip-version-check virtualenv==20.21.1 &&
      "$venv/tool/bin/virtualenv" -q -p "$py2" "$venv/py2" &&
      "$venv/py2/bin/pip" install -q --disable-pip-version-check --no-python-version-warning autobahntestsuite
  } 2>&1 | grep -v DEPRECATION || true
  [[ -x $venv/py2/bin/wstest ]] || unavailable "installing autobahntestsuite failed"
}

build_driver() {
  echo "autobahn: building libwsc and the demo (release) and c-examples/autobahn_client.c"
  (cd "$root" && cargo build --release --lib --example demo --quiet)
  mkdir -p "$root/target/autobahn"
  cc -std=c99 -Wall -Wextra -Werror -I"$root/include" "$root/c-examples/autobahn_client.c" \
    -L"$root/target/release" -lwsc -lpthread -Wl,-rpath,"$root/target/release" \
    -o "$root/target/autobahn/autobahn_client"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Waits until the server on PORT (process PID: the fuzzingserver or wsc's
# endpoint server) accepts connections, or has died.
wait_listening() {
  local port=$1 pid=$2
  python3 - "$port" "$pid" <<'EOF'
import os, socket, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
deadline = time.time() + 60
while time.time() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("the server exited before listening")
    try:
        socket.create_connection(("127.0.0.1", port), 0.5).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit("the server did not listen within 60 s")
EOF
}

server_pid=
stop_server() {
  if [[ -n $server_pid ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
  fi
}
trap stop_server EXIT

cases_json() {
  local list=${AUTOBAHN_CASES:-*}
  python3 -c 'import json,sys; print(json.dumps(sys.argv[1].split(",")))' "$list"
}

run_mode() {
  local mode=$1 port dir url ca=() started
  port=$(free_port)
  dir=$reports/$mode
  rm -rf "$dir" && mkdir -p "$dir"
  if [[ $mode == wss ]]; then
    url="wss://localhost:$port"
    ca=("$certs/ca.pem")
    printf '{"url": "wss://127.0.0.1:%s", "key": "%s", "cert": "%s",' "$port" "$certs/good.key" "$certs/good.pem"
  else
    url="ws://127.0.0.1:$port"
    printf '{"url": "ws://127.0.0.1:%s",' "$port"
  fi >"$dir/fuzzingserver.json"
  printf ' "outdir": "./clients", "cases": %s, "exclude-cases": ["12.*", "13.*"], "exclude-agent-cases": {}}\n' \
    "$(cases_json)" >>"$dir/fuzzingserver.json"

  echo "autobahn: $mode: fuzzingserver on 127.0.0.1:$port"
  (cd "$dir" && exec "$venv/py2/bin/python" "$here/wstest_loopback.py" -m fuzzingserver \
    -s fuzzingserver.json -u 0 >server.log 2>&1) &
  server_pid=$!
  wait_listening "$port" "$server_pid" || { tail -20 "$dir/server.log"; return 1; }

  started=$(date +%s)
  local driver_rc=0
  timeout 1200 "$root/target/autobahn/autobahn_client" "$url" "${ca[@]}" >"$dir/client.log" 2>&1 || driver_rc=$?
  stop_server
  echo "autobahn: $mode: driver finished in $(($(date +%s) - started)) s (exit $driver_rc; log: tests/autobahn/reports/$mode/client.log)"
  [[ $driver_rc -eq 0 ]] || { tail -20 "$dir/client.log"; return 1; }

  check_results "$mode" "$dir/clients/index.json"
}

# Compares a report (index.json) with expected-<mode>.json, or with
# AUTOBAHN_CASES set only checks that no case FAILED or is UNIMPLEMENTED.
check_results() {
  local mode=$1 index=$2
  local args=("$index" "$here/expected-$mode.json")
  [[ ${AUTOBAHN_UPDATE_EXPECTED:-} == 1 ]] && args+=(--update)
  if [[ -n ${AUTOBAHN_CASES:-} ]]; then
    echo "autobahn: $mode: AUTOBAHN_CASES set: only FAILED/UNIMPLEMENTED are checked"
    python3 - "$index" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))["wsc"]
bad = sorted(c for c, v in r.items() if {v["behavior"], v["behaviorClose"]} & {"FAILED", "UNIMPLEMENTED"})
print("  %d cases, %d FAILED/UNIMPLEMENTED %s" % (len(r), len(bad), " ".join(bad)))
sys.exit(1 if bad else 0)
EOF
    return
  fi
  python3 "$here/summary.py" "${args[@]}"
}

# wsc as a server: the demo's endpoint server (endpoint `echo`) on
# 127.0.0.1, and the fuzzingclient connecting to it; server-wss: over TLS.
run_server_mode() {
  local mode=$1 port dir url started tls=() scheme=ws
  port=$(free_port)
  dir=$reports/$mode
  rm -rf "$dir" && mkdir -p "$dir"
  if [[ $mode == server-wss ]]; then
    scheme=wss
    tls=(--tls "$certs/good.pem" "$certs/good.key")
  fi
  url="$scheme://127.0.0.1:$port/websockets/v4/service/echo"
  # "hostname" (wss://): the fuzzingclient verifies the certificate for it.
  printf '{"outdir": "./servers", "servers": [{"agent": "wsc", "url": "%s"%s}], "cases": %s, "exclude-cases": ["12.*", "13.*"], "exclude-agent-cases": {}}\n' \
    "$url" "${tls:+, \"hostname\": \"127.0.0.1\"}" "$(cases_json)" >"$dir/fuzzingclient.json"

  echo "autobahn: $mode: wsc endpoint server (examples/demo.rs --serve ${tls[*]}) at $url"
  "$root/target/release/examples/demo" --serve "$port" "${tls[@]}" >"$dir/server.log" 2>&1 &
  server_pid=$!
  wait_listening "$port" "$server_pid" || { tail -20 "$dir/server.log"; return 1; }

  started=$(date +%s)
  local client_rc=0
  (cd "$dir" && AUTOBAHN_CLIENT_CA=$certs/ca.pem exec timeout 1800 "$venv/py2/bin/python" "$here/wstest_loopback.py" -m fuzzingclient \
    -s fuzzingclient.json >client.log 2>&1) || client_rc=$?
  # The server must still be serving after every case.
  local alive=0
  kill -0 "$server_pid" 2>/dev/null || alive=$?
  stop_server
  echo "autobahn: $mode: fuzzingclient finished in $(($(date +%s) - started)) s (exit $client_rc; logs: tests/autobahn/reports/$mode/{client,server}.log)"
  [[ $client_rc -eq 0 ]] || { tail -20 "$dir/client.log"; return 1; }
  [[ $alive -eq 0 ]] || { echo "autobahn: $mode: the wsc server died during the run"; tail -20 "$dir/server.log"; return 1; }
  check_results "$mode" "$dir/servers/index.json"
}

install_suite
build_driver
certs=$root/tests/interop/certs
"$root/tests/interop/gen-certs.sh" "$certs" >/dev/null

status=0
for mode in "${modes[@]}"; do
  case $mode in
  ws | wss) run_mode "$mode" || status=1 ;;
  server | server-wss) run_server_mode "$mode" || status=1 ;;
  *) echo "unknown mode '$mode' (ws, wss, server or server-wss)" >&2; exit 2 ;;
  esac
done
if [[ $status -eq 0 ]]; then
  echo "autobahn: PASSED (${modes[*]})"
else
  echo "autobahn: FAILED (${modes[*]})"
fi
exit $status
