#!/usr/bin/env python3
"""Device-side check and benchmark of the generated Hopper forward kernels.

Loads CUBINs compiled by NVRTC (scripts/hopper/nvrtc_compile.py) through the CUDA driver API
(ctypes, no extension build), encodes the TMA tensor maps with cuTensorMapEncodeTiled exactly
like the Swift planner (HopperForwardPlanner), and:

  --mode check   : every variant in the manifest against a float64 PyTorch reference on random
                   inputs (odd shapes, seqlen 1, seqlenQ != seqlenK, causal with fully masked rows,
                   GQA/MQA); output poisoned with NaN first; the 2x rule against SDPA's own error.
  --mode bench   : bf16, hidden 2048, batch*seqlen = 16k; ours vs SDPA cuDNN (and SDPA flash) in
                   the same process; CUDA events, median of repeats after warm-up.
  --mode tiny    : one small launch per variant (for compute-sanitizer).

  python3 scripts/hopper/hopper_check.py --bin DIR --mode check [--only SUBSTR] [--json OUT.json]
"""
import argparse, ctypes, json, math, os, statistics, sys, time
import torch

cuda = ctypes.CDLL("libcuda.so.1")
CUresult = ctypes.c_int

def ck(r, what):
    if r != 0:
        s = ctypes.c_char_p()
        cuda.cuGetErrorName(r, ctypes.byref(s))
        raise RuntimeError(f"{what} failed: {s.value.decode() if s.value else r}")

# Params layout (HopperForwardSource.ParamsLayout)
OFF = dict(tmQ=0, tmK=128, tmV=256, o=384, lse=392, oB=400, oS=408, oH=416,
           seqlenQ=424, seqlenK=428, heads=432, headsPerKV=436, numMBlocks=440, scaleLog2=444, numTiles=448,
           tileCounter=456, tileGroup=464)
PARAMS_SIZE = 640
NUM_SMS = 132
PLANS = {}
DT_CODE = {torch.bfloat16: 9, torch.float16: 6}

class Kernel:
    def __init__(self, path, meta):
        self.meta = meta
        data = open(path, "rb").read()
        self.mod = ctypes.c_void_p()
        ck(cuda.cuModuleLoadData(ctypes.byref(self.mod), data), f"cuModuleLoadData {meta['name']}")
        self.fn = ctypes.c_void_p()
        ck(cuda.cuModuleGetFunction(ctypes.byref(self.fn), self.mod, meta["name"].encode()), "cuModuleGetFunction")
        ck(cuda.cuFuncSetAttribute(self.fn, 8, meta["smem"]), "cuFuncSetAttribute(max dynamic smem)")
        regs = ctypes.c_int()
        cuda.cuFuncGetAttribute(ctypes.byref(regs), 4, self.fn)  # CU_FUNC_ATTRIBUTE_NUM_REGS
        self.regs = regs.value

def encode_map(t, seqlen, heads, batch, d, rows):
    """t: (batch, seqlen, heads, d) strided tensor. 4-d map (d, seqlen, heads, batch), box (64, rows, 1, 1)."""
    tm = (ctypes.c_uint8 * 128)()
    dims = (ctypes.c_uint64 * 4)(d, seqlen, heads, batch)
    es = t.element_size()
    strides = (ctypes.c_uint64 * 3)(t.stride(1) * es, t.stride(2) * es, t.stride(0) * es)
    box = (ctypes.c_uint32 * 4)(64, rows, 1, 1)
    estr = (ctypes.c_uint32 * 4)(1, 1, 1, 1)
    ck(cuda.cuTensorMapEncodeTiled(tm, ctypes.c_int(DT_CODE[t.dtype]), ctypes.c_uint32(4), ctypes.c_void_p(t.data_ptr()),
                                   dims, strides, box, estr, 0, 3, 2, 0), "cuTensorMapEncodeTiled")
    return bytes(tm)

