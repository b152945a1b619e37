#!/usr/bin/env bash
# Runs every libFuzzer target in BUILD_DIR for SECONDS each, from its seed corpus
# (tests/fuzz/corpus/<target>), under ASan and UBSan. A crash, leak or sanitizer report
# fails the run. Method: -max_total_time per target, corpus copied so seeds stay clean.
set -euo pipefail
build=${1:-build-fuzz}
seconds=${2:-20}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
for bin in "$build"/fuzz_*; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin")
  mkdir -p "$work/$name"
  cp -r "$here/corpus/$name/." "$work/$name/" 2>/dev/null || true
  if "$bin" -max_total_time="$seconds" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
       -print_final_stats=1 -artifact_prefix="$work/" "$work/$name" >"$work/$name.log" 2>&1; then
    runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$work/$name.log" | grep -o '[0-9]*$' || echo '?')
    echo "fuzz: $name ok, $runs runs in ${seconds}s"
  else
    echo "fuzz: $name FAILED"; tail -40 "$work/$name.log"; status=1
  fi
done
exit $status
