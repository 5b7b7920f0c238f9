#!/bin/bash
# Runs on the device machine from the repository root: correctness of every compiled Hopper
# variant, compute-sanitizer on the tuned ones, then the benchmark against cuDNN.
#   bash scripts/hopper/device_run.sh BIN_DIR [phases: check,sanitize,bench]
set -u
BIN=${1:?bin dir}; PHASES=${2:-check,sanitize,bench}; OUT=${OUT:-/tmp/out}
HERE=$(dirname "$0")
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,memory.used --format=csv,noheader
if [[ $PHASES == *check* ]]; then
  timeout 300 python3 $HERE/hopper_check.py --bin $BIN --mode check --json $OUT/check.json ${CHECK_ARGS:-} 2>&1 | tee $OUT/check.log
  echo "check rc=${PIPESTATUS[0]}"
  if grep -q HANG $OUT/check.log; then echo "a kernel hung: skipping the rest"; exit 1; fi
fi
if [[ $PHASES == *sanitize* ]]; then
  for tool in memcheck racecheck; do
    timeout 150 compute-sanitizer --tool $tool --print-limit 20 python3 $HERE/hopper_check.py --bin $BIN --mode tiny ${TINY_ARGS:-} \
      --only ${SAN_ONLY:-bf16_d128_bm128_bn176_s2_pp_sm90a,bf16_d128_bm128_bn128_s2_pp_causal} 2>&1 | tail -25 | tee $OUT/sanitize-$tool.log
  done
fi
if [[ $PHASES == *bench* ]]; then
  timeout 400 python3 $HERE/hopper_check.py --bin $BIN --mode bench --json $OUT/bench.json ${BENCH_ARGS:-} 2>&1 | tee $OUT/bench.log
fi
