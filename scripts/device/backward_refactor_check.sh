#!/bin/bash
# A/B check for a change to the FA2 backward kernels, one device call: `flash-attn verify
# --device cuda` with the new build, then the backward of both builds timed in turn (two rounds,
# headDim 64/128, 1k/4k, both masks). Used for the dual_gemm_nt refactor (device run 34).
#   BIN_DIR=DIR OUT=DIR bash scripts/device/backward_refactor_check.sh
set -u
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
D=${BIN_DIR:-$(cd "$(dirname "$0")" && pwd)}   # old.gz and new.gz: static flash-attn builds, gzipped
for b in old new; do gunzip -c $D/$b.gz > /tmp/fa-$b && chmod +x /tmp/fa-$b; done
export XDG_CACHE_HOME=/tmp/fa-cache
{ timeout 200 /tmp/fa-new verify --device cuda; echo "verify rc=$?"; } > $OUT/verify.log 2>&1
tail -3 $OUT/verify.log
for round in 1 2; do
  for b in old new; do
    timeout 120 /tmp/fa-$b bench --device cuda --pass backward --seqlen 1024,4096 --tokens 16384 --head-dim 64,128 \
      --causal both --dtype bf16 --impl flash --no-progress --output /tmp/bw-$b-$round > /dev/null 2>&1
    echo "$b round $round rc=$?"
    cp /tmp/bw-$b-$round/results.json $OUT/bw-$b-$round.json
  done
done
