"""Build and run tools/bench_floor.c: the C step alone in a C loop (under each ISA), next to a plain
CBLAS sgemv, and the machine's single-thread read bandwidth over buffers of a given size.

The program is compiled with ``cc`` from the same sources, macros and optimisation flags as the
extension (``src/lstm_c/*.c``, ``-DLSTM_USE_CBLAS -DBLAS_SYMBOL_PREFIX=scipy_``, the
``extra_compile_args`` of setup.py) against the OpenBLAS of the scipy-openblas32 wheel, so it times the
same C code our Python binding calls.
"""
from __future__ import annotations

import ast
import glob
import os
import shutil
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = os.path.join(ROOT, "tools", "bench_floor.c")
DEFAULT_FLAGS = ["-O3"]


def extension_flags() -> list[str]:
    """The ``extra_compile_args`` literal of setup.py's Extension (so the floor is built like it)."""
    try:
        with open(os.path.join(ROOT, "setup.py")) as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError):
        return DEFAULT_FLAGS
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "extra_compile_args":
            try:
                return [str(flag) for flag in ast.literal_eval(node.value)]
            except ValueError:
                break
    return DEFAULT_FLAGS


def build(out_dir: str) -> str:
    """Compile the floor program into ``out_dir``; returns its path. Raises RuntimeError with the
    compiler's message when ``cc`` is missing or the build fails."""
    import scipy_openblas32

    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        raise RuntimeError(f"no C compiler ({cc}) on PATH")
    exe = os.path.join(out_dir, "bench_floor")
    lib_dir = scipy_openblas32.get_lib_dir()
    cmd = [cc, *extension_flags(), "-DLSTM_USE_CBLAS", "-DBLAS_SYMBOL_PREFIX=scipy_",
           "-I", os.path.join(ROOT, "src", "lstm_c"), "-I", scipy_openblas32.get_include_dir(),
           SOURCE, *sorted(glob.glob(os.path.join(ROOT, "src", "lstm_c", "*.c"))),
           "-L", lib_dir, "-l" + scipy_openblas32.get_library(), f"-Wl,-rpath,{lib_dir}", "-lm", "-o", exe]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        tail = " ".join(done.stderr.strip().splitlines()[-3:])
        raise RuntimeError(f"building bench_floor failed: {tail}")
    return exe


def _run(args: list) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        why = done.stderr.strip() or (f"killed by signal {-done.returncode}" if done.returncode < 0
                                      else f"exit status {done.returncode}")
        raise RuntimeError(f"bench_floor failed: {why}")
    return done.stdout


def run(exe: str, model_path: str, ms_per_sample: float, samples: int, isas=()) -> dict:
    """Time one model file with the floor program, its step under each ISA of ``isas`` (none: the one
    the C library picks): {"step_ns": {isa: [...]}, "sgemv_ns": [...] (absent without row-major fp32
    weights), "weight_bytes": int, "blas_core": str}, nanoseconds per call of every sample."""
    stdout = _run([exe, model_path, str(ms_per_sample), str(samples), *isas])
    out: dict = {"step_ns": {}}
    for line in stdout.splitlines():
        key, _, value = line.partition(" ")
        if key == "step_ns":
            isa, _, values = value.partition(" ")
            out["step_ns"][isa] = [float(v) for v in values.split()]
        elif key.endswith("_ns"):
            out[key] = [float(v) for v in value.split()]
        elif key == "weight_bytes":
            out[key] = int(value)
        else:
            out[key] = value
    if not out["step_ns"] or "weight_bytes" not in out:
        raise RuntimeError(f"bench_floor printed no step_ns: {stdout!r}")
    return out


def read(exe: str, nbytes: int, ms_per_sample: float, samples: int) -> dict:
    """Single-thread read bandwidth over one buffer of ``nbytes``: {load bits: [ns per pass over the
    buffer, one per sample]} for each load width this CPU has (512, 256, 128 on x86; 64 elsewhere)."""
    stdout = _run([exe, "--read", str(int(nbytes)), str(ms_per_sample), str(samples)])
    out = {}
    for line in stdout.splitlines():
        key, _, value = line.partition(" ")
        if key == "read_ns":
            bits, _, values = value.partition(" ")
            out[int(bits)] = [float(v) for v in values.split()]
    if not out:
        raise RuntimeError(f"bench_floor --read printed nothing: {stdout!r}")
    return out
