#!/usr/bin/env bash
# Measures national-scale synthetic generation (and its validation): wall time and peak memory
# with GNU time. Usage: scripts/measure_national.sh [OUT_DIR] [SEED]
# Needs a release build (cargo build --release) and several GB of free disk.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-out/national}"
seed="${2:-1}"
bin=target/release/ascqr
[ -x "$bin" ] || cargo build --release
rm -rf "$out"
echo "== synth --scale national (seed $seed) into $out"
/usr/bin/time -v "$bin" synth --out "$out" --seed "$seed" --scale national 2> "$out.synth.time" | tee "$out.synth.txt"
grep -E "Elapsed|Maximum resident" "$out.synth.time"
du -sh "$out"
echo "== validate"
/usr/bin/time -v "$bin" validate --claims "$out" --rejects "$out.rejects.csv" 2> "$out.validate.time" | tee "$out.validate.txt"
grep -E "Elapsed|Maximum resident" "$out.validate.time"
