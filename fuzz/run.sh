#!/usr/bin/env bash
# Builds Saker's libFuzzer targets with the stable toolchain and runs each for a while.
#   fuzz/run.sh SECONDS [TARGET...]      (default: every target)
# FUZZ_SANITIZER=address adds AddressSanitizer (a nightly flag: RUSTC_BOOTSTRAP=1 is set
# for it); the default is coverage only, several times faster, with debug assertions and
# overflow checks on. Crashes land in fuzz/artifacts/<target>/ and fail the run. With
# FUZZ_MERGE=1 (`make fuzz`) inputs that add coverage are merged into fuzz/corpus/<target>/
# (kept in the repository); otherwise the committed corpus is only read.
set -euo pipefail
cd "$(dirname "$0")"
SECS=${1:-30}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(rules_file condition scap override config container)
TRIPLE=$(rustc -vV | sed -n 's/^host: //p')

# What cargo-fuzz passes, minus what needs nightly; --target keeps build scripts and
# proc macros uninstrumented.
RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions -Coverflow-checks"
if [ "${FUZZ_SANITIZER:-none}" = address ]; then
  RUSTFLAGS="$RUSTFLAGS -Zsanitizer=address"
  export RUSTC_BOOTSTRAP=1
fi
export RUSTFLAGS
cargo build --release --locked --target "$TRIPLE" --bins

declare -A MAXLEN=([rules_file]=8192 [condition]=1024 [scap]=16384 [override]=512 [config]=8192 [container]=8192)
declare -A DICT=([rules_file]=rules [condition]=rules [scap]=scap [override]=config [config]=config)
SEEDS=target/seeds
rm -rf "$SEEDS"
python3 seeds.py "$SEEDS"
summary=()
status=0
for t in "${TARGETS[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t" "$SEEDS/$t"
  work=$(mktemp -d)
  args=(-max_total_time="$SECS" -max_len="${MAXLEN[$t]}" -timeout=10 -rss_limit_mb=2048
        -print_final_stats=1 -artifact_prefix="artifacts/$t/")
  [ -n "${DICT[$t]:-}" ] && args+=(-dict="dict/${DICT[$t]}.dict")
  log="target/fuzz-$t.log"
  echo "fuzz: $t for ${SECS}s"
  if ! "target/$TRIPLE/release/$t" "${args[@]}" "$work" "corpus/$t" "$SEEDS/$t" >"$log" 2>&1; then
    echo "fuzz: $t FAILED; see fuzz/$log and fuzz/artifacts/$t/"
    tail -n 30 "$log"
    status=1
  fi
  if [ "${FUZZ_MERGE:-0}" = 1 ]; then
    # Keep only inputs that add coverage to the committed corpus.
    "target/$TRIPLE/release/$t" -merge=1 -max_len="${MAXLEN[$t]}" "corpus/$t" "$work" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
  crashes=$(find "artifacts/$t" -type f | wc -l)
  summary+=("$(printf '%-11s %12s executions %8s/s  %s crash files  %s corpus inputs' \
    "$t" "${execs:-?}" "${rate:-?}" "$crashes" "$(find "corpus/$t" -type f | wc -l)")")
done
printf 'fuzz: %s\n' "${summary[@]}"
exit $status
