#!/usr/bin/env python3
"""PyTorch attention, side by side with `flash-attn bench --with-pytorch`.

Runs the configurations that `flash-attn bench` passes as JSON through:
  torch-naive           matmul + softmax + matmul, as the seed reports wrote it by hand
  torch-sdpa-flash      scaled_dot_product_attention, FLASH_ATTENTION backend only (GPU)
  torch-sdpa-efficient  scaled_dot_product_attention, EFFICIENT_ATTENTION backend only (GPU)
  torch-sdpa-cudnn      scaled_dot_product_attention, CUDNN_ATTENTION backend only (GPU)
  torch-sdpa            scaled_dot_product_attention, PyTorch's own choice (the CPU kernel)
and writes records in the schema of flash-attn's results.json:

  {"torch": "2.x", "device": "...", "notes": [...], "records": [ {implementation, device,
   dtype, batch, heads, kvHeads, seqlenQ, seqlenK, headDim, causal, pass, medianMs, minMs,
   maxMs, tflops, peakMemoryBytes, maxError, status, experiments, note}, ... ]}

Times: CUDA events around each run on a GPU, time.perf_counter on a CPU; the
implementations of one configuration are interleaved round-robin after warm-up, and the
median is reported. Peak memory (GPU): torch.cuda.max_memory_allocated during one run
beyond what was allocated before it. maxError: max |out - reference| where the reference is
the naive attention computed in float32 on the same inputs (O for the forward, dQ/dK/dV
otherwise).

Usage: bench_pytorch.py --config CONFIG.json --output RECORDS.json
       bench_pytorch.py --check     (prints the torch version, exit 0; exit 3 without torch)
Exit status 3 when torch cannot be imported (the caller says so and goes on).
"""
import argparse
import json
import math
import platform
import sys
import time

NOTES = []


def log(msg):
    print(f"[bench_pytorch] {msg}", file=sys.stderr, flush=True)


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def forward_flops(c):
    """4·B·Hq·D per visible (query, key) pair; causal is bottom-right aligned."""
    nq, nk = c["seqlenQ"], c["seqlenK"]
    if c["causal"]:
        pairs = sum(max(0, min(nk, i + nk - nq + 1)) for i in range(nq))
    else:
        pairs = nq * nk
    return 4.0 * c["batch"] * c["heads"] * pairs * c["headDim"]


def pass_flops(c):
    f = forward_flops(c)
    return {"forward": f, "backward": 2.5 * f, "forward+backward": 3.5 * f}[c["pass"]]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config")
    ap.add_argument("--output")
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    try:
        import torch  # noqa: F401
    except Exception as e:  # ImportError, or a broken install raising OSError
        log(f"torch is not importable with {sys.executable}: {e}")
        return 3
    if args.check:
        import torch
        print(torch.__version__)
        return 0
    if not args.config or not args.output:
        ap.error("--config and --output are required")
    with open(args.config) as f:
        cfg = json.load(f)
    out = run(cfg)
    # Non-finite numbers as the strings Swift's JSONDecoder is told to accept.
    for r in out["records"]:
        for key, val in r.items():
            if isinstance(val, float) and not math.isfinite(val):
                r[key] = "nan" if math.isnan(val) else ("inf" if val > 0 else "-inf")
    with open(args.output, "w") as f:
        json.dump(out, f, indent=1, allow_nan=False)
    return 0


