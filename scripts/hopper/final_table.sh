#!/bin/bash
# The table's choice alone against cuDNN (and SDPA flash) in one process, twice in a row:
# first on a rested GPU, then right after it (sustained load). Ten warm-up calls each, so
# cuDNN's first shape of a family is not timed while it builds its plan.
#   bash scripts/hopper/final_table.sh BIN_DIR   (cubins + manifest.json + plans.json)
set -u
BIN=$(cd "$1" && pwd); cd "$(dirname "$0")"
OUT=${OUT:-/tmp/out}; mkdir -p $OUT; export PYTHONUNBUFFERED=1 HOPPER_HANG_S=5
S=$OUT/summary.txt
{ date -u; nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.limit,temperature.gpu --format=csv,noheader; } > $S
for pass in 1 2; do
  timeout 200 python3 hopper_check.py --bin $BIN --mode bench --head-dims 128,64,256 --grids planned --warmup 10 \
    --json $OUT/planned$pass.json > $OUT/planned$pass.log 2>&1
  echo "pass $pass rc=$? $(nvidia-smi --query-gpu=clocks.sm,temperature.gpu,power.draw --format=csv,noheader)" >> $S
  grep -E "^ +[0-9]+ +[0-9]+ +(True|False) +ours" $OUT/planned$pass.log | awk -v p=$pass '{print "pass"p" D"$1, $2, $3, $(NF-2), $NF}' >> $S
done
date -u >> $S
cat $S
