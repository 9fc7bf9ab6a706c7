#!/usr/bin/env bash
# Times ascqr's fits (Laplace, RSPL) against R's lme4 glmer (Laplace) and glmmTMB on the same
# simulated analysis files (22 binary covariates, ~1% outcome), with GNU time for peak memory.
#   scripts/bench_hglm.sh [SIZES...]    sizes as ROWSxFACILITIES, default 100000x1000 1000000x3000
# SKIP_R=1 runs ascqr only; SKIP_LME4=1 skips lme4 (which needs over an hour at 1M rows here).
# Needs a release build and R with lme4 and glmmTMB (Debian r-cran-lme4 r-cran-glmmtmb).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/ascqr
[ -x "$bin" ] || cargo build --release
sizes=("${@:-100000x1000 1000000x3000}")
mkdir -p out/bench
measure() { # label, command...
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o out/bench/time.txt "$@" > out/bench/last.txt 2>&1 || { echo "$label failed"; cat out/bench/last.txt; return; }
  read -r secs kb < out/bench/time.txt
  printf "%-34s %10.2f s %10.0f MB   %s\n" "$label" "$secs" "$((kb / 1024))" "$(grep -Eo 'loglik[^,]*|log-likelihood = [-0-9.]*' out/bench/last.txt | head -1)"
}
for size in ${sizes[@]}; do
  rows=${size%x*}; fac=${size#*x}
  data=out/bench/analysis_${rows}_${fac}.csv
  [ -f "$data" ] || "$bin" synth-analysis --rows "$rows" --facilities "$fac" --covariates 22 --rate 0.01 --seed 1 --out "$data" > /dev/null
  echo "== $rows rows, $fac facilities, 22 covariates"
  measure "ascqr fit --method laplace" "$bin" fit --data "$data" --outcome y --group facility --method laplace --out out/bench/fit_laplace
  measure "ascqr fit --method rspl" "$bin" fit --data "$data" --outcome y --group facility --method rspl --out out/bench/fit_rspl
  if [ "${SKIP_R:-0}" != 1 ]; then
    [ "${SKIP_LME4:-0}" = 1 ] || measure "lme4 glmer (Laplace)" Rscript scripts/bench_lme4.R "$data" glmer
    measure "glmmTMB (Laplace)" Rscript scripts/bench_lme4.R "$data" glmmtmb
  fi
done
