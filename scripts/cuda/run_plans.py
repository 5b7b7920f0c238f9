"""Run the Swift-generated kernels on a GPU with PyTorch and the CUDA driver API (ctypes).

The Swift test `CodegenDumpTests` (with FLASH_ATTN_KERNEL_DUMP=DIR) writes every generated
kernel (DIR/sm_90a/*.cu) and the launch plans the Swift planner makes for a correctness grid
and a timing grid (DIR/plans.json), with placeholder addresses `role << 56 | offset`. This
script compiles the kernels with NVRTC (the path the Swift runtime takes), patches the real
device addresses into each parameter block, launches the kernels, and

  * --check: compares O, LSE, dQ, dK, dV with a float64 reference on random inputs (outputs
    and scratch poisoned with NaN first), against the 2x-the-standard-implementation rule;
    checks the deterministic backward is bitwise repeatable;
  * --time: times forward and forward+backward against torch SDPA's flash backend with CUDA
    events (median after warm-up, both in this one process).

    python3 scripts/cuda/run_plans.py DIR [--check] [--time] [--only ID,ID] [--arch sm_90a]
"""
import argparse
import ctypes
import json
import math
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nvrtc  # noqa: E402

import torch  # noqa: E402

ROLES = {"q": 1, "k": 2, "v": 3, "o": 4, "lse": 5, "dout": 6, "dq": 7, "dk": 8, "dv": 9, "scratch": 10}

# ---- CUDA driver through ctypes -------------------------------------------------------------
cuda = ctypes.CDLL("libcuda.so.1")


def ck(r, what):
    if r != 0:
        name = ctypes.c_char_p()
        cuda.cuGetErrorName(r, ctypes.byref(name))
        raise RuntimeError(f"{what}: {name.value.decode() if name.value else r}")


class Kernel:
    def __init__(self, cubin: bytes, entry: str):
        self.module = ctypes.c_void_p()
        ck(cuda.cuModuleLoadData(ctypes.byref(self.module), cubin), "cuModuleLoadData")
        self.func = ctypes.c_void_p()
        ck(cuda.cuModuleGetFunction(ctypes.byref(self.func), self.module, entry.encode()), "cuModuleGetFunction")
        self.smem_set = 0

    def launch(self, grid, block, smem, params: bytes, stream):
        if smem > 48 * 1024 and smem != self.smem_set:
            # CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8
            ck(cuda.cuFuncSetAttribute(self.func, 8, smem), "cuFuncSetAttribute")
            self.smem_set = smem
        buf = ctypes.create_string_buffer(params, len(params))
        args = (ctypes.c_void_p * 1)(ctypes.cast(buf, ctypes.c_void_p))
        ck(cuda.cuLaunchKernel(self.func, grid[0], grid[1], grid[2], block[0], block[1], block[2],
                               smem, ctypes.c_void_p(stream), args, None), "cuLaunchKernel")


def _compile(job):
    path, name, arch = job
    cubin, log = nvrtc.compile_source(open(path).read(), name, arch)
    return name, cubin, log


def compile_all(names, src_dir, arch):
    kernels = {}
    t0 = time.time()
    jobs = [(os.path.join(src_dir, n + ".cu"), n, arch) for n in sorted(names)]
    reports = {}
    with ProcessPoolExecutor(min(16, os.cpu_count())) as ex:
        for name, cubin, log in ex.map(_compile, jobs):
            if cubin is None:
                raise SystemExit(f"compile failed: {name}\n{log}")
            reports[name] = nvrtc.parse_report(log)
            kernels[name] = cubin
    print(f"compiled {len(jobs)} kernels with NVRTC {nvrtc.version()} for {arch} in {time.time() - t0:.1f}s", flush=True)
    return kernels, reports


