#!/usr/bin/env bash
# Installs the independent peers for tests/interop.rs into the build tree:
#   tests/interop/venv          Python `websockets` 17.x (requirements.txt)
#   tests/interop/node_modules  Node `ws` 8.x (package.json)
#   tests/interop/certs         the test PKI (gen-certs.sh)
#   websocat                    `cargo install websocat` (for tests/load.rs)
# Idempotent: re-running only fills in what is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"

if ! venv/bin/python -c 'import websockets, sys; sys.exit(websockets.__version__.split(".")[0] != "17")' 2>/dev/null; then
  echo "interop: installing Python websockets 17.x into tests/interop/venv"
  python3 -m venv venv
  venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
fi
if ! node -e 'process.exit(require("ws/package.json").version.startsWith("8.") ? 0 : 1)' 2>/dev/null; then
  echo "interop: installing Node ws 8.x into tests/interop/node_modules"
  npm install --no-audit --no-fund --no-package-lock --loglevel=error
fi
./gen-certs.sh "$here/certs" >/dev/null
# websocat for tests/load.rs (mirror: echo). Compiles for a few minutes, once.
websocat=$(command -v websocat || echo "${CARGO_HOME:-$HOME/.cargo}/bin/websocat")
if [[ ! -x $websocat ]]; then
  echo "interop: cargo install websocat (compiles for a few minutes, once)"
  cargo install websocat --locked --quiet ||
    echo "interop: WARNING: cargo install websocat failed: tests/load.rs fails with CI=true, skips otherwise" >&2
fi
echo "interop: websockets $(venv/bin/python -c 'import websockets; print(websockets.__version__)')," \
  "ws $(node -p 'require("ws/package.json").version'), certificates in tests/interop/certs"
