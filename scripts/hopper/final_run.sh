#!/bin/bash
# One device call: the Swift binary's verify with the Hopper forward selected, every compiled
# Hopper variant against float64 (three grid shapes), compute-sanitizer on the tuned and
# cross-tile variants, the block-size sweep and the planner's own choices against cuDNN.
#   bash scripts/hopper/final_run.sh DIR   (DIR holds flash-attn.gz, bin/, the scripts)
set -u
cd "$(dirname "$0")"
OUT=${OUT:-/tmp/out}; export PYTHONUNBUFFERED=1
S=$OUT/summary.txt
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader | tee $S
if [ -f flash-attn.gz ]; then
  gunzip -c flash-attn.gz > /tmp/flash-attn && chmod +x /tmp/flash-attn
  { echo "== flash-attn verify --device cuda (Hopper forward on sm_90a)"; timeout 200 /tmp/flash-attn verify --device cuda; echo "verify rc=$?"; } > $OUT/verify.log 2>&1
  grep -E "FAIL|verify rc|passed|failed|cases" $OUT/verify.log | tail -8 >> $S
fi
timeout 200 python3 hopper_check.py --bin bin --mode check > $OUT/check.log 2>&1; echo "check rc=$?" >> $S
grep -v "^ok " $OUT/check.log | tail -8 >> $S
for tool in memcheck racecheck; do
  timeout 100 compute-sanitizer --tool $tool --print-limit 10 python3 hopper_check.py --bin bin --mode tiny --ctas 3 \
    --only ${SAN_ONLY:-bf16_d128_bm128_bn176_s2_pp_tt_sm90a,bf16_d128_bm128_bn128_s2_pp_tt_causal,bf16_d64_bm192_bn128_s4_pp_tt_sm90a} > $OUT/san-$tool.log 2>&1
  echo "$tool: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' $OUT/san-$tool.log)" >> $S
done
timeout 200 python3 hopper_check.py --bin bin --mode bench --grids tile,persist,coprime --json $OUT/sweep.json > /dev/null 2>&1
timeout 120 python3 hopper_check.py --bin bin --mode bench --grids planned --rounds 7 --json $OUT/planned.json > /dev/null 2>&1
python3 sweep.py --from-json $OUT/planned.json >> $S
python3 sweep.py --from-json $OUT/sweep.json >> $S
cat $S
