#!/usr/bin/env python3
"""Check `flash-attn forward/backward` against an independent float64 numpy implementation.

For each shape below it writes random .npy inputs, runs the real binary, and compares O,
LSE, dQ, dK and dV with exact attention computed here in float64 (bottom-right causal
mask, GQA/MQA). Float32 cases must agree to a relative L2 error of 1e-4; float16 cases
(whose outputs are rounded to float16, unit roundoff 2**-11 ~ 4.9e-4) to 2e-3. Then it
checks that bad inputs give one `error:` line, a non-zero exit and no output file.

    python3 scripts/check_against_numpy.py                 # builds the release binary if needed
    python3 scripts/check_against_numpy.py --binary .build/debug/flash-attn --device cpu

Needs only numpy. Exits non-zero if any check fails.
"""

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

FLOAT32_TOLERANCE = 1e-4
FLOAT16_TOLERANCE = 2e-3


# ----------------------------------------------------------------------------------------
# The reference: plain float64 numpy, written from the definitions, no tiling.


def expand_kv(x, query_heads):
    """(B, S, Hk, D) -> (B, S, Hq, D): query head h reads key/value head h // (Hq // Hk)."""
    group = query_heads // x.shape[2]
    return np.repeat(x, group, axis=2)


def visible(seqlen_q, seqlen_k, causal):
    """Boolean (Sq, Sk): query i sees key j when j <= i + Sk - Sq (bottom-right aligned)."""
    if not causal:
        return np.ones((seqlen_q, seqlen_k), dtype=bool)
    i = np.arange(seqlen_q)[:, None]
    j = np.arange(seqlen_k)[None, :]
    return j <= i + seqlen_k - seqlen_q


def reference_forward(q, k, v, scale, causal):
    """O (B, Sq, Hq, D) and LSE (B, Hq, Sq); rows that see no key give O = 0, LSE = -inf."""
    q, k, v = (x.astype(np.float64) for x in (q, k, v))
    hq = q.shape[2]
    ke, ve = expand_kv(k, hq), expand_kv(v, hq)
    s = np.einsum("bqhd,bkhd->bhqk", q, ke) * scale
    mask = visible(q.shape[1], k.shape[1], causal)
    s = np.where(mask, s, -np.inf)
    row_max = s.max(axis=-1, keepdims=True)
    seen = np.isfinite(row_max)
    shifted = np.where(seen, s - np.where(seen, row_max, 0.0), -np.inf)
    total = np.exp(shifted).sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore"):
        lse = np.where(seen, row_max + np.log(np.where(seen, total, 1.0)), -np.inf)
    p = np.where(seen, np.exp(s - np.where(seen, lse, 0.0)), 0.0)
    o = np.einsum("bhqk,bkhd->bqhd", p, ve)
    return o, lse[..., 0]


def reference_backward(q, k, v, do, scale, causal):
    """dQ like Q; dK, dV like K/V, summed over each group's query heads."""
    q, k, v, do = (x.astype(np.float64) for x in (q, k, v, do))
    b, sq, hq, d = q.shape
    sk, hk = k.shape[1], k.shape[2]
    ke, ve = expand_kv(k, hq), expand_kv(v, hq)
    o, lse = reference_forward(q, k, v, scale, causal)
    s = np.einsum("bqhd,bkhd->bhqk", q, ke) * scale
    mask = visible(sq, sk, causal)
    seen = np.isfinite(lse)[..., None]
    p = np.where(mask & seen, np.exp(np.where(mask & seen, s - np.where(seen, lse[..., None], 0.0), -np.inf)), 0.0)
    dv = np.einsum("bhqk,bqhd->bkhd", p, do)
    dp = np.einsum("bqhd,bkhd->bhqk", do, ve)
    row_dot = np.einsum("bqhd,bqhd->bhq", do, o)
    ds = p * (dp - row_dot[..., None])
    dq = np.einsum("bhqk,bkhd->bqhd", ds, ke) * scale
    dk = np.einsum("bhqk,bqhd->bkhd", ds, q) * scale
    group = hq // hk
    dk = dk.reshape(b, sk, hk, group, d).sum(axis=3)
    dv = dv.reshape(b, sk, hk, group, d).sum(axis=3)
    return dq, dk, dv


