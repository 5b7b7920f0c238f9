#!/bin/bash
# One device call per optimisation step: float64 check of every compiled
# variant (plus any older kernels renamed *_old), compute-sanitizer on the new variants,
# the bench (planner's grids, round-robin with cuDNN), SM clock/power while it runs, and ncu
# on d128 4k for ours vs cuDNN. Every step has a timeout; a hang counts as a failure.
#   SAN_ONLY=... PROBE_ONLY=... bash scripts/hopper/step_run.sh BIN_DIR   (cubins + manifest.json)
# Narrowing: CHECK_ONLY / BENCH_ONLY (comma lists of name parts), SEQLENS_128, SEQLENS_64_256,
# CHECK_S (the check's time limit), BENCH=0, NCU=0; TILE_GROUPS (e.g. 1,auto: dynamic causal
# kernels timed with each tile group).
set -u
BIN=$(cd "$1" && pwd); cd "$(dirname "$0")"
OUT=${OUT:-/tmp/out}; mkdir -p $OUT; export PYTHONUNBUFFERED=1 HOPPER_HANG_S=5
S=$OUT/summary.txt
date -u > $S
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.limit,temperature.gpu --format=csv,noheader >> $S
timeout ${CHECK_S:-150} python3 hopper_check.py --bin $BIN --mode check --only "${CHECK_ONLY:-}" --json $OUT/check.json > $OUT/check.log 2>&1; echo "check rc=$?" >> $S
grep -v "^ok " $OUT/check.log | tail -8 >> $S
SAN=${SAN_ONLY:-bf16_d128_bm128_bn160_s2_pp_tt_q2_so_sm90a,bf16_d128_bm128_bn128_s2_pp_tt_ro_op_q2_so_hd_dyn_causal,bf16_d256_bm128_bn48_s2_pp_tt_ro_q2_so_sm90a,bf16_d64_bm128_bn128_s4_pp_tt_hd_causal}
for tool in memcheck racecheck; do
  timeout 60 compute-sanitizer --tool $tool --print-limit 10 python3 hopper_check.py --bin $BIN --mode tiny --ctas 3 \
    --only $SAN > $OUT/san-$tool.log 2>&1
  echo "$tool rc=$?: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' $OUT/san-$tool.log) $(grep -c '^tiny' $OUT/san-$tool.log) kernels" >> $S
done
grep -E -A6 "Race reported|Error: Race|hazard" $OUT/san-racecheck.log | grep -v "^--$" | cut -c1-160 | head -24 >> $S
if [ "${BENCH:-1}" = 1 ]; then
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu --format=csv -lms 250 > $OUT/clocks.csv 2>&1 &
SMI=$!
timeout 200 python3 hopper_check.py --bin $BIN --mode bench --head-dims 128 --seqlens ${SEQLENS_128:-512,1024,2048,4096,8192,16384} --only "${BENCH_ONLY:-}" --grids auto --tile-groups ${TILE_GROUPS:-auto} --json $OUT/bench128.json > $OUT/bench128.log 2>&1
echo "bench128 rc=$?" >> $S
timeout 200 python3 hopper_check.py --bin $BIN --mode bench --head-dims 64,256 --seqlens ${SEQLENS_64_256:-512,1024,2048,4096,8192,16384} --only "${BENCH_ONLY:-}" --grids auto --tile-groups ${TILE_GROUPS:-auto} --json $OUT/bench64256.json > $OUT/bench64256.log 2>&1
echo "bench64/256 rc=$?" >> $S
kill $SMI
python3 - $OUT >> $S <<'PY'
import json, sys, collections
out = sys.argv[1]
rows = []
for f in ["bench128.json", "bench64256.json"]:
    try: rows += json.load(open(f"{out}/{f}"))
    except Exception as e: print("no", f, e)
g = collections.defaultdict(dict)
for r in rows: g[(r["headDim"], r["causal"], r["seqlen"])][r["impl"]] = r["ms"]
for key in sorted(g):
    d = g[key]; base = d.get("sdpa-cudnn", float("nan"))
    ours = sorted((v, k) for k, v in d.items() if k.startswith("flash_fwd"))
    line = " ".join(f"{k.replace('flash_fwd_hopper_bf16_', '').replace('_sm90a', '').replace('_s2_pp_tt', '')}={base / v:.3f}" for v, k in ours[:12])
    print(f"D{key[0]} {'C' if key[1] else 'N'} {key[2]:>5} cudnn={base:.3f}ms | {line}")
