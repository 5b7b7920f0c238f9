#!/usr/bin/env python3
"""Digest of the machine code (SASS) of every generated kernel, to show that a refactor of the
generators that changes source text leaves the compiled kernels byte-identical. No GPU needed.

    FLASH_ATTN_KERNEL_SOURCES=/tmp/src-new swift test -c release -Xswiftc -enable-testing \\
        --filter KernelDigestTests
    python3 scripts/cuda/sass_digest.py /tmp/src-new --out /tmp/sass-new.txt [--arch sm_80,sm_90a] [-j 2]
    diff /tmp/sass-old.txt /tmp/sass-new.txt

Sources are DIR/<arch>/<name>.cu (as the digest test writes them). Each is compiled with NVRTC
for its arch, disassembled with `cuobjdump -sass` (from $CUOBJDUMP, PATH, or next to libnvrtc as
pip's nvidia-cuda-cuobjdump installs it; it needs nvdisasm on PATH or in $NVDISASM_PATH, from
nvidia-cuda-nvdisasm), and printed as `<arch> <name> <sha256 of the SASS>`.
"""
import argparse
import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nvrtc  # noqa: E402


def cuobjdump():
    explicit = os.environ.get("CUOBJDUMP") or shutil.which("cuobjdump")
    if explicit:
        return explicit
    lib = os.path.dirname(nvrtc.find_nvrtc())
    for c in glob.glob(os.path.join(lib, "..", "bin", "cuobjdump")) + glob.glob(os.path.join(lib, "..", "..", "*", "bin", "cuobjdump")):
        return c
    raise SystemExit("cuobjdump not found: pip install nvidia-cuda-cuobjdump or set CUOBJDUMP")


def one(job):
    arch, path = job
    name = os.path.basename(path)[:-3]
    cubin, log = nvrtc.compile_source(open(path).read(), name, arch)
    if cubin is None:
        return f"{arch} {name} COMPILE-FAILED"
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        r = subprocess.run([cuobjdump(), "-sass", f.name], capture_output=True, text=True)
        if r.returncode != 0 or "Function :" not in r.stdout:
            return f"{arch} {name} DISASSEMBLY-FAILED {r.stderr.strip()[:200]}"
        sass = r.stdout
    # The header names the temporary file; the code starts at the first `Function :` line.
    sass = sass[sass.find("Function :"):]
    return f"{arch} {name} {hashlib.sha256(sass.encode()).hexdigest()[:16]}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--out", required=True)
    ap.add_argument("--arch", default="sm_80,sm_90a")
    ap.add_argument("-j", type=int, default=os.cpu_count() or 1)
    a = ap.parse_args()
    jobs = [(arch, p) for arch in a.arch.split(",") for p in sorted(glob.glob(os.path.join(a.dir, arch, "*.cu")))]
    with ProcessPoolExecutor(a.j) as ex:
        lines = list(ex.map(one, jobs))
    open(a.out, "w").write("\n".join(lines) + "\n")
    failed = [l for l in lines if "FAILED" in l]
    print(f"{len(lines)} kernels, {len(failed)} failed to compile -> {a.out}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
