#!/bin/bash
# A/B check for a change to the FA2 kernels, one device call: `flash-attn verify --device cuda`
# with the new build, then one pass of both builds timed in turn (two rounds, both masks).
# Used for the dual_gemm_nt refactor of the backward (device run 34: PASS=backward) and the
# gemm_rs_nn one of the forward (run 42: PASS=forward with FLASH_ATTN_HOPPER=0, so sm_90a runs
# the FA2 forward at every headDim, and headDims 32/96 that only FA2 takes).
#   BIN_DIR=DIR OUT=DIR [PASS=backward] [HEAD_DIMS=64,128] bash scripts/device/fa2_refactor_check.sh
set -u
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
D=${BIN_DIR:-$(cd "$(dirname "$0")" && pwd)}   # old.gz and new.gz: static flash-attn builds, gzipped
PASS=${PASS:-backward}
for b in old new; do gunzip -c $D/$b.gz > /tmp/fa-$b && chmod +x /tmp/fa-$b; done
export XDG_CACHE_HOME=/tmp/fa-cache
{ timeout 200 /tmp/fa-new verify --device cuda; echo "verify rc=$?"; } > $OUT/verify.log 2>&1
tail -3 $OUT/verify.log
for round in 1 2; do
  for b in old new; do
    timeout 120 /tmp/fa-$b bench --device cuda --pass $PASS --seqlen 1024,4096 --tokens 16384 --head-dim ${HEAD_DIMS:-64,128} \
      --causal both --dtype bf16 --impl flash --no-progress --output /tmp/ab-$b-$round > /dev/null 2>&1
    echo "$b round $round rc=$?"
    cp /tmp/ab-$b-$round/results.json $OUT/$PASS-$b-$round.json
  done
done
python3 - $OUT $PASS <<'PY'
import json, sys, collections
out, kind = sys.argv[1], sys.argv[2]
t = collections.defaultdict(dict)
for b in ["old", "new"]:
    for r in (1, 2):
        for x in json.load(open(f"{out}/{kind}-{b}-{r}.json"))["records"]:
            if x.get("status") == "ok":
                t[(x["headDim"], x["causal"], x["seqlenQ"])].setdefault(b, []).append(x["medianMs"])
for k in sorted(t):
    o, n = t[k].get("old", []), t[k].get("new", [])
    if o and n:
        print(f"D{k[0]} {'C' if k[1] else 'N'} {k[2]}: old {min(o):.3f} ms, new {min(n):.3f} ms, new/old {min(n) / min(o):.3f}")
PY
