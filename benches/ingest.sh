#!/usr/bin/env bash
# Ingest throughput and peak memory beside a plain polars read of the same files.
#
#   benches/ingest.sh [EXTRACT...]     (default: out/demo/claims, written by `ascqr demo`)
#   LAYOUT=ccw benches/ingest.sh DIR   a CCW delivery (`ascqr synth --ccw DIR`); ingest only, as
#                                      polars has no fixed-width reader to compare with
#
# For each canonical extract: the plain polars read (reference for read bandwidth) and `ascqr
# ingest`, each in its own process under GNU time, RUNS times (default 3); the table gives the
# median wall time, rows/s and the median peak memory (max RSS). Results go to
# benches/results/ingest.md (REPORT=FILE to change). The bench binary is the dev build
# (`cargo bench` would rebuild polars in the release profile for 15+ minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v /usr/bin/time >/dev/null || { echo "needs GNU time (/usr/bin/time)" >&2; exit 2; }
runs=${RUNS:-3}
extracts=("$@")
[ ${#extracts[@]} -gt 0 ] || extracts=(out/demo/claims)
cargo build --bench ingest >/dev/null 2>&1 || cargo build --bench ingest
bin=$(ls -t target/debug/deps/ingest-* | grep -v '\.d$' | head -1)
report=${REPORT:-benches/results/ingest.md}
tmp=$(mktemp)
{
  echo "# Ingest throughput"
  echo
  echo "\`benches/ingest.sh ${extracts[*]}\`, $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (uncommitted changes)'),"
  echo "$(nproc) cores, dev build. Median of $runs runs: wall time, rows/s, peak memory (max RSS)."
  echo "\"polars read\" decodes every column of every row of the five tables and keeps nothing: the"
  echo "read-bandwidth reference. \"ingest\" is \`ascqr ingest\` with its default shard count."
  echo
  echo "| extract | input | step | rows | wall | rows/s | peak memory |"
  echo "|---|---|---|---|---|---|---|"
} >"$tmp"
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for ex in "${extracts[@]}"; do
  size=$(du -sh --exclude=truth --exclude=web "$ex" | cut -f1)
  modes="scan ingest"
  [ "${LAYOUT:-canonical}" = canonical ] || modes="ingest"
  for mode in $modes; do
    : >"$tmp.w"; : >"$tmp.m"
    for _ in $(seq "$runs"); do
      line=$(ASCQR_EXTRACT="$ex" INGEST_MODE=$mode INGEST_LAYOUT=${LAYOUT:-canonical} /usr/bin/time -f "%e %M" -o "$tmp.t" "$bin")
      rows=$(echo "$line" | awk '{print $2}')
      read -r secs kb <"$tmp.t"
      echo "$secs" >>"$tmp.w"; echo "$kb" >>"$tmp.m"
    done
    w=$(median <"$tmp.w"); m=$(median <"$tmp.m")
    label=$([ "$mode" = scan ] && echo "polars read" || echo "ingest (${LAYOUT:-canonical})")
    printf '| %s | %s | %s | %s | %.1f s | %.0f | %.0f MB |\n' "$ex" "$size" "$label" "$rows" "$w" "$(awk -v r="$rows" -v w="$w" 'BEGIN { print r / w }')" "$((m / 1024))" >>"$tmp"
  done
done
mkdir -p "$(dirname "$report")"
mv "$tmp" "$report"
rm -f "$tmp".*
cat "$report"
