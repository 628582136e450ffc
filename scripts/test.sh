#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what it needs, then runs
# formatting and lint checks, every Rust test (engine, hostile peers, TLS,
# C ABI and examples, interop with independent servers and clients, the
# endpoint server in headless Chromium, load), the C programs under valgrind
# and ASan, the Autobahn conformance suite (wsc as a client and as a server,
# each over ws:// and wss://), the C API torture run, every fuzz target for a
# bounded time (scripts/fuzz.sh), and the benchmark in
# quick mode (it must compile and run; its numbers are not judged here).
#
# A missing prerequisite fails the run when CI=true; elsewhere the affected
# step says loudly that it was skipped and why.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
start=$SECONDS

step() { printf '\n=== %s (%ds) ===\n' "$*" $((SECONDS - start)); }

step "prerequisites"
need_apt=()
# chromium: Debian's build, for tests/browser.rs (no browser download at test time);
# libnss3-tools: certutil, for its private NSS database trusting the test CA (https://)
# libwebsockets-dev, libwebsocketpp-dev, libasio-dev: the peer libraries in the benchmark
for pkg in gcc g++ clang make cmake pkg-config libssl-dev valgrind openssl tinyproxy microsocks chromium libnss3-tools libuv1-dev libglib2.0-dev \
           libwebsockets-dev libwebsocketpp-dev libasio-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing with apt-get: ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi
for tool in cc c++ clang++ make cmake pkg-config valgrind openssl tinyproxy microsocks python3 node npm cargo; do
  command -v "$tool" >/dev/null || { echo "FATAL: '$tool' is not installed"; exit 1; }
done

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

step "independent peers (Python websockets, Node ws, websocat, test certificates)"
bash tests/interop/setup.sh

step "cargo test --release"
cargo build --release --all-targets
cargo test --release --no-fail-fast

step "C programs under valgrind and AddressSanitizer"
bash c-examples/check.sh

step "Autobahn|Testsuite: wsc as a client and as a server, each over ws:// and wss://"
bash tests/autobahn/run.sh

step "C API torture (and helgrind)"
bash tests/torture/run.sh

step "fuzzing: replay seeds and past findings, then every target for 20 s (AFL++ through cargo-afl; a crash fails)"
bash scripts/fuzz.sh --seconds 20

step "benchmark, quick mode (with the C twin and the peer libraries' clients)"
bash scripts/bench.sh --quick

step "done"
echo "scripts/test.sh: all steps passed in $((SECONDS - start)) s"
