# Sourced by test scripts: starts an interop peer from this directory.
#
#   start_peer node|python      sets PEER_PID and PEER_PORTS (the JSON line)
#   peer_port KEY               prints one port from PEER_PORTS (plain, good, ...)
#   stop_peer                   kills it (also done by an EXIT trap you set)
#
# The peer's stdin is a pipe this shell holds open, so the peer also exits
# when the script does, even if it is killed before its trap runs.
interop_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

start_peer() {
  local kind=$1 tmp cmd
  tmp=$(mktemp -d)
  mkfifo "$tmp/in" "$tmp/out"
  case $kind in
  node) cmd=(node "$interop_dir/node_server.js" "$interop_dir/certs") ;;
  python) cmd=("$interop_dir/venv/bin/python" "$interop_dir/py_server.py" "$interop_dir/certs") ;;
  *) echo "start_peer: unknown peer '$kind'" >&2; return 1 ;;
  esac
  WEBSOCKETS_MAX_FRAGMENTS=1000000 "${cmd[@]}" <"$tmp/in" >"$tmp/out" &
  PEER_PID=$!
  exec 8>"$tmp/in" 9<"$tmp/out"
  rm -rf "$tmp"
  if ! read -r -t 30 PEER_PORTS <&9; then
    echo "start_peer: the $kind server did not start" >&2
    return 1
  fi
}

peer_port() {
  python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$PEER_PORTS" "$1"
}

stop_peer() {
  if [[ -n ${PEER_PID:-} ]]; then
    exec 8>&- 9<&-
    kill "$PEER_PID" 2>/dev/null || true
    wait "$PEER_PID" 2>/dev/null || true
    PEER_PID=
  fi
}
