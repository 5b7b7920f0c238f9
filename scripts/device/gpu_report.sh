#!/usr/bin/env bash
# One call on a GPU machine (no Swift there): correctness, then the papers' benchmark grid
# with PyTorch side by side, from a static `flash-attn` built elsewhere.
#   bash scripts/device/gpu_report.sh BIN_DIR      (BIN_DIR holds flash-attn.gz: a stripped static build, gzipped to fit the transfer)
# Writes verify logs and bench-paper.tgz (results, charts, report) under $OUT.
set -u
DIR=${1:?usage: gpu_report.sh BIN_DIR}; BIN=/tmp/flash-attn
[ -f "$DIR/flash-attn.gz" ] && gunzip -c "$DIR/flash-attn.gz" > $BIN && chmod +x $BIN
OUT=${OUT:-/tmp/out}
export PYTHONUNBUFFERED=1 XDG_CACHE_HOME=/tmp/fa-cache
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/summary.txt"
"$BIN" info > "$OUT/info.log" 2>&1
# Correctness first: the whole grid, then the prepared (benchmark) path with peak-memory checks.
{ timeout 200 "$BIN" verify --device cuda; echo "verify rc=$?"
  timeout 120 "$BIN" verify --device cuda --quick --prepared; echo "verify-prepared rc=$?"; } > "$OUT/verify.log" 2>&1
grep -E "rc=|passed|failed" "$OUT/verify.log" | tail -6 >> "$OUT/summary.txt"
# The papers' grid, ours and PyTorch's (naive, SDPA flash / efficient / cuDNN) in one run.
timeout 330 "$BIN" bench --device cuda --preset paper --with-pytorch --no-progress --output /tmp/paper > "$OUT/bench.log" 2>&1
echo "bench rc=$?" >> "$OUT/summary.txt"
tar czf "$OUT/bench-paper.tgz" -C /tmp/paper . 2>/dev/null
cat "$OUT/summary.txt"
tail -60 "$OUT/bench.log"