def self_test():
    """The reference's backward against central finite differences of its forward, on
    small cases with GQA and fully masked causal rows: the yardstick must be right too."""
    worst = 0.0
    for b, sq, sk, hq, hk, d, causal in [(1, 5, 3, 4, 2, 3, True), (2, 3, 6, 2, 1, 4, False), (1, 4, 4, 3, 3, 2, True)]:
        rng = np.random.default_rng(sq * 100 + sk)
        q, k, v, do = (rng.standard_normal(s) for s in [(b, sq, hq, d), (b, sk, hk, d), (b, sk, hk, d), (b, sq, hq, d)])
        scale = 0.7
        grads = reference_backward(q, k, v, do, scale, causal)
        for x, g in zip((q, k, v), grads):
            numeric = np.zeros_like(x)
            for idx in np.ndindex(x.shape):
                old = x[idx]
                x[idx] = old + 1e-6
                plus = np.sum(reference_forward(q, k, v, scale, causal)[0] * do)
                x[idx] = old - 1e-6
                minus = np.sum(reference_forward(q, k, v, scale, causal)[0] * do)
                x[idx] = old
                numeric[idx] = (plus - minus) / 2e-6
            worst = max(worst, relative_l2(g, numeric))
        o, lse = reference_forward(q, k, v, scale, causal)
        if causal and sq > sk:
            assert np.all(o[:, : sq - sk] == 0) and np.all(np.isneginf(lse[:, :, : sq - sk])), "masked rows"
    print(f"self-test: reference backward vs finite differences, worst relative L2 {worst:.2e}")
    return worst < 1e-6


def relative_l2(x, ref):
    """||x - ref|| / ||ref||; matching -inf (masked LSE rows) count as equal, any other
    non-finite value as a failure."""
    x = np.asarray(x, dtype=np.float64).ravel()
    ref = np.asarray(ref, dtype=np.float64).ravel()
    if x.shape != ref.shape:
        return float("inf")
    both_inf = np.isinf(x) & np.isinf(ref) & (np.sign(x) == np.sign(ref))
    if not np.all(np.isfinite(x) | both_inf) or not np.all(np.isfinite(ref) | both_inf):
        return float("inf")
    x, ref = x[~both_inf], ref[~both_inf]
    den = np.linalg.norm(ref)
    num = np.linalg.norm(x - ref)
    return float(num / den) if den > 0 else float(num)


# ----------------------------------------------------------------------------------------
# Cases: (name, batch, seqlenQ, seqlenK, heads, kvHeads, headDim, causal, dtype, scale)

CASES = [
    ("113x203", 1, 113, 203, 2, 2, 64, False, "f4", None),
    ("113x203 causal", 1, 113, 203, 2, 2, 64, True, "f4", None),
    ("203x113 causal (masked rows)", 1, 203, 113, 4, 2, 111, True, "f4", None),
    ("1x239", 2, 1, 239, 4, 4, 40, False, "f4", None),
    ("1x239 causal", 2, 1, 239, 4, 4, 40, True, "f4", None),
    ("239x1", 1, 239, 1, 2, 2, 3, False, "f4", None),
    ("239x1 causal (238 masked rows)", 2, 239, 1, 4, 4, 40, True, "f4", None),
    ("GQA 8/2 causal", 2, 97, 131, 8, 2, 59, True, "f4", None),
    ("MQA 6/1 causal", 1, 128, 128, 6, 1, 128, True, "f4", None),
    ("headDim 1", 1, 65, 17, 3, 3, 1, True, "f4", None),
    ("headDim 256", 1, 33, 47, 2, 1, 256, False, "f4", None),
    ("scale 0.3", 1, 50, 70, 2, 2, 16, False, "f4", 0.3),
    ("1x1", 1, 1, 1, 1, 1, 8, True, "f4", None),
    ("1023x1024 causal (many blocks)", 1, 1023, 1024, 2, 2, 64, True, "f4", None),
    ("float16 GQA", 1, 64, 80, 4, 2, 64, False, "f2", None),
    ("float16 causal", 2, 77, 77, 2, 2, 32, True, "f2", None),
]


