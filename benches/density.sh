#!/usr/bin/env bash
# Peak memory and wall time of `ascqr ingest` and `ascqr run` against the years of an extract and
# the density of its claims (the ordinary care `ascqr synth --background` writes around each
# beneficiary), with the read-bandwidth reference of a plain polars read of the same Parquet.
#
#   benches/density.sh [BINARY]          (default: target/debug/ascqr; build it first)
#   SCALE=demo|national                  (default demo)
#   YEARS="1 2 3"                        years of index procedures, each at the published annual
#                                        volume (`--annual-volume`), so the extract grows with them
#   BACKGROUND="none 0.4x real 1.3x"     `--background` levels; `none` is the measures' own claims
#   BOOTSTRAP=1000                       replicates of `ascqr run`
#   RUNS=1                               runs of ingest and run per cell (the median is reported)
#   WORK=out/density                     where the extracts go (deleted cell by cell unless KEEP=1)
#   REPORT=benches/results/density.md    the table (one row per cell, appended to the file)
#
# Each cell: `ascqr synth` (not timed here; its time is in the synth column for reference), the
# polars read (the `ingest` bench binary's scan mode), `ascqr ingest` with its default shard
# count, then `ascqr run` on the prepared extract, each in its own process under GNU time.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/debug/ascqr}
scale=${SCALE:-demo}
years_list=${YEARS:-"1 2 3"}
levels=${BACKGROUND:-"none 0.4x real 1.3x"}
bootstrap=${BOOTSTRAP:-1000}
runs=${RUNS:-1}
work=${WORK:-out/density}
report=${REPORT:-benches/results/density.md}
command -v /usr/bin/time >/dev/null || { echo "needs GNU time (/usr/bin/time)" >&2; exit 2; }
cargo build --bench ingest >/dev/null 2>&1 || cargo build --bench ingest
scan=$(ls -t target/debug/deps/ingest-* | grep -v '\.d$' | head -1)
mkdir -p "$work" "$(dirname "$report")"
declare -A range=([1]=2023 [2]=2022-2023 [3]=2021-2023)
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
timed() { # timed OUT_PREFIX cmd... → appends "secs kb" to OUT_PREFIX.t
  /usr/bin/time -f "%e %M" -o "$1.one" "${@:2}" >/dev/null
  cat "$1.one" >>"$1.t"
}
if [ ! -s "$report" ]; then
  {
    echo "# Memory and time against years and claim density"
    echo
    echo "Written by \`benches/density.sh\`. Each row: one synthetic extract (\`ascqr synth --scale S"
    echo "--years Y --annual-volume --background B\`, seed 1), the plain polars read of its five tables"
    echo "(read-bandwidth reference), \`ascqr ingest\` (default shard count) and \`ascqr run\` on the"
    echo "prepared extract with all four measures. Wall time and peak memory (max RSS) are medians of"
    echo "RUNS runs; 2 cores. Lines per beneficiary: carrier + outpatient + inpatient rows over"
    echo "beneficiaries; density: that against the same scale and years without background."
    echo
  } >"$report"
fi
{
  echo "## $scale scale, $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (uncommitted changes)'), bootstrap $bootstrap, $runs run(s) per cell"
  echo
  echo "| years | background | claim rows | lines per beneficiary | density | Parquet | synth | polars read | rows/s | ingest | rows/s | ingest peak | shards | run | rows/s | run peak |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
} >>"$report"
for n in $years_list; do
  sparse_lines=""
  for level in $levels; do
    cell="$work/y$n-$level"
    rm -rf "$cell"
    s0=$(date +%s.%N)
    "$bin" synth --out "$cell/raw" --seed 1 --scale "$scale" --years "${range[$n]}" --annual-volume --background "$level" >/dev/null
    synth_s=$(awk -v a="$s0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')
    read -r benes claim_rows < <(python3 -c "
import json,sys
r=json.load(open('$cell/raw/manifest.json'))['rows']
print(r['beneficiaries'], r['carrier']+r['outpatient']+r['inpatient'])")
    all_rows=$(python3 -c "import json; print(sum(json.load(open('$cell/raw/manifest.json'))['rows'].values()))")
    lines=$(awk -v r="$claim_rows" -v b="$benes" 'BEGIN { printf "%.1f", r / b }')
    [ "$level" = none ] && sparse_lines=$lines
    density=$([ -n "$sparse_lines" ] && awk -v a="$lines" -v b="$sparse_lines" 'BEGIN { printf "%.1f×", a / b }' || echo "–")
    size=$(du -sh --exclude=truth --exclude=web "$cell/raw" | cut -f1)
    rm -f "$cell".{scan,ingest,run}.t
    for _ in $(seq "$runs"); do
      ASCQR_EXTRACT="$cell/raw" INGEST_MODE=scan INGEST_LAYOUT=canonical timed "$cell.scan" "$scan"
      rm -rf "$cell/extract"
      timed "$cell.ingest" "$bin" ingest --claims "$cell/raw" --out "$cell/extract"
      rm -rf "$cell/run"
      timed "$cell.run" "$bin" run --claims "$cell/extract" --bootstrap "$bootstrap" --seed 1 --out "$cell/run"
    done
    shards=$(python3 -c "import json; print(json.load(open('$cell/extract/ingest.json'))['shards'])")
    col() { awk "{print \$$2}" "$1" | median; }
    scan_s=$(col "$cell.scan.t" 1); ingest_s=$(col "$cell.ingest.t" 1); ingest_kb=$(col "$cell.ingest.t" 2)
    run_s=$(col "$cell.run.t" 1); run_kb=$(col "$cell.run.t" 2)
    printf '| %s | %s | %s | %s | %s | %s | %s s | %.1f s | %.0f | %.1f s | %.0f | %.0f MB | %s | %.1f s | %.0f | %.0f MB |\n' \
      "$n" "$level" "$claim_rows" "$lines" "$density" "$size" "$synth_s" "$scan_s" "$(awk -v r="$all_rows" -v w="$scan_s" 'BEGIN { print r / w }')" \
      "$ingest_s" "$(awk -v r="$all_rows" -v w="$ingest_s" 'BEGIN { print r / w }')" "$((ingest_kb / 1024))" "$shards" "$run_s" "$(awk -v r="$all_rows" -v w="$run_s" 'BEGIN { print r / w }')" "$((run_kb / 1024))" >>"$report"
    tail -1 "$report"
    [ "${KEEP:-0}" = 1 ] || rm -rf "$cell"
    rm -f "$cell".*.t "$cell".*.one
  done
done
echo >>"$report"