class Runner:
    def __init__(self, cubins):
        self.cubins = cubins
        self.loaded = {}

    def kernel(self, name, entry):
        key = (name, entry)
        if key not in self.loaded:
            self.loaded[key] = Kernel(self.cubins[name], entry)
        return self.loaded[key]

    def prepare(self, launches, addresses):
        """[(kernel, grid, block, smem, params bytes)] with real addresses patched in."""
        out = []
        for l in launches:
            b = bytearray(bytes.fromhex(l["params"]))
            for off in range(0, len(b) - 7, 8):
                v = int.from_bytes(b[off:off + 8], "little")
                role = v >> 56
                if 1 <= role <= len(ROLES):
                    b[off:off + 8] = (addresses[role] + (v & ((1 << 56) - 1))).to_bytes(8, "little")
            out.append((self.kernel(l["kernel"], l["entry"]), l["grid"], l["block"], l["smem"], bytes(b)))
        return out

    @staticmethod
    def run(prepared):
        stream = torch.cuda.current_stream().cuda_stream
        for k, grid, block, smem, params in prepared:
            k.launch(grid, block, smem, params, stream)


# ---- tensors --------------------------------------------------------------------------------
DT = {"bf16": torch.bfloat16, "fp16": torch.float16}


def make(shape_bshd, layout, dtype, fill=None):
    b, s, h, d = shape_bshd
    if layout == "bhsd":
        base = torch.empty(b, h, s, d, dtype=dtype, device="cuda")
        t = base.transpose(1, 2)
    else:
        t = torch.empty(b, s, h, d, dtype=dtype, device="cuda")
    if fill is None:
        t.copy_(torch.randn(b, s, h, d, device="cuda"))
    else:
        t.fill_(fill)
    return t