def run(binary, args, cwd):
    return subprocess.run([binary] + args, cwd=cwd, capture_output=True, text=True)


def save(path, array, version=None):
    """np.save, or a specific .npy format version (1.0, 2.0, 3.0) to exercise the reader."""
    if version is None:
        np.save(path, array)
        return
    with open(path, "wb") as f:
        np.lib.format.write_array(f, array, version=version, allow_pickle=False)


def check_case(binary, device, algorithm, case, seed, folder):
    name, b, sq, sk, hq, hk, d, causal, dtype, scale = case
    rng = np.random.default_rng(seed)
    np_dtype = np.float32 if dtype == "f4" else np.float16
    q = rng.standard_normal((b, sq, hq, d)).astype(np_dtype)
    k = rng.standard_normal((b, sk, hk, d)).astype(np_dtype)
    v = rng.standard_normal((b, sk, hk, d)).astype(np_dtype)
    do = rng.standard_normal((b, sq, hq, d)).astype(np_dtype)
    s = scale if scale is not None else 1.0 / np.sqrt(d)

    path = lambda n: os.path.join(folder, n)
    # Exercise every .npy format version the reader accepts.
    save(path("q.npy"), q, (1, 0))
    save(path("k.npy"), k, (2, 0))
    save(path("v.npy"), v, (3, 0))
    save(path("do.npy"), do)

    common = ["--q", "q.npy", "--k", "k.npy", "--v", "v.npy", "--device", device, "--algorithm", algorithm]
    if causal:
        common.append("--causal")
    if scale is not None:
        common += ["--scale", repr(scale)]

    failures = []
    r = run(binary, ["forward"] + common + ["--out", "o.npy", "--lse", "lse.npy"], folder)
    if r.returncode != 0:
        return None, [f"forward exited {r.returncode}: {r.stderr.strip()}"]
    o = np.load(path("o.npy"))
    lse = np.load(path("lse.npy"))
    if o.dtype != np_dtype:
        failures.append(f"O dtype {o.dtype}, expected {np.dtype(np_dtype)}")
    if lse.dtype != np.float32 or lse.shape != (b, hq, sq):
        failures.append(f"LSE {lse.dtype}{lse.shape}, expected float32{(b, hq, sq)}")

    ref_o, ref_lse = reference_forward(q, k, v, s, causal)
    ref_dq, ref_dk, ref_dv = reference_backward(q, k, v, do, s, causal)
    errors = {"O": relative_l2(o, ref_o), "LSE": relative_l2(lse, ref_lse)}

    # The backward reads O from a file: give it the reference O in the inputs' dtype, once
    # with the LSE from our forward and once recomputing it (no --lse). Report the worse.
    save(path("o_ref.npy"), ref_o.astype(np_dtype))
    for extra in (["--lse", "lse.npy"], []):
        r = run(
            binary,
            ["backward"] + common + ["--out", "o_ref.npy", "--dout", "do.npy", "--dq", "dq.npy", "--dk", "dk.npy", "--dv", "dv.npy"] + extra,
            folder,
        )
        if r.returncode != 0:
            failures.append(f"backward {' '.join(extra) or '(LSE recomputed)'} exited {r.returncode}: {r.stderr.strip()}")
            continue
        for key, file, ref in (("dQ", "dq.npy", ref_dq), ("dK", "dk.npy", ref_dk), ("dV", "dv.npy", ref_dv)):
            got = np.load(path(file))
            if got.shape != ref.shape or got.dtype != np_dtype:
                failures.append(f"{key} {got.dtype}{got.shape}, expected {np.dtype(np_dtype)}{ref.shape}")
            errors[key] = max(errors.get(key, 0.0), relative_l2(got, ref))

    tolerance = FLOAT32_TOLERANCE if dtype == "f4" else FLOAT16_TOLERANCE
    for key, err in errors.items():
        if not err <= tolerance:
            failures.append(f"{key} relative L2 {err:.3g} > {tolerance:g}")
    return errors, failures


