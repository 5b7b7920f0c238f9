#!/usr/bin/env python3
"""Compile generated Hopper kernels (*.cu) to CUBIN with NVRTC for sm_90a, no GPU needed.

  python3 scripts/hopper/nvrtc_compile.py SRC_DIR OUT_DIR [--nvrtc /path/libnvrtc.so.13] [--sass]

Prints one line per kernel with ptxas's registers / spills / warnings, writes OUT_DIR/NAME.cubin,
and with --sass checks the SASS (via cuobjdump next to libnvrtc, or on PATH) for HGMMA and UTMALDG.
"""
import glob, os, shutil, subprocess, sys

# NVRTC loading, compiling and the ptxas report are shared with the FA2 kernels' script.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cuda"))
import nvrtc  # noqa: E402

def main():
    args = sys.argv[1:]
    sass = "--sass" in args
    explicit = None
    if "--nvrtc" in args:
        explicit = args[args.index("--nvrtc") + 1]
    pos = [a for a in args if not a.startswith("--") and a != explicit]
    src_dir, out_dir = pos[0], pos[1]
    os.makedirs(out_dir, exist_ok=True)
    if explicit:
        os.environ["FLASH_ATTN_NVRTC"] = explicit
    path = nvrtc.find_nvrtc()
    print(f"nvrtc {nvrtc.version()} at {path}")
    cuobjdump = shutil.which("cuobjdump") or next(iter(glob.glob(os.path.join(os.path.dirname(path), "../bin/cuobjdump"))), None)
    failures = 0
    report = []
    for f in sorted(glob.glob(os.path.join(src_dir, "*.cu"))):
        name = os.path.basename(f)[:-3]
        cubin, log = nvrtc.compile_source(open(f).read(), name, "sm_90a")
        r = nvrtc.parse_report(log)
        warns = [l for l in log.splitlines() if "warning" in l.lower() or "Performance" in l]
        line = f"{name}: {'OK' if cubin is not None else 'FAIL'} regs={r['registers'] if r['registers'] is not None else '?'} " \
               f"stack={r['stack']} spill={r['spill_stores']}/{r['spill_loads']}"
        if cubin is None:
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