def tensors_for(c, poison=True):
    dt = DT[c["dtype"]]
    B, H, KH, SQ, SK, D = c["batch"], c["heads"], c["kv_heads"], c["seqlen_q"], c["seqlen_k"], c["head_dim"]
    lay = c["layout"]
    t = {
        "q": make((B, SQ, H, D), lay, dt), "k": make((B, SK, KH, D), lay, dt), "v": make((B, SK, KH, D), lay, dt),
        "dout": make((B, SQ, H, D), lay, dt),
        "o": make((B, SQ, H, D), lay, dt, float("nan")),
        "dq": make((B, SQ, H, D), lay, dt, float("nan")),
        "dk": make((B, SK, KH, D), lay, dt, float("nan")), "dv": make((B, SK, KH, D), lay, dt, float("nan")),
        "lse": torch.full((B, H, SQ), float("nan"), dtype=torch.float32, device="cuda"),
        "scratch": torch.full((max(16, c["scratch_bytes"]) // 4 + 4,), float("nan"), dtype=torch.float32, device="cuda"),
    }
    addresses = {ROLES[k]: v.data_ptr() for k, v in t.items()}
    for k in ("q", "k", "v", "o", "dq", "dk", "dv", "dout"):
        assert t[k].stride(3) == 1
    return t, addresses


def reference(c, t):
    """float64 O, LSE, dQ, dK, dV (bshd)."""
    B, H, KH, SQ, SK = c["batch"], c["heads"], c["kv_heads"], c["seqlen_q"], c["seqlen_k"]
    g = H // KH
    q = t["q"].double().transpose(1, 2)
    k = t["k"].double().transpose(1, 2).repeat_interleave(g, dim=1)
    v = t["v"].double().transpose(1, 2).repeat_interleave(g, dim=1)
    do = t["dout"].double().transpose(1, 2)
    scale = c["scale"]
    s = scale * (q @ k.transpose(-1, -2))
    if c["causal"]:
        i = torch.arange(SQ, device="cuda")[:, None]
        j = torch.arange(SK, device="cuda")[None, :]
        s = s.masked_fill(j > i + SK - SQ, float("-inf"))
    lse = torch.logsumexp(s, dim=-1)
    p = torch.exp(s - lse[..., None]).nan_to_num(0.0)
    o = p @ v
    dp = do @ v.transpose(-1, -2)
    delta = (do * o).sum(-1, keepdim=True)
    ds = p * (dp - delta)
    dq = scale * ds @ k
    dk = (scale * ds.transpose(-1, -2) @ q).reshape(B, KH, g, SK, -1).sum(2)
    dv = (p.transpose(-1, -2) @ do).reshape(B, KH, g, SK, -1).sum(2)
    return {"o": o.transpose(1, 2), "lse": lse, "dq": dq.transpose(1, 2), "dk": dk.transpose(1, 2), "dv": dv.transpose(1, 2)}


def standard(c, t):
    """The standard attention in the storage dtype, as PyTorch users write it (forward and
    autograd backward): S and P materialised, matrix products in the dtype, softmax in float32."""
    B, H, KH, SQ, SK = c["batch"], c["heads"], c["kv_heads"], c["seqlen_q"], c["seqlen_k"]
    g = H // KH
    q = t["q"].detach().clone().requires_grad_(True)
    k = t["k"].detach().clone().requires_grad_(True)
    v = t["v"].detach().clone().requires_grad_(True)
    qh = q.transpose(1, 2)
    kh = k.transpose(1, 2).repeat_interleave(g, dim=1)
    vh = v.transpose(1, 2).repeat_interleave(g, dim=1)
    s = (qh @ kh.transpose(-1, -2)).float() * c["scale"]
    if c["causal"]:
        i = torch.arange(SQ, device="cuda")[:, None]
        j = torch.arange(SK, device="cuda")[None, :]
        s = s.masked_fill(j > i + SK - SQ, float("-inf"))
    lse = torch.logsumexp(s, dim=-1)
    p = torch.softmax(s, dim=-1).nan_to_num(0.0).to(q.dtype)
    o = (p @ vh).transpose(1, 2)
    o.backward(t["dout"])
    return {"o": o.detach(), "lse": lse.detach(), "dq": q.grad, "dk": k.grad, "dv": v.grad}


def rel_err(x, ref, finite_rows=None):
    x = x.double()
    if finite_rows is not None:
        x, ref = x[finite_rows], ref[finite_rows]
    if torch.isnan(x).any():
        return float("nan")
    den = ref.norm().item()
    num = (x - ref).norm().item()
    return num / den if den > 0 else num


def check(c, runner):
    t, addr = tensors_for(c)
    fwd = runner.prepare(c["forward"], addr)
    bwd = runner.prepare(c["backward"], addr)
    Runner.run(fwd)
    Runner.run(bwd)
    torch.cuda.synchronize()
    ref = reference(c, t)
    std = standard(c, t)
    finite = torch.isfinite(ref["lse"])
    res = {}
    ok = True
    for key in ("o", "lse", "dq", "dk", "dv"):
        mask = finite if key == "lse" else None
        e = rel_err(t[key], ref[key], mask)
        eb = rel_err(std[key], ref[key], mask)
        limit = 2 * eb + 1e-4
        good = not math.isnan(e) and e <= limit
        res[key] = (e, eb)
        ok &= good
    # Rows that see no key: LSE -inf and O = 0 exactly.
    masked_rows_ok = bool((t["lse"][~finite] == float("-inf")).all())
    if (~finite).any():
        o_rows = t["o"].transpose(1, 2)[~finite]
        masked_rows_ok &= bool((o_rows == 0).all())
    ok &= masked_rows_ok
    det_ok = None
    if c["deterministic"]:
        first = [t[k].clone() for k in ("dq", "dk", "dv")]
        for k in ("dq", "dk", "dv"):
            t[k].fill_(float("nan"))
        Runner.run(bwd)
        torch.cuda.synchronize()
        det_ok = all(torch.equal(a, t[k]) for a, k in zip(first, ("dq", "dk", "dv")))
        ok &= det_ok
    return ok, res, masked_rows_ok, det_ok


def time_events(fn, warmup=3, reps=10):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def timing(c, runner, reps):
    from torch.nn.attention import SDPBackend, sdpa_kernel
    import torch.nn.functional as F
    t, addr = tensors_for(c)
    fwd = runner.prepare(c["forward"], addr)
    bwd = runner.prepare(c["backward"], addr)
    B, H, S, D = c["batch"], c["heads"], c["seqlen_q"], c["head_dim"]
    flops = 4 * B * H * S * S * D * (0.5 if c["causal"] else 1.0)
    ours_f = time_events(lambda: Runner.run(fwd), reps=reps)
    ours_fb = time_events(lambda: (Runner.run(fwd), Runner.run(bwd)), reps=reps)
    q = t["q"].transpose(1, 2).detach().requires_grad_(True)
    k = t["k"].transpose(1, 2).detach().requires_grad_(True)
    v = t["v"].transpose(1, 2).detach().requires_grad_(True)
    do = t["dout"].transpose(1, 2)
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        with torch.no_grad():
            ref_f = time_events(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=c["causal"]), reps=reps)

        def fb():
            o = F.scaled_dot_product_attention(q, k, v, is_causal=c["causal"])
            torch.autograd.grad(o, (q, k, v), do)
        ref_fb = time_events(fb, reps=reps)
        o_ref = F.scaled_dot_product_attention(q, k, v, is_causal=c["causal"])
    # Sanity: our O agrees with SDPA flash on this shape.
    Runner.run(fwd)
    torch.cuda.synchronize()
    agree = rel_err(t["o"], o_ref.detach().transpose(1, 2).double())
    return {
        "seqlen": S, "batch": B, "causal": c["causal"],
        "fwd_ms": ours_f, "fwd_tflops": flops / ours_f / 1e9, "sdpa_fwd_ms": ref_f, "sdpa_fwd_tflops": flops / ref_f / 1e9,
        "fb_ms": ours_fb, "fb_tflops": 3.5 * flops / ours_fb / 1e9, "sdpa_fb_ms": ref_fb, "sdpa_fb_tflops": 3.5 * flops / ref_fb / 1e9,
        "o_vs_sdpa": agree,
    }


def time_variant(c, v, runner, reps):
    """Times one tuning variant (a forward, or a backward after the standard forward) and
    checks it against the standard plan's output on the same inputs."""
    t, addr = tensors_for(c)
    fwd = runner.prepare(c["forward"], addr)
    Runner.run(fwd)
    if v["pass"] == "forward":
        torch.cuda.synchronize()
        want = t["o"].clone()
        t["o"].fill_(float("nan"))
        launches = runner.prepare(v["launches"], addr)
        ms = time_events(lambda: Runner.run(launches), reps=reps)
        err = rel_err(t["o"], want.double())
    else:
        Runner.run(runner.prepare(c["backward"], addr))
        torch.cuda.synchronize()
        want = t["dk"].clone()
        t["dk"].fill_(float("nan"))
        launches = runner.prepare(v["launches"], addr)
        ms = time_events(lambda: Runner.run(launches), reps=reps)
        err = rel_err(t["dk"], want.double())
    return {"label": v["label"], "pass": v["pass"], "ms": ms, "err": err}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--arch", default="sm_90a")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--time", action="store_true")
    ap.add_argument("--only", default="")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--json")
    ap.add_argument("--cubins", help="folder of cubins: loaded from there when present (no NVRTC, e.g. under compute-sanitizer), else saved there")
    ap.add_argument("--launch-only", action="store_true", help="with --check: run our launches only, no reference (for compute-sanitizer)")
    ap.add_argument("--once", action="store_true", help="run the forward and backward of the selected timing shapes once (for ncu)")
    ap.add_argument("--variants", action="store_true", help="also time the tuning variants of the timed shapes")
    a = ap.parse_args()
    plans = json.load(open(os.path.join(a.dir, "plans.json")))
    if a.only:
        ids = {int(x) for x in a.only.split(",")}
        plans = [p for p in plans if p["id"] in ids]
    wanted = [p for p in plans if (a.check and p["purpose"] == "check") or ((a.time or a.once) and p["purpose"] == "time")]
    # Compile (in worker processes) before this process creates its CUDA context.
    names = {l["kernel"] for p in wanted for l in p["forward"] + p["backward"]}
    if a.time and a.variants:
        names |= {l["kernel"] for p in wanted for v in p.get("variants", []) for l in v["launches"]}
    if a.cubins and all(os.path.exists(os.path.join(a.cubins, n + ".cubin")) for n in names):
        cubins = {n: open(os.path.join(a.cubins, n + ".cubin"), "rb").read() for n in names}
        reports = {}
        print(f"loaded {len(cubins)} cubins from {a.cubins}", flush=True)
    else:
        cubins, reports = compile_all(names, os.path.join(a.dir, a.arch), a.arch)
        if a.cubins:
            os.makedirs(a.cubins, exist_ok=True)
            for n, blob in cubins.items():
                open(os.path.join(a.cubins, n + ".cubin"), "wb").write(blob)
    torch.cuda.init()
    torch.zeros(1, device="cuda")
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}", flush=True)
    for n in sorted(reports):
        r = reports[n]
        print(f"  {n:62} regs {r['registers']} spill {r['spill_stores']}/{r['spill_loads']}")
    runner = Runner(cubins)
    results = {"checks": [], "timings": []}
    failures = 0
    if a.check and a.launch_only:
        for c in [p for p in wanted if p["purpose"] == "check"]:
            t, addr = tensors_for(c)
            Runner.run(runner.prepare(c["forward"], addr))
            Runner.run(runner.prepare(c["backward"], addr))
            torch.cuda.synchronize()
            print(f"{c['id']:3} launched", flush=True)
        return
    if a.check:
        print("\nid  dtype d    batch heads  seqlen     causal layout det | rel-L2 error ours (standard dtype impl): O, LSE, dQ, dK, dV | ok")
        for c in [p for p in wanted if p["purpose"] == "check"]:
            try:
                ok, res, rows_ok, det_ok = check(c, runner)
            except Exception as e:  # a launch failure poisons the context; report and stop
                print(f"{c['id']:3} EXCEPTION {e}", flush=True)
                failures += 1
                break
            failures += 0 if ok else 1
            errs = "  ".join(f"{res[k][0]:.1e}({res[k][1]:.1e})" for k in ("o", "lse", "dq", "dk", "dv"))
            print(f"{c['id']:3} {c['dtype']:5} {c['head_dim']:<4} {c['batch']:>3} {c['heads']:>3}/{c['kv_heads']:<3} "
                  f"{c['seqlen_q']:>5}x{c['seqlen_k']:<5} {str(c['causal']):5}  {c['layout']} {str(c['deterministic'])[0]}  | {errs} | "
                  f"{'PASS' if ok else 'FAIL'}{'' if rows_ok else ' (masked rows wrong)'}{'' if det_ok in (None, True) else ' (not deterministic)'}",
                  flush=True)
            results["checks"].append({"id": c["id"], "ok": ok, "errors": res, "det": det_ok})
        print(f"checks: {len(results['checks']) - failures} passed, {failures} failed", flush=True)
    if a.once:
        for c in [p for p in wanted if p["purpose"] == "time"]:
            t, addr = tensors_for(c)
            Runner.run(runner.prepare(c["forward"], addr))
            Runner.run(runner.prepare(c["backward"], addr))
            for v in c.get("variants", []) if a.variants else []:
                Runner.run(runner.prepare(v["launches"], addr))
            torch.cuda.synchronize()
        print("ran once", flush=True)
        return
    if a.time:
        print("\nbf16 d128 16 heads, 16k tokens: ours vs torch SDPA flash (median ms, TFLOP/s)")
        print("seqlen batch causal | fwd ours  sdpa   ratio | fwd+bwd ours  sdpa   ratio | O vs sdpa")
        for c in [p for p in wanted if p["purpose"] == "time"]:
            r = timing(c, runner, a.reps)
            results["timings"].append(r)
            print(f"{r['seqlen']:6} {r['batch']:5} {str(r['causal']):6} | {r['fwd_ms']:.3f}ms {r['fwd_tflops']:5.0f} {r['sdpa_fwd_tflops']:5.0f}  "
                  f"{r['sdpa_fwd_ms'] / r['fwd_ms']:.2f}x | {r['fb_ms']:.3f}ms {r['fb_tflops']:5.0f} {r['sdpa_fb_tflops']:5.0f}  "
                  f"{r['sdpa_fb_ms'] / r['fb_ms']:.2f}x | {r['o_vs_sdpa']:.1e}", flush=True)
            if a.variants:
                for v in c.get("variants", []):
                    vr = time_variant(c, v, runner, a.reps)
                    r.setdefault("variants", []).append(vr)
                    print(f"    variant {v['label']:62} {v['pass']:8} {vr['ms']:.3f}ms  err {vr['err']:.1e}", flush=True)
    if a.json:
        json.dump(results, open(a.json, "w"), indent=1, default=str)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
