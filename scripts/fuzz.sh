#!/usr/bin/env bash
# Runs the fuzz targets of fuzz/ (AFL++ through cargo-afl, on the stable
# toolchain) one after another, each for a bounded time, starting from the
# committed seeds in fuzz/corpus/<target>/, after replaying those seeds and
# every past finding in fuzz/regressions/<target>/. Installs cargo-afl (and
# the AFL++ it builds from source) when missing.
#
#   scripts/fuzz.sh [--seconds N] [--out DIR] [TARGET...]
#
# Defaults: 20 s per target, every target, output under fuzz/out/. Prints
# each target's executions, corpus, edges, crashes and hangs. Exits non-zero
# when any target found a crash; its inputs are left in
# DIR/<target>/default/crashes/ (replay one with
# `fuzz/target/release/<target> < FILE`).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=20
out=fuzz/out
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
if [ ${#targets[@]} -eq 0 ]; then
  for f in fuzz/src/bin/*.rs; do targets+=("$(basename "$f" .rs)"); done
fi

if ! cargo afl --version >/dev/null 2>&1; then
  echo "installing cargo-afl (builds AFL++ from its sources; needs cc and make)"
  cargo install --locked cargo-afl@0.18.2
fi
# Builds AFL++ for this toolchain unless it is built already.
if ! built=$(cargo afl config --build 2>&1) && ! grep -q "already built" <<<"$built"; then
  echo "FATAL: cargo afl config --build failed:"; echo "$built"; exit 1
fi

(cd fuzz && cargo afl build --release --quiet)

# Every committed seed and every past finding (fuzz/regressions/<target>/)
# must pass before fuzzing: a fixed bug stays fixed.
mkdir -p "$out"
replayed=0
for t in "${targets[@]}"; do
  for f in fuzz/corpus/"$t"/* fuzz/regressions/"$t"/*; do
    [ -f "$f" ] || continue
    if ! "fuzz/target/release/$t" <"$f" >/dev/null 2>"$out/replay.log"; then
      echo "FAIL $t: $f"; grep -m1 -A3 panicked "$out/replay.log" || tail -5 "$out/replay.log"
      exit 1
    fi
    replayed=$((replayed + 1))
  done
done
rm -f "$out/replay.log"
echo "replayed $replayed seeds and regressions: no failure"

# No CPU-frequency governor or core-dump handler to set on a shared machine;
# no UI when there is no terminal; no CPU pinning (other jobs share the cores).
export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 AFL_NO_AFFINITY=1

stat() { grep -E "^$1 " "$2" | sed 's/.*: //'; }
failed=()
for t in "${targets[@]}"; do
  [ -d "fuzz/corpus/$t" ] || { echo "FATAL: no target '$t' (fuzz/corpus/$t is missing)"; exit 1; }
  rm -rf "${out:?}/$t"
  mkdir -p "$out/$t"
  # -t: 5 s per input (proxy_reply opens a loopback connection per input).
  cargo afl fuzz -i "fuzz/corpus/$t" -o "$out/$t" -V "$seconds" -t 5000 "fuzz/target/release/$t" \
    >"$out/$t/afl.log" 2>&1 || { echo "FAIL $t: afl-fuzz exited with an error"; tail -20 "$out/$t/afl.log"; failed+=("$t"); continue; }
  s="$out/$t/default/fuzzer_stats"
  crashes=$(find "$out/$t/default/crashes" -name 'id:*' 2>/dev/null | wc -l)
  hangs=$(find "$out/$t/default/hangs" -name 'id:*' 2>/dev/null | wc -l)
  printf '%-17s %4ss  %10s execs  %7s/s  corpus %5s  edges %5s/%s (%s)  crashes %s  hangs %s\n' "$t" \
    "$(stat run_time "$s")" "$(stat execs_done "$s")" "$(stat execs_per_sec "$s")" "$(stat corpus_count "$s")" \
    "$(stat edges_found "$s")" "$(stat total_edges "$s")" "$(stat bitmap_cvg "$s")" "$crashes" "$hangs"
  if [ "$crashes" -gt 0 ]; then
    failed+=("$t")
    for c in "$out/$t"/default/crashes/id:*; do
      echo "--- $t crash: $c"
      "fuzz/target/release/$t" <"$c" 2>&1 | grep -m1 -A3 "panicked" || true
    done
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "scripts/fuzz.sh: FAILED: ${failed[*]}"
  exit 1
fi
echo "scripts/fuzz.sh: ${#targets[@]} targets, no crash"