# ----------------------------------------------------------------------------------------
# Bad inputs: one `error:` line, non-zero exit, no output file.


def bad_input_checks(binary, device, folder):
    rng = np.random.default_rng(7)
    p = lambda n: os.path.join(folder, n)
    q = rng.standard_normal((2, 5, 4, 8)).astype(np.float32)
    k = rng.standard_normal((2, 7, 2, 8)).astype(np.float32)
    np.save(p("q.npy"), q)
    np.save(p("k.npy"), k)
    np.save(p("v.npy"), k + 1)
    np.save(p("o.npy"), q)
    np.save(p("do.npy"), q - 1)
    np.save(p("f64.npy"), q.astype(np.float64))
    np.save(p("i32.npy"), q.astype(np.int32))
    np.save(p("big.npy"), q.astype(">f4"))
    np.save(p("fortran.npy"), np.asfortranarray(q))
    np.save(p("object.npy"), np.array([1, "a"], dtype=object), allow_pickle=True)
    np.save(p("k3.npy"), rng.standard_normal((2, 7, 3, 8)).astype(np.float32))
    np.save(p("v_short.npy"), rng.standard_normal((2, 6, 2, 8)).astype(np.float32))
    np.save(p("o_bad.npy"), rng.standard_normal((2, 5, 4, 9)).astype(np.float32))
    np.save(p("lse16.npy"), rng.standard_normal((2, 4, 5)).astype(np.float16))
    np.save(p("lse_bad.npy"), rng.standard_normal((2, 5, 4)).astype(np.float32))
    data = open(p("q.npy"), "rb").read()
    open(p("trunc.npy"), "wb").write(data[:-10])
    open(p("trunc_header.npy"), "wb").write(data[:30])
    open(p("text.npy"), "w").write("not an array\n")

    fwd = lambda **over: args_with(
        ["forward", "--q", "q.npy", "--k", "k.npy", "--v", "v.npy", "--out", "out.npy", "--device", device], over)
    bwd = lambda **over: args_with(
        ["backward", "--q", "q.npy", "--k", "k.npy", "--v", "v.npy", "--out", "o.npy", "--dout", "do.npy",
         "--dq", "dq.npy", "--dk", "dk.npy", "--dv", "dv.npy", "--device", device], over)
    checks = [
        ("missing file", fwd(q="missing.npy"), "missing.npy"),
        ("truncated data", fwd(k="trunc.npy"), "truncated"),
        ("truncated header", fwd(q="trunc_header.npy"), "truncated"),
        ("not .npy", fwd(v="text.npy"), "not a .npy file"),
        ("float64", fwd(q="f64.npy"), "float64"),
        ("int32", fwd(q="i32.npy"), "int32"),
        ("big-endian", fwd(q="big.npy"), "big-endian"),
        ("Fortran order", fwd(q="fortran.npy"), "Fortran"),
        ("object array", fwd(q="object.npy"), "object"),
        ("heads don't divide", fwd(k="k3.npy", v="k3.npy"), "k3.npy"),
        ("V unlike K", fwd(v="v_short.npy"), "v_short.npy"),
        ("scale 0", fwd(scale="0"), "--scale"),
        ("scale nan", fwd(scale="nan"), "--scale"),
        ("scale text", fwd(scale="big"), "--scale"),
        ("same output twice", fwd(lse="out.npy"), "--lse"),
        ("O unlike Q", bwd(out="o_bad.npy"), "o_bad.npy"),
        ("dO missing", bwd(dout="none.npy"), "none.npy"),
        ("LSE float16", bwd(lse="lse16.npy"), "float32"),
        ("LSE shape", bwd(lse="lse_bad.npy"), "lse_bad.npy"),
    ]
    results = []
    for name, args, word in checks:
        before = set(os.listdir(folder))
        r = run(binary, args, folder)
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        problems = []
        if r.returncode == 0:
            problems.append("exit status 0")
        if len(lines) != 1 or not lines[0].startswith("error: "):
            problems.append(f"stderr is not one 'error:' line: {r.stderr!r}")
        elif word.lower() not in lines[0].lower():
            problems.append(f"error line does not mention {word!r}")
        created = set(os.listdir(folder)) - before
        if created:
            problems.append(f"left files behind: {sorted(created)}")
        results.append((name, lines[0] if lines else "", problems))
    return results


