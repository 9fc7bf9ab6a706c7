#!/usr/bin/env bash
# Cohort building against the number of years in the extract: wall time and peak memory (max RSS)
# of `ascqr cohort` for the four measures on a series of national synthetic extracts of 1, 2 and 3
# years, each year at the published annual volume (`ascqr synth --annual-volume`), so the extract
# grows with its years.
#
#   benches/cohort_by_years.sh [BINARY]      (default: target/debug/ascqr; build it first)
#   REPORT=FILE sets the output file (default benches/results/cohort_by_years.md; the table is
#   written there, replacing it).
#   YEARS="1 2 3" the extracts to run.
#
# Extracts are generated under out/years/y1, y2, y3 when missing (about 3, 6 and 9 minutes on
# 2 cores). The table goes to benches/results/cohort_by_years.md; one run per cell.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/debug/ascqr}
out=out/years
mkdir -p "$out" benches/results
command -v /usr/bin/time >/dev/null || { echo "needs GNU time (/usr/bin/time)" >&2; exit 2; }

declare -A range=([1]=2023 [2]=2022-2023 [3]=2021-2023)
for n in ${YEARS:-1 2 3}; do
  if [ ! -f "$out/y$n/manifest.json" ]; then
    echo "generating $out/y$n (${range[$n]})" >&2
    "$bin" synth --out "$out/y$n" --seed 1 --scale national --years "${range[$n]}" --annual-volume >"$out/y$n.synth.txt"
  fi
  # The stages read only a prepared extract.
  if [ ! -f "$out/y$n.extract/ingest.json" ]; then
    "$bin" ingest --claims "$out/y$n" --out "$out/y$n.extract" >"$out/y$n.ingest.txt"
  fi
done

report=${REPORT:-benches/results/cohort_by_years.md}
tmp=$(mktemp)
{
  echo "# Cohort building against the years in the extract"
  echo
  echo "\`benches/cohort_by_years.sh $bin\`, $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (uncommitted changes)'),"
  echo "$(nproc) cores. National synthetic extracts, seed 1, each year at the published annual volume."
  echo "One run per cell: wall time, peak memory (max RSS), qualifying ASC claims in, index procedures out."
  echo
  echo "| years | carrier lines | shards | measure | wall | peak memory | claims in | in cohort |"
  echo "|---|---|---|---|---|---|---|---|"
} >"$tmp"
for n in ${YEARS:-1 2 3}; do
  lines=$(python3 -c "import json,sys; print(json.load(open('$out/y$n/manifest.json'))['rows']['carrier'])")
  shards=$(python3 -c "import json,sys; print(json.load(open('$out/y$n.extract/ingest.json'))['shards'])")
  for m in asc12 asc17 asc18 asc19; do
    dir=$(mktemp -d)
    /usr/bin/time -v "$bin" cohort --claims "$out/y$n.extract" --measure "$m" --out "$dir" >"$dir.stdout" 2>"$dir.time"
    wall=$(grep "Elapsed (wall clock)" "$dir.time" | awk '{print $NF}')
    rss=$(grep "Maximum resident set size" "$dir.time" | awk '{printf "%.2f GiB", $NF/1048576}')
    read -r first last < <(python3 -c "
import csv
rows = list(csv.DictReader(open('$dir/attrition.csv')))
print(rows[0]['procedures_in'], rows[-1]['procedures_out'])")
    echo "| $n | $lines | $shards | $m | $wall | $rss | $first | $last |" >>"$tmp"
    echo "years=$n $m: $wall, $rss" >&2
    rm -rf "$dir" "$dir.stdout" "$dir.time"
  done
done
mv "$tmp" "$report"
cat "$report"