PY
fi
if [ "${NCU:-1}" = 1 ]; then
# The table's headDim 128 kernels at 4k (non-causal, and causal with the half diagonal) and any `_old` twins.
PROBE=${PROBE_ONLY:-bn160_s2_pp_tt_q2_so_sm90a,bn160_s2_pp_tt_sm90a,bn128_s2_pp_tt_ro_op_q2_so_hd_dyn_causal,_old}
ncu --query-metrics --chip gh100 2>/dev/null | grep -iE "gmma|pipe_tensor" | head -20 > $OUT/ncu-metrics.txt
timeout 120 ncu --clock-control none -k regex:"flash_fwd|fprop|sdpa|fmha" --section SpeedOfLight --section ComputeWorkloadAnalysis \
  --section WarpStateStats --metrics sm__cycles_elapsed.avg.per_second,sm__inst_executed_pipe_tensor_op_gmma.sum \
  python3 hopper_check.py --bin $BIN --mode probe --head-dims 128 --seqlens 4096 \
  --only $PROBE > $OUT/ncu.log 2>&1
echo "ncu rc=$?" >> $S
timeout 60 ncu --clock-control none -k regex:"flash_fwd|fprop|sdpa|fmha" \
  --metrics gpu__time_duration.sum,sm__cycles_elapsed.avg.per_second,sm__pipe_tensor_op_hmma_cycles_active_realtime.avg.pct_of_peak_sustained_elapsed,sm__pipe_tensor_cycles_active_realtime.avg.pct_of_peak_sustained_elapsed \
  python3 hopper_check.py --bin $BIN --mode probe --head-dims 128 --seqlens 4096 \
  --only $PROBE > $OUT/ncu2.log 2>&1
echo "ncu2 rc=$?" >> $S
grep -E "^  [a-z_]+.*\(|gpu__time|per_second|pct_of_peak" $OUT/ncu2.log | sed -E 's/\(([0-9]+), 1, 1\)x.*/(\1)/' | cut -c1-150 >> $S
grep -E "^  [a-z_]+.*(flash_fwd|fprop|sdpa|fmha)|Duration|Issue Slots Busy" $OUT/ncu.log | sed -E 's/\(([0-9]+), 1, 1\)x.*/(\1)/' | cut -c1-120 | head -40 >> $S
fi
# The Swift binary's own check of the planner's choices (static build carried next to BIN).
if [ -f "$BIN/../flash-attn.gz" ]; then
  gunzip -c "$BIN/../flash-attn.gz" > /tmp/flash-attn && chmod +x /tmp/flash-attn
  export XDG_CACHE_HOME=/tmp/fa-cache
  { timeout 200 /tmp/flash-attn verify --device cuda; echo "verify rc=$?"
    timeout 90 /tmp/flash-attn verify --device cuda --quick --prepared; echo "verify-prepared rc=$?"
    timeout 120 compute-sanitizer --tool memcheck --print-limit 10 /tmp/flash-attn verify --device cuda --quick; echo "memcheck-verify rc=$?"
    timeout 120 compute-sanitizer --tool racecheck --print-limit 10 /tmp/flash-attn verify --device cuda --quick; echo "racecheck-verify rc=$?"
  } > $OUT/verify.log 2>&1
  grep -E "FAIL|rc=|passed|ERROR SUMMARY|RACECHECK SUMMARY" $OUT/verify.log | tail -14 >> $S
fi
# Optional: the table's choice alone against cuDNN once more, and the papers' grid end to end.
if [ "${PLANNED:-0}" = 1 ]; then
  timeout 150 python3 hopper_check.py --bin $BIN --mode bench --head-dims 128,64,256 --grids planned --json $OUT/planned.json > $OUT/planned.log 2>&1
  echo "planned rc=$?" >> $S
  grep -E "^ +[0-9]+ +[0-9]+ +(True|False) +ours" $OUT/planned.log | awk '{print "planned D"$1, $2, $3, $NF}' >> $S
fi
if [ "${PAPER:-0}" = 1 ] && [ -x /tmp/flash-attn ]; then
  timeout 400 /tmp/flash-attn bench --device cuda --preset paper --with-pytorch --pytorch-script "$(cd .. && pwd)/bench_pytorch.py" --no-progress --output /tmp/paper > $OUT/paper.log 2>&1
  echo "paper rc=$?" >> $S
  tar czf $OUT/bench-paper.tgz -C /tmp/paper . 2>/dev/null
fi
date -u >> $S
# The device returns a limited number of files: logs travel as one archive.
(cd $OUT && tar czf logs.tgz *.log *.csv check.json 2>/dev/null && rm -f *.log *.csv check.json)
cat $S