def run(cfg):
    import torch
    import torch.nn.functional as F

    device = cfg.get("device", "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        NOTES.append("torch.cuda is not available: PyTorch rows ran on the CPU instead")
        device = "cpu"
    gpu = device == "cuda"
    dev = torch.device(device)
    dev_name = torch.cuda.get_device_name() if gpu else f"{cpu_name()}, {torch.get_num_threads()} threads"
    warmup = int(cfg.get("warmup", 1))
    repeats = max(1, int(cfg.get("repeats", 5)))
    max_seconds = cfg.get("maxSeconds")
    impls = cfg.get("implementations") or (
        ["torch-naive", "torch-sdpa-flash", "torch-sdpa-efficient", "torch-sdpa-cudnn"] if gpu
        else ["torch-naive", "torch-sdpa"])
    dtypes = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:  # torch < 2.3
        SDPBackend = sdpa_kernel = None
    try:
        from torch.nn.attention.bias import causal_lower_right
    except ImportError:
        causal_lower_right = None

    def sync():
        if gpu:
            torch.cuda.synchronize()

    def naive(q, k, v, causal, scale):
        # (B, H, N, D) views; GQA by repeating K/V heads like a hand-written model would.
        g = q.shape[1] // k.shape[1]
        if g > 1:
            k = k.repeat_interleave(g, dim=1)
            v = v.repeat_interleave(g, dim=1)
        s = torch.matmul(q, k.transpose(-2, -1)) * scale
        if causal:
            nq, nk = q.shape[2], k.shape[2]
            mask = torch.ones(nq, nk, dtype=torch.bool, device=q.device).tril(diagonal=nk - nq)
            s = s.masked_fill(~mask, float("-inf"))
        p = torch.softmax(s, dim=-1)
        if causal and q.shape[2] > k.shape[2]:
            p = torch.nan_to_num(p, nan=0.0)  # rows that see no key give 0, as ours do
        return torch.matmul(p, v)

    def sdpa(q, k, v, causal, scale, backend):
        nq, nk = q.shape[2], k.shape[2]
        kw = {"scale": scale}
        if q.shape[1] != k.shape[1]:
            kw["enable_gqa"] = True
        if causal and nq == nk:
            kw["is_causal"] = True
        elif causal:
            # is_causal is top-left aligned; ours (and flash-attn's) is bottom-right.
            if causal_lower_right is None:
                raise NotImplementedError("bottom-right causal mask needs torch >= 2.3")
            kw["attn_mask"] = causal_lower_right(nq, nk)
        if backend is None or sdpa_kernel is None:
            return F.scaled_dot_product_attention(q, k, v, **kw)
        with sdpa_kernel(backend):
            return F.scaled_dot_product_attention(q, k, v, **kw)

    def backend_of(name):
        if SDPBackend is None:
            return None
        return {"torch-sdpa-flash": getattr(SDPBackend, "FLASH_ATTENTION", None),
                "torch-sdpa-efficient": getattr(SDPBackend, "EFFICIENT_ATTENTION", None),
                "torch-sdpa-cudnn": getattr(SDPBackend, "CUDNN_ATTENTION", None)}.get(name)

    def attention_fn(name):
        if name == "torch-naive":
            return naive
        if name == "torch-sdpa":
            return lambda q, k, v, c, s: sdpa(q, k, v, c, s, None)
        b = backend_of(name)
        if b is None:
            raise NotImplementedError(f"{name}: this torch has no such SDPA backend")
        return lambda q, k, v, c, s: sdpa(q, k, v, c, s, b)

    def is_oom(e):
        return isinstance(e, getattr(torch.cuda, "OutOfMemoryError", ())) or "out of memory" in str(e).lower()

    def classify(e):
        msg = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
        if is_oom(e):
            return "oom", msg
        if isinstance(e, NotImplementedError) or "No available kernel" in str(e) or "not supported" in str(e).lower():
            return "unsupported", msg
        return "error", msg

    def free():
        if gpu:
            torch.cuda.empty_cache()

    records = []
    start = time.monotonic()
    gen = torch.Generator(device="cpu")
    for ci, c in enumerate(cfg["cases"]):
        if max_seconds is not None and time.monotonic() - start > max_seconds:
            NOTES.append(f"out of time (maxSeconds {max_seconds}): skipped {len(cfg['cases']) - ci} configuration(s)")
            break
        B, H, KV, NQ, NK, D = c["batch"], c["heads"], c["kvHeads"], c["seqlenQ"], c["seqlenK"], c["headDim"]
        causal, ps = c["causal"], c["pass"]
        dtype = dtypes[c["dtype"]]
        scale = 1.0 / math.sqrt(D)
        flops = pass_flops(c)
        log(f"[{ci + 1}/{len(cfg['cases'])}] B{B} H{H}/{KV} N{NQ}x{NK} D{D} {'causal ' if causal else ''}{c['dtype']} {ps}")

        def record(name, status, note=None):
            r = {"implementation": name, "device": dev_name, "dtype": c["dtype"], "batch": B, "heads": H,
                 "kvHeads": KV, "seqlenQ": NQ, "seqlenK": NK, "headDim": D, "causal": causal, "pass": ps,
                 "medianMs": None, "minMs": None, "maxMs": None, "tflops": None, "peakMemoryBytes": None,
                 "maxError": None, "status": status, "experiments": c.get("experiments", []), "note": note}
            records.append(r)
            return r

        try:
            gen.manual_seed(int(cfg.get("seed", 0x5EED)) + ci)
            # (batch, seqlen, heads, headDim) like flash-attn, viewed as (B, H, N, D).
            mk = lambda n, h: (torch.rand(B, n, h, D, generator=gen) * 2 - 1).to(device=dev, dtype=dtype)
            q, k, v = mk(NQ, H), mk(NK, KV), mk(NK, KV)
            dout = mk(NQ, H) if ps != "forward" else None
        except Exception as e:  # noqa: BLE001 - OOM on the inputs themselves
            status, msg = classify(e)
            for name in impls:
                record(name, status, msg)
            free()
            continue
        qt, kt, vt = (x.transpose(1, 2) for x in (q, k, v))
        dot = dout.transpose(1, 2) if dout is not None else None

        # Reference: naive attention in float32 on the same inputs.
        ref = None
        try:
            q32, k32, v32 = (x.float().requires_grad_(ps != "forward") for x in (qt, kt, vt))
            o32 = naive(q32, k32, v32, causal, scale)
            if ps == "forward":
                ref = {"O": o32.detach()}
            else:
                o32.backward(dot.float())
                ref = {"dQ": q32.grad, "dK": k32.grad, "dV": v32.grad}
            del o32
        except Exception as e:  # noqa: BLE001
            ref = None
            if not is_oom(e):
                log(f"reference failed: {e}")
        free()

        # One runner per implementation: returns a function doing one timed run.
        runners = {}
        for name in impls:
            try:
                fn = attention_fn(name)
                if ps == "forward":
                    def run_once(fn=fn):
                        with torch.no_grad():
                            return {"O": fn(qt, kt, vt, causal, scale)}
                else:
                    leaves = [x.detach().requires_grad_(True) for x in (qt, kt, vt)]
                    if ps == "backward":
                        out = fn(*leaves, causal, scale)  # untimed forward; its graph is reused

                        def run_once(out=out, leaves=leaves):
                            for x in leaves:
                                x.grad = None
                            out.backward(dot, retain_graph=True)
                            return {"dQ": leaves[0].grad, "dK": leaves[1].grad, "dV": leaves[2].grad}
                    else:
                        def run_once(fn=fn, leaves=leaves):
                            for x in leaves:
                                x.grad = None
                            o = fn(*leaves, causal, scale)
                            o.backward(dot)
                            return {"dQ": leaves[0].grad, "dK": leaves[1].grad, "dV": leaves[2].grad}
                # Warm-up (also compiles/selects kernels), then one run measured for memory.
                for _ in range(max(0, warmup)):
                    run_once()
                sync()
                peak = None
                if gpu:
                    torch.cuda.reset_peak_memory_stats()
                    base = torch.cuda.memory_allocated()
                    outs = run_once()
                    sync()
                    peak = torch.cuda.max_memory_allocated() - base
                else:
                    outs = run_once()
                err = None
                if ref is not None:
                    err = 0.0
                    for key, r in ref.items():
                        err = max(err, (outs[key].float() - r).abs().max().item())
                del outs
                runners[name] = (run_once, peak, err)
            except Exception as e:  # noqa: BLE001
                status, msg = classify(e)
                record(name, status, msg)
                free()

        times = {name: [] for name in runners}
        failed = set()
        names = list(runners)
        for rnd in range(repeats):
            for j in range(len(names)):
                name = names[(rnd + j) % len(names)]
                if name in failed:
                    continue
                fn = runners[name][0]
                try:
                    if gpu:
                        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                        s.record()
                        fn()
                        e.record()
                        e.synchronize()
                        times[name].append(s.elapsed_time(e))
                    else:
                        t0 = time.perf_counter()
                        fn()
                        times[name].append((time.perf_counter() - t0) * 1e3)
                except Exception as ex:  # noqa: BLE001
                    status, msg = classify(ex)
                    record(name, status, msg)
                    failed.add(name)
                    free()
        for name in names:
            if name in failed:
                continue
            t = sorted(times[name])
            n = len(t)
            med = t[n // 2] if n % 2 else (t[n // 2 - 1] + t[n // 2]) / 2
            r = record(name, "ok", None if gpu else "peak memory not measured on the CPU")
            r.update({"medianMs": med, "minMs": t[0], "maxMs": t[-1],
                      "tflops": flops / (med * 1e-3) / 1e12 if med > 0 else None,
                      "peakMemoryBytes": runners[name][1], "maxError": runners[name][2]})
        del runners, q, k, v, qt, kt, vt, dout, dot, ref
        free()
    return {"torch": torch.__version__, "device": dev_name, "notes": NOTES, "records": records}


if __name__ == "__main__":
    sys.exit(main())
