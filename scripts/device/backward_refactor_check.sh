#!/bin/bash
# FA2 backward after the dual_gemm_nt refactor: verify, then old/new backward bench interleaved.
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
