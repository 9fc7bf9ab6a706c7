#!/usr/bin/env bash
# Measures cohort building, feature building and the model fit for all four measures on an
# extract (default: the national synthetic one from scripts/measure_national.sh), with GNU time.
#   scripts/measure_pipeline.sh [CLAIMS_DIR] [OUT_DIR]
#   BIN=target/debug/ascqr measures the dev build instead of the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
claims="${1:-out/national}"
out="${2:-out/pipeline}"
bin=${BIN:-target/release/ascqr}
[ -x "$bin" ] || cargo build --release
mkdir -p "$out"
run() { # label, command...
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$out/time.txt" "$@" > "$out/last.txt" 2>&1 || { echo "$label failed"; cat "$out/last.txt"; exit 2; }
  read -r secs kb < "$out/time.txt"
  printf "%-28s %8.1f s %7d MB   %s\n" "$label" "$secs" "$((kb / 1024))" "$(tail -1 "$out/last.txt" | cut -c1-80)"
}
# The stages read only a prepared extract: ingest the claims once (timed like the stages).
run "ingest" "$bin" ingest --claims "$claims" --out "$out/extract"
claims="$out/extract"
for m in asc12 asc17 asc18 asc19; do
  run "cohort $m" "$bin" cohort --claims "$claims" --measure "$m" --out "$out/cohort_$m"
  grep -E "in the cohort" "$out/last.txt" || true
  run "features $m" "$bin" features --cohort "$out/cohort_$m" --claims "$claims" --out "$out/features_$m"
  run "fit $m (rspl)" "$bin" fit --data "$out/features_$m/analysis.parquet" --outcome outcome --group facility_id --out "$out/fit_$m"
done