def tile_group(Nk, D, Hq, Hkv, B):
    """HopperForwardPlanner.tileGroup: query heads whose K/V fit in 16 MiB, for dynamic causal launches."""
    return min(Hq * B, max(1, (16 << 20) // max(1, Nk * D * 4)) * (Hq // Hkv))

def make_params(k, q, kk, v, o, lse, scale, ctas=None, group=None):
    """ctas: None = one CTA per tile; an int = persistent grid of that many CTAs.
    group: the tile group (decode_tile); None = the planner's rule."""
    m = k.meta
    B, Nq, Hq, D = q.shape
    Nk, Hkv = kk.shape[1], kk.shape[2]
    buf = bytearray(PARAMS_SIZE)
    buf[0:128] = encode_map(q, Nq, Hq, B, D, m["blockM"])
    buf[128:256] = encode_map(kk, Nk, Hkv, B, D, m["blockN"])
    buf[256:384] = encode_map(v, Nk, Hkv, B, D, m["blockN"])
    buf[512:640] = encode_map(o, Nq, Hq, B, D, 64)  # the TMA-store epilogue's target (unused by the others)
    import struct
    mblocks = (Nq + m["blockM"] - 1) // m["blockM"]
    tiles = mblocks * Hq * B
    struct.pack_into("<QQqqqiiiiifi", buf, 384, o.data_ptr(), lse.data_ptr(), o.stride(0), o.stride(1), o.stride(2),
                     Nq, Nk, Hq, Hq // Hkv, mblocks, scale * 1.4426950408889634, tiles)
    struct.pack_into("<Q", buf, OFF["tileCounter"], tile_counter().data_ptr())
    if group is None:  # the planner's rule: claimed causal tiles go in groups
        group = tile_group(Nk, D, Hq, Hkv, B) if m["causal"] and m.get("dynamic") else 1
    struct.pack_into("<i", buf, OFF["tileGroup"], group)
    if m.get("dynamic") and ctas == "dyn":
        ctas = NUM_SMS
    return buf, (tiles if ctas is None else min(tiles, ctas), 1, 1)

_COUNTER = []
def tile_counter():
    """int32[2 + 1022] for the dynamically scheduled kernels (HopperForwardPlanner.tileCounterBytes):
    the two counters are zero once and each launch leaves them zero; then a hand-over slot per CTA."""
    if not _COUNTER:
        _COUNTER.append(torch.zeros(1024, dtype=torch.int32, device="cuda"))
    return _COUNTER[0]

def table_uses_tile_grid(D, causal, N):
    """HopperBlockTable's rule for the statically scheduled kernels: long causal sequences on
    one CTA per tile (headDim 64 from 8k, the others from 4k); the rest on a persistent grid."""
    return causal and (N >= 4096 and D != 64 or N >= 8192)

def coprime_grid(sms, mblocks):
    """HopperForwardPlanner.persistentGridSize."""
    c = sms
    while c > 1 and math.gcd(c, max(1, mblocks)) != 1 and c > sms - 8:
        c -= 1
    return c if math.gcd(c, max(1, mblocks)) == 1 else sms

def launch(k, params, grid, stream=None):
    pbuf = (ctypes.c_uint8 * PARAMS_SIZE).from_buffer_copy(params)
    args = (ctypes.c_void_p * 1)(ctypes.cast(pbuf, ctypes.c_void_p))
    s = stream if stream is not None else torch.cuda.current_stream().cuda_stream
    ck(cuda.cuLaunchKernel(k.fn, grid[0], grid[1], grid[2], k.meta["threads"], 1, 1, k.meta["smem"],
                           ctypes.c_void_p(s), args, None), "cuLaunchKernel")

HANG_S = float(os.environ.get("HOPPER_HANG_S", "20"))  # no launch here takes a second

def sync_with_timeout(seconds=None):
    seconds = seconds or HANG_S
    ev = torch.cuda.Event()
    ev.record()
    t0 = time.time()
    while not ev.query():
        if time.time() - t0 > seconds:
            print("HANG: kernel did not finish within", seconds, "s", flush=True)
            os._exit(3)
        time.sleep(0.0005)
    torch.cuda.synchronize()

def reference(q, k, v, causal, scale):
    """float64 on the GPU; q (B,Nq,Hq,D), k/v (B,Nk,Hkv,D). Returns O (B,Nq,Hq,D), LSE (B,Hq,Nq)."""
    B, Nq, Hq, D = q.shape
    Nk, Hkv = k.shape[1], k.shape[2]
    g = Hq // Hkv
    qd = q.double().permute(0, 2, 1, 3)
    kd = k.double().permute(0, 2, 1, 3).repeat_interleave(g, dim=1)
    vd = v.double().permute(0, 2, 1, 3).repeat_interleave(g, dim=1)
    s = torch.matmul(qd, kd.transpose(-1, -2)) * scale
    if causal:
        i = torch.arange(Nq, device=q.device)[:, None]
        j = torch.arange(Nk, device=q.device)[None, :]
        s = s.masked_fill(j > i + Nk - Nq, float("-inf"))
    lse = torch.logsumexp(s, dim=-1)
    p = torch.exp(s - torch.where(torch.isinf(lse), torch.zeros_like(lse), lse)[..., None])
    p = torch.nan_to_num(p, nan=0.0)
    o = torch.matmul(p, vd)
    return o.permute(0, 2, 1, 3), lse

def standard(q, k, v, causal, scale):
    """The yardstick for the 2x rule: standard attention in float32 with P rounded to the storage
    dtype before P.V and O rounded to it at the end (what a materialising kernel does)."""
    B, Nq, Hq, D = q.shape
    Nk, Hkv = k.shape[1], k.shape[2]
    g = Hq // Hkv
    qf = q.float().permute(0, 2, 1, 3)
    kf = k.float().permute(0, 2, 1, 3).repeat_interleave(g, dim=1)
    vf = v.float().permute(0, 2, 1, 3).repeat_interleave(g, dim=1)
    s = torch.matmul(qf, kf.transpose(-1, -2)) * scale
    if causal:
        i = torch.arange(Nq, device=q.device)[:, None]
        j = torch.arange(Nk, device=q.device)[None, :]
        s = s.masked_fill(j > i + Nk - Nq, float("-inf"))
    p = torch.nan_to_num(torch.softmax(s, dim=-1), nan=0.0).to(q.dtype).float()
    return torch.matmul(p, vf).to(q.dtype).permute(0, 2, 1, 3)

def sdpa(q, k, v, causal, scale, backend):
    from torch.nn.attention import sdpa_kernel, SDPBackend
    be = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION, "math": SDPBackend.MATH}[backend]
    Hq, Hkv = q.shape[2], k.shape[2]
    with sdpa_kernel([be]):
        return torch.nn.functional.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=causal, scale=scale,
            enable_gqa=(Hq != Hkv)).transpose(1, 2)

def rel(a, b):
    return (a.double() - b.double()).norm().item() / max(b.double().norm().item(), 1e-30)

def load_kernels(bindir, only):
    man = json.load(open(os.path.join(bindir, "manifest.json")))
    ks = []
    for m in man:
        if only and not any(o in m["name"] for o in only.split(",")):
            continue
        p = os.path.join(bindir, m["name"] + ".cubin")
        if os.path.exists(p):
            ks.append(Kernel(p, m))
    return ks

CHECK_SHAPES = [  # (B, Hq, Hkv, Nq, Nk)
    (1, 2, 2, 1, 1), (1, 2, 1, 1, 239), (1, 2, 1, 239, 1), (2, 3, 3, 113, 203), (1, 4, 2, 203, 113),
    (2, 4, 1, 1023, 1024), (1, 2, 2, 1024, 1023), (1, 3, 3, 130, 130), (1, 2, 2, 777, 300), (1, 2, 2, 2048, 2048),
]

def run_check(kernels, args):
    torch.manual_seed(1234)
    failures = 0
    rows = []
    for k in kernels:
        m = k.meta
        dt = torch.bfloat16 if m["dtype"] == "bf16" else torch.float16
        D, causal = m["headDim"], m["causal"]
        shapes = CHECK_SHAPES if m["tuned"] or args.full else [CHECK_SHAPES[3], CHECK_SHAPES[5], CHECK_SHAPES[8]]
        worst = 0.0
        for (B, Hq, Hkv, Nq, Nk), ctas in [(sh, c) for sh in shapes for c in (None, 3, NUM_SMS)]:
            q = torch.randn(B, Nq, Hq, D, device="cuda", dtype=dt)
            kk = torch.randn(B, Nk, Hkv, D, device="cuda", dtype=dt)
            v = torch.randn(B, Nk, Hkv, D, device="cuda", dtype=dt)
            scale = 1.0 / math.sqrt(D)
            o = torch.full_like(q, float("nan"))
            lse = torch.full((B, Hq, Nq), float("nan"), device="cuda", dtype=torch.float32)
            # dynamic causal: the 3-CTA grid takes groups of 3 (a short last group)
            group = 3 if ctas == 3 and causal and m.get("dynamic") else None
            params, grid = make_params(k, q, kk, v, o, lse, scale, ctas, group)
            launch(k, params, grid)
            sync_with_timeout()
            o_ref, lse_ref = reference(q, kk, v, causal, scale)
            base_err = rel(standard(q, kk, v, causal, scale), o_ref)
            finite_ok = not torch.isnan(o).any().item() and not torch.isnan(lse).any().item()
            err = rel(o, o_ref)
            masked = torch.isinf(lse_ref)
            lse_ok = torch.equal(torch.isinf(lse), masked) and (
                (lse[~masked] - lse_ref[~masked].float()).abs().max().item() < 2e-3 if (~masked).any() else True)
            zero_ok = (o.permute(0, 2, 1, 3)[masked] == 0).all().item() if masked.any() else True
            tol = 2 * base_err + 1e-4
            # a dynamically scheduled launch must leave its tile counter at zero for the next one
            counter_ok = not m.get("dynamic") or tile_counter()[:2].abs().sum().item() == 0
            ok = finite_ok and lse_ok and zero_ok and counter_ok and err <= tol
            worst = max(worst, err)
            rows.append(dict(kernel=m["name"], shape=[B, Hq, Hkv, Nq, Nk], ctas=ctas, err=err, base_err=base_err, ok=ok,
                             lse_ok=lse_ok, finite=finite_ok))
            if not ok:
                failures += 1
                print(f"FAIL {m['name']} B={B} H={Hq}/{Hkv} N={Nq}x{Nk} ctas={ctas}: err={err:.3e} base={base_err:.3e} "
                      f"finite={finite_ok} lse_ok={lse_ok} zero_rows_ok={zero_ok} counter_ok={counter_ok}", flush=True)
        print(f"{'ok  ' if all(r['ok'] for r in rows if r['kernel']==m['name']) else 'FAIL'} {m['name']:<58} regs={k.regs} worst_err={worst:.2e}", flush=True)
    if args.json:
        json.dump(rows, open(args.json, "w"), indent=1)
    print(f"check: {failures} failing cases", flush=True)
    return failures

def time_round_robin(fns, rounds=5, reps=3, warmup=2):
    """Median per implementation, the implementations interleaved round by round so clock drift
    under sustained load hits all of them alike."""
    for f in fns.values():
        for _ in range(warmup):
            f()
    torch.cuda.synchronize()
    samples = {name: [] for name in fns}
    for _ in range(rounds):
        for name, f in fns.items():
            evs = []
            for _ in range(reps):
                a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                a.record(); f(); b.record()
                evs.append((a, b))
            torch.cuda.synchronize()
            samples[name] += [a.elapsed_time(b) for a, b in evs]
    return {name: statistics.median(v) for name, v in samples.items()}, samples

def time_fn(fn, warmup=3, reps=15):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record(); fn(); b.record()
        ts.append((a, b))
    torch.cuda.synchronize()
    return statistics.median(a.elapsed_time(b) for a, b in ts)

def run_bench(kernels, args):
    torch.manual_seed(7)
    out = []
    dims = [int(x) for x in args.head_dims.split(",")]
    seqlens = [int(x) for x in args.seqlens.split(",")]
    print(f"{'D':>4} {'N':>6} {'causal':>6} {'impl':<58} {'ms':>8} {'TFLOP/s':>8} {'vs cuDNN':>8}", flush=True)
    for D in dims:
        H = 2048 // D
        for causal in [False, True]:
            for N in seqlens:
                B = max(1, 16384 // N)
                dt = torch.bfloat16
                q = torch.randn(B, N, H, D, device="cuda", dtype=dt)
                k = torch.randn(B, N, H, D, device="cuda", dtype=dt)
                v = torch.randn(B, N, H, D, device="cuda", dtype=dt)
                scale = 1.0 / math.sqrt(D)
                flops = 4 * B * H * N * N * D / (2 if causal else 1)
                fns = {}
                for be in ["cudnn", "flash"]:
                    try:
                        sdpa(q, k, v, causal, scale, be); torch.cuda.synchronize()
                        fns["sdpa-" + be] = (lambda be=be: sdpa(q, k, v, causal, scale, be))
                    except Exception as e:
                        print(f"sdpa {be} failed: {str(e)[:200]}", flush=True)
                o = torch.empty_like(q)
                lse = torch.empty(B, H, N, device="cuda", dtype=torch.float32)
                for kern in kernels:
                    m = kern.meta
                    if m["headDim"] != D or m["causal"] != causal or m["dtype"] != "bf16":
                        continue
                    if args.grids == "planned":
                        plan = PLANS.get((D, causal, N))
                        if plan is None or plan["kernel"] != m["name"]:
                            continue
                        params, grid = make_params(kern, q, k, v, o, lse, scale, plan["ctas"], plan.get("tileGroup"))
                        launch(kern, params, grid); sync_with_timeout()
                        fns["ours:" + m["name"] + f"@{grid[0]}"] = (
                            lambda kern=kern, params=params, grid=grid: launch(kern, params, grid))
                        continue
                    modes = args.grids.split(",")
                    if args.grids == "auto":  # HopperBlockTable's rule: long causal on one CTA per tile
                        modes = ["tile"] if table_uses_tile_grid(D, causal, N) else ["coprime"]
                    if m.get("dynamic"):
                        modes = ["dyn"]
                    for mode in modes:
                        mblocks = (N + m["blockM"] - 1) // m["blockM"]
                        ctas = {"tile": None, "persist": NUM_SMS, "dyn": "dyn"}.get(mode, coprime_grid(NUM_SMS, mblocks))
                        # dynamic causal launches: each tile group asked for (--tile-groups), "auto" = the planner's
                        groups = args.tile_groups.split(",") if mode == "dyn" and causal else ["auto"]
                        for g in groups:
                            params, grid = make_params(kern, q, k, v, o, lse, scale, ctas, None if g == "auto" else int(g))
                            launch(kern, params, grid); sync_with_timeout()
                            fns[m["name"] + ("" if mode == "tile" else "+" + mode) + ("" if g == "auto" else "-g" + g)] = (
                                lambda kern=kern, params=params, grid=grid: launch(kern, params, grid))
                res, _ = time_round_robin(fns, rounds=args.rounds, warmup=args.warmup)
                base = res.get("sdpa-cudnn", float("nan"))
                for name, ms in res.items():
                    tf = flops / ms / 1e9
                    print(f"{D:>4} {N:>6} {str(causal):>6} {name:<58} {ms:8.3f} {tf:8.1f} {base / ms:8.3f}", flush=True)
                    out.append(dict(headDim=D, seqlen=N, batch=B, heads=H, causal=causal, impl=name, ms=ms,
                                    tflops=tf, vs_cudnn=base / ms))
                del q, k, v, o, lse
                if args.json:  # after every shape: a timeout keeps what was measured
                    json.dump(out, open(args.json, "w"), indent=1)
    if args.json:
        json.dump(out, open(args.json, "w"), indent=1)

def run_tiny(kernels, args):
    torch.manual_seed(3)
    for k in kernels:
        m = k.meta
        dt = torch.bfloat16 if m["dtype"] == "bf16" else torch.float16
        B, Hq, Hkv, Nq, Nk, D = 1, 2, 1, 200, 333, m["headDim"]
        q = torch.randn(B, Nq, Hq, D, device="cuda", dtype=dt)
        kk = torch.randn(B, Nk, Hkv, D, device="cuda", dtype=dt)
        v = torch.randn(B, Nk, Hkv, D, device="cuda", dtype=dt)
        o = torch.empty_like(q); lse = torch.empty(B, Hq, Nq, device="cuda")
        params, grid = make_params(k, q, kk, v, o, lse, 1 / math.sqrt(D), args.ctas)
        launch(k, params, grid); sync_with_timeout()
        o_ref, _ = reference(q, kk, v, m["causal"], 1 / math.sqrt(D))
        print(f"tiny {m['name']}: err={rel(o, o_ref):.2e}", flush=True)

def run_probe(kernels, args):
    """One launch of each selected kernel and one cuDNN SDPA call per shape, for ncu: bf16, hidden 2048,
    16k tokens, the grid --grids auto would choose."""
    torch.manual_seed(5)
    for D in [int(x) for x in args.head_dims.split(",")]:
        H = 2048 // D
        for N in [int(x) for x in args.seqlens.split(",")]:
            B = max(1, 16384 // N)
            q, k, v = (torch.randn(B, N, H, D, device="cuda", dtype=torch.bfloat16) for _ in range(3))
            o = torch.empty_like(q); lse = torch.empty(B, H, N, device="cuda")
            for causal in [False, True]:
                for kern in kernels:
                    m = kern.meta
                    if m["headDim"] != D or m["causal"] != causal or m["dtype"] != "bf16":
                        continue
                    mblocks = (N + m["blockM"] - 1) // m["blockM"]
                    tile = table_uses_tile_grid(D, causal, N)
                    ctas = "dyn" if m.get("dynamic") else (None if tile else coprime_grid(NUM_SMS, mblocks))
                    params, grid = make_params(kern, q, k, v, o, lse, 1 / math.sqrt(D), ctas)
                    launch(kern, params, grid); sync_with_timeout()
                sdpa(q, k, v, causal, 1 / math.sqrt(D), "cudnn"); torch.cuda.synchronize()
                print(f"probe D={D} N={N} causal={causal} done", flush=True)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--mode", default="check", choices=["check", "bench", "tiny", "probe"])
    ap.add_argument("--only", default="")
    ap.add_argument("--json", default="")
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--head-dims", default="64,128,256")
    ap.add_argument("--seqlens", default="512,1024,2048,4096,8192,16384")
    ap.add_argument("--grids", default="tile,persist", help="comma list of tile,persist,coprime; or auto; or planned")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2,
                    help="calls of each implementation before timing (cuDNN's first shape of a family needs ~10)")
    ap.add_argument("--ctas", type=int, default=None, help="tiny mode: persistent grid size")
    ap.add_argument("--tile-groups", default="auto",
                    help="bench: tile groups to time dynamic causal kernels with, e.g. 1,auto (auto = the planner's)")
    args = ap.parse_args()
    torch.cuda.init(); torch.zeros(1, device="cuda")
    global NUM_SMS
    NUM_SMS = torch.cuda.get_device_properties(0).multi_processor_count
    print(torch.cuda.get_device_name(), "torch", torch.__version__, flush=True)
    kernels = load_kernels(args.bin, args.only)
    global PLANS
    pp = os.path.join(args.bin, "plans.json")
    if os.path.exists(pp):
        PLANS = {(p["headDim"], p["causal"], p["seqlen"]): p for p in json.load(open(pp))}
    print(f"{len(kernels)} kernels loaded", flush=True)
    if args.mode == "check":
        sys.exit(1 if run_check(kernels, args) else 0)
    elif args.mode == "bench":
        run_bench(kernels, args)
    elif args.mode == "probe":
        run_probe(kernels, args)
    else:
        run_tiny(kernels, args)

if __name__ == "__main__":
    main()
