"""Compile generated CUDA C++ with NVRTC through ctypes (no CUDA toolkit, no GPU needed).

    python3 scripts/cuda/nvrtc.py DIR --arch sm_90a [--out CUBIN_DIR] [-j N]

compiles every DIR/*.cu to CUBIN for the arch, prints the ptxas report of each kernel
(registers, spill stores/loads, shared memory) and exits non-zero if any kernel fails to
compile or spills. NVRTC is found through $FLASH_ATTN_NVRTC, then the nvidia/*/lib folders of
sys.path (pip's nvidia-cuda-nvrtc), then the plain soname.
"""
import argparse
import ctypes
import glob
import os
import re
import sys
from concurrent.futures import ProcessPoolExecutor


def find_nvrtc():
    env = os.environ.get("FLASH_ATTN_NVRTC")
    if env:
        return env
    for base in sys.path + ["/tmp/nvrtc-kernels"]:
        for pattern in ("nvidia/cu*/lib/libnvrtc.so*", "nvidia/cuda_nvrtc/lib/libnvrtc.so*"):
            hits = sorted(p for p in glob.glob(os.path.join(base, pattern)) if "builtins" not in p and "alt" not in p)
            if hits:
                return hits[0]
    for name in ("libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12"):
        try:
            ctypes.CDLL(name)
            return name
        except OSError:
            pass
    raise SystemExit("NVRTC not found: set FLASH_ATTN_NVRTC or pip install nvidia-cuda-nvrtc")


_lib = None


def lib():
    global _lib
    if _lib is None:
        _lib = ctypes.CDLL(find_nvrtc())
    return _lib


def version():
    major, minor = ctypes.c_int(), ctypes.c_int()
    lib().nvrtcVersion(ctypes.byref(major), ctypes.byref(minor))
    return f"{major.value}.{minor.value}"


def compile_source(source: str, name: str, arch: str, extra=()):
    """Returns (cubin bytes or None, log text)."""
    L = lib()
    prog = ctypes.c_void_p()
    r = L.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), (name + ".cu").encode(), 0, None, None)
    if r != 0:
        return None, f"nvrtcCreateProgram failed: {r}"
    opts = [f"--gpu-architecture={arch}", "-std=c++17", "--ptxas-options=-v", "-lineinfo", *extra]
    arr = (ctypes.c_char_p * len(opts))(*[o.encode() for o in opts])
    r = L.nvrtcCompileProgram(prog, len(opts), arr)
    size = ctypes.c_size_t()
    L.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
    buf = ctypes.create_string_buffer(size.value)
    L.nvrtcGetProgramLog(prog, buf)
    log = buf.value.decode(errors="replace")
    cubin = None
    if r == 0:
        L.nvrtcGetCUBINSize(prog, ctypes.byref(size))
        out = ctypes.create_string_buffer(size.value)
        L.nvrtcGetCUBIN(prog, out)
        cubin = out.raw
    L.nvrtcDestroyProgram(ctypes.byref(prog))
    return cubin, log


def parse_report(log: str):
    regs = re.findall(r"Used (\d+) registers", log)
    spill = re.findall(r"(\d+) bytes spill stores, (\d+) bytes spill loads", log)
    stack = re.findall(r"(\d+) bytes stack frame", log)
    smem = re.findall(r"(\d+) bytes smem", log)
    return {
        "registers": int(regs[-1]) if regs else None,
        "spill_stores": sum(int(a) for a, _ in spill),
        "spill_loads": sum(int(b) for _, b in spill),
        "stack": max([int(s) for s in stack] or [0]),
        "static_smem": int(smem[-1]) if smem else 0,
    }


def _job(args):
    path, arch, out = args
    name = os.path.basename(path)[:-3]
    cubin, log = compile_source(open(path).read(), name, arch)
    if cubin is not None and out:
        with open(os.path.join(out, name + ".cubin"), "wb") as f:
            f.write(cubin)
    return name, cubin is not None, log


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--arch", default="sm_90a")
    ap.add_argument("--out")
    ap.add_argument("--filter", default="")
    ap.add_argument("-j", type=int, default=os.cpu_count())
    a = ap.parse_args()
    if a.out:
        os.makedirs(a.out, exist_ok=True)
    files = sorted(f for f in glob.glob(os.path.join(a.dir, "*.cu")) if a.filter in f)
    print(f"NVRTC {version()} ({find_nvrtc()}), {len(files)} kernels for {a.arch}", flush=True)
    bad = 0
    with ProcessPoolExecutor(a.j) as ex:
        for name, ok, log in ex.map(_job, [(f, a.arch, a.out) for f in files]):
            if not ok:
                bad += 1
                print(f"FAIL {name}\n{log}", flush=True)
                continue
            r = parse_report(log)
            spills = r["spill_stores"] + r["spill_loads"]
            flag = "SPILL" if spills else "ok"
            if spills:
                bad += 1
            print(f"{flag:5} {name:60} regs {r['registers']:>3}  spill {r['spill_stores']}/{r['spill_loads']}  stack {r['stack']}", flush=True)
    print(f"{len(files) - bad}/{len(files)} compiled without spills")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