def args_with(args, over):
    args = list(args)
    for key, value in over.items():
        option = "--" + key
        if option in args:
            args[args.index(option) + 1] = value
        else:
            args += [option, value]
    return args


# ----------------------------------------------------------------------------------------


def find_binary(explicit):
    if explicit:
        return os.path.abspath(explicit)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    print("building: swift build -c release --product flash-attn", file=sys.stderr)
    subprocess.run(["swift", "build", "-c", "release", "--product", "flash-attn"], cwd=root, check=True)
    return os.path.join(root, ".build", "release", "flash-attn")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", help="flash-attn executable (default: build the release one)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    parser.add_argument("--algorithm", default="flash,standard", help="comma-separated (default flash,standard)")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--self-test", action="store_true", help="only check the numpy reference itself")
    args = parser.parse_args()
    if not self_test():
        print("self-test FAILED: the numpy reference is wrong", file=sys.stderr)
        return 1
    if args.self_test:
        return 0
    binary = find_binary(args.binary)

    failed = 0
    header = f"{'case':32} {'shape B,Sq,Sk,Hq/Hk,D':24} {'dtype':5} {'algorithm':9} {'O':>9} {'LSE':>9} {'dQ':>9} {'dK':>9} {'dV':>9}  result"
    print(header)
    print("-" * len(header))
    for algorithm in args.algorithm.split(","):
        for index, case in enumerate(CASES):
            with tempfile.TemporaryDirectory() as folder:
                errors, failures = check_case(binary, args.device, algorithm, case, args.seed + index, folder)
            name, b, sq, sk, hq, hk, d, causal, dtype, scale = case
            shape = f"{b},{sq},{sk},{hq}/{hk},{d}"
            cells = " ".join(f"{errors.get(k, float('nan')):9.2e}" if errors else f"{'-':>9}" for k in ("O", "LSE", "dQ", "dK", "dV"))
            result = "ok" if not failures else "FAIL: " + "; ".join(failures)
            failed += bool(failures)
            print(f"{name:32} {shape:24} {dtype:5} {algorithm:9} {cells}  {result}", flush=True)

    print()
    print(f"tolerance: relative L2 <= {FLOAT32_TOLERANCE:g} (float32), <= {FLOAT16_TOLERANCE:g} (float16 outputs)")
    print()
    with tempfile.TemporaryDirectory() as folder:
        bad = bad_input_checks(binary, args.device, folder)
    width = max(len(n) for n, _, _ in bad)
    print(f"{'bad input':{width}}  result  error line")
    for name, line, problems in bad:
        failed += bool(problems)
        print(f"{name:{width}}  {'ok' if not problems else 'FAIL'}    {line}" + ("" if not problems else "  <- " + "; ".join(problems)))

    print()
    print("all checks passed" if failed == 0 else f"{failed} check(s) FAILED")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
