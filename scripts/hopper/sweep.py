#!/usr/bin/env python3
"""The sweep that fills HopperBlockTable (Sources/FlashAttentionCUDA/Codegen/Hopper/HopperForwardConfig.swift).

On the device machine, from a folder of NVRTC-compiled sweep variants (HopperSweep.variants(),
dumped by `HOPPER_DUMP_DIR=DIR swift test --filter HopperCodegenTests` and compiled with
scripts/hopper/nvrtc_compile.py):

  python3 scripts/hopper/sweep.py --bin BIN [--json OUT/bench.json]

times every bf16 variant under each grid (one CTA per tile; persistent with 132 CTAs; persistent
with the coprime CTA count the planner uses) next to SDPA cuDNN in the same process
(hopper_check.py --mode bench: round-robin, CUDA events, medians), then prints the winner per
(headDim, causal, seqlen). `--from-json` re-summarises a saved run without a GPU.
"""
import argparse, json, os, subprocess, sys
from collections import defaultdict

def summarize(rows):
    g = defaultdict(dict)
    for r in rows:
        g[(r["headDim"], r["causal"], r["seqlen"])][r["impl"]] = r
    print(f"{'D':>4} {'causal':>6} {'N':>6} {'cuDNN ms':>9} {'best':<60} {'ms':>8} {'ratio':>6}")
    for key in sorted(g):
        d = g[key]
        base = d.get("sdpa-cudnn", {}).get("ms", float("nan"))
        ours = {k: v for k, v in d.items() if k.startswith("flash_fwd")}
        if not ours:
            continue
        best = min(ours, key=lambda k: ours[k]["ms"])
        print(f"{key[0]:>4} {str(key[1]):>6} {key[2]:>6} {base:9.3f} {best:<60} {ours[best]['ms']:8.3f} {base / ours[best]['ms']:6.2f}")

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin")
    ap.add_argument("--json", default="sweep.json")
    ap.add_argument("--from-json")
    ap.add_argument("--grids", default="tile,persist,coprime")
    args = ap.parse_args()
    if args.from_json:
        summarize(json.load(open(args.from_json)))
        return
    here = os.path.dirname(os.path.abspath(__file__))
    rc = subprocess.call([sys.executable, os.path.join(here, "hopper_check.py"), "--bin", args.bin, "--mode", "bench",
                          "--grids", args.grids, "--json", args.json])
    if rc != 0:
        sys.exit(rc)
    summarize(json.load(open(args.json)))

if __name__ == "__main__":
    main()
