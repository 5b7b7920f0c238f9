#!/usr/bin/env python3
"""Compile generated Hopper kernels (*.cu) to CUBIN with NVRTC for sm_90a, no GPU needed.

  python3 scripts/hopper/nvrtc_compile.py SRC_DIR OUT_DIR [--nvrtc /path/libnvrtc.so.13] [--sass]

Prints one line per kernel with ptxas's registers / spills / warnings, writes OUT_DIR/NAME.cubin,
and with --sass checks the SASS (via cuobjdump next to libnvrtc, or on PATH) for HGMMA and UTMALDG.
"""
import ctypes, glob, os, re, shutil, subprocess, sys, json

def find_nvrtc(explicit):
    cands = [explicit] if explicit else []
    cands += glob.glob("/tmp/nvrtc-hopper/nvidia/cu13/lib/libnvrtc.so.*")
    cands += glob.glob("/usr/local/cuda/lib64/libnvrtc.so*")
    import site
    for sp in site.getsitepackages():
        cands += glob.glob(os.path.join(sp, "nvidia/*/lib/libnvrtc.so.*"))
    cands += ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"]
    for c in cands:
        if not c or "alt" in os.path.basename(c):
            continue
        try:
            return ctypes.CDLL(c), c
        except OSError:
            pass
    sys.exit("libnvrtc not found")

def compile_one(nv, src, name, opts):
    prog = ctypes.c_void_p()
    r = nv.nvrtcCreateProgram(ctypes.byref(prog), src.encode(), (name + ".cu").encode(), 0, None, None)
    assert r == 0, r
    copts = (ctypes.c_char_p * len(opts))(*[o.encode() for o in opts])
    res = nv.nvrtcCompileProgram(prog, len(opts), copts)
    n = ctypes.c_size_t()
    nv.nvrtcGetProgramLogSize(prog, ctypes.byref(n))
    log = ctypes.create_string_buffer(n.value)
    nv.nvrtcGetProgramLog(prog, log)
    cubin = None
    if res == 0:
        nv.nvrtcGetCUBINSize(prog, ctypes.byref(n))
        buf = ctypes.create_string_buffer(n.value)
        nv.nvrtcGetCUBIN(prog, buf)
        cubin = buf.raw
    nv.nvrtcDestroyProgram(ctypes.byref(prog))
    return res, log.value.decode(errors="replace"), cubin

def main():
    args = sys.argv[1:]
    sass = "--sass" in args
    explicit = None
    if "--nvrtc" in args:
        explicit = args[args.index("--nvrtc") + 1]
    pos = [a for a in args if not a.startswith("--") and a != explicit]
    src_dir, out_dir = pos[0], pos[1]
    os.makedirs(out_dir, exist_ok=True)
    nv, path = find_nvrtc(explicit)
    major, minor = ctypes.c_int(), ctypes.c_int()
    nv.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor))
    print(f"nvrtc {major.value}.{minor.value} at {path}")
    cuobjdump = shutil.which("cuobjdump") or next(iter(glob.glob(os.path.join(os.path.dirname(path), "../bin/cuobjdump"))), None)
    opts = ["--gpu-architecture=sm_90a", "-std=c++17", "--ptxas-options=-v", "-lineinfo"]
    failures = 0
    report = []
    for f in sorted(glob.glob(os.path.join(src_dir, "*.cu"))):
        name = os.path.basename(f)[:-3]
        res, log, cubin = compile_one(nv, open(f).read(), name, opts)
        regs = re.search(r"Used (\d+) registers", log)
        spill = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", log)
        stack = re.search(r"(\d+) bytes stack frame", log)
        warns = [l for l in log.splitlines() if "warning" in l.lower() or "Performance" in l]
        line = f"{name}: {'OK' if res == 0 else 'FAIL'} regs={regs.group(1) if regs else '?'} " \
               f"stack={stack.group(1) if stack else '?'} spill={spill.group(1)+'/'+spill.group(2) if spill else '?'}"
        if res != 0:
            failures += 1
            print(line); print(log[-4000:]); continue
        open(os.path.join(out_dir, name + ".cubin"), "wb").write(cubin)
        if sass and cuobjdump:
            s = subprocess.run([cuobjdump, "--dump-sass", os.path.join(out_dir, name + ".cubin")],
                               capture_output=True, text=True).stdout
            line += f" HGMMA={s.count('HGMMA')} UTMALDG={s.count('UTMALDG')} LDL={s.count('LDL')} STL={s.count('STL')}"
            open(os.path.join(out_dir, name + ".sass"), "w").write(s)
        print(line)
        if os.environ.get("NVRTC_LOG"): print(log)
        for w in warns:
            print("   ", w)
        report.append(line)
    for extra in ["manifest.json", "plans.json"]:
        if os.path.exists(os.path.join(src_dir, extra)):
            shutil.copy(os.path.join(src_dir, extra), os.path.join(out_dir, extra))
    sys.exit(1 if failures else 0)

if __name__ == "__main__":
    main()
