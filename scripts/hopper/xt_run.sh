#!/bin/bash
# One device call for the cross-tile overlap (run 5): every compiled variant against float64,
# compute-sanitizer memcheck + racecheck on the cross-tile variants (persistent grid of 3 CTAs,
# so CTAs walk several tiles), the bench of old and cross-tile variants (one CTA per tile and
# the planner's coprime persistent grid) round-robin with cuDNN in the same process, and the
# Swift binary's verify. Every step has a timeout; a hang counts as a failure.
#   bash scripts/hopper/xt_run.sh   (next to: bin/ with the cubins + manifest.json, flash-attn.gz)
set -u
cd "$(dirname "$0")"
OUT=${OUT:-/tmp/out}; mkdir -p $OUT; export PYTHONUNBUFFERED=1 HOPPER_HANG_S=5
S=$OUT/summary.txt
date -u > $S
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader >> $S
timeout 70 python3 hopper_check.py --bin bin --mode check --json $OUT/check.json > $OUT/check.log 2>&1; echo "check rc=$?" >> $S
grep -v "^ok " $OUT/check.log | tail -12 >> $S
SAN=${SAN_ONLY:-bf16_d64_bm192_bn128_s4_pp_tt_xt_sm90a,bf16_d128_bm128_bn144_s2_pp_tt_xt_sm90a,bf16_d128_bm128_bn128_s2_pp_tt_xt_causal,bf16_d64_bm128_bn128_s4_pp_tt_xt_causal,bf16_d256_bm128_bn80_s2_pp_tt_causal}
for tool in memcheck racecheck; do
  timeout 50 compute-sanitizer --tool $tool --print-limit 10 python3 hopper_check.py --bin bin --mode tiny --ctas 3 \
    --only $SAN > $OUT/san-$tool.log 2>&1
  echo "$tool rc=$?: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' $OUT/san-$tool.log) $(grep -c '^tiny' $OUT/san-$tool.log) kernels" >> $S
done
timeout 90 python3 hopper_check.py --bin bin --mode bench --head-dims 128,64,256 --grids tile,coprime --json $OUT/bench.json > $OUT/bench.log 2>&1
echo "bench rc=$?" >> $S
python3 sweep.py --from-json $OUT/bench.json >> $S 2>&1
if [ -f flash-attn.gz ]; then
  gunzip -c flash-attn.gz > /tmp/flash-attn && chmod +x /tmp/flash-attn
  { timeout 45 /tmp/flash-attn verify --device cuda --quick; echo "verify rc=$?"; } > $OUT/verify.log 2>&1
  grep -E "FAIL|verify rc|passed|failed" $OUT/verify.log | tail -6 >> $S
fi
date -u >> $S
cat $S
