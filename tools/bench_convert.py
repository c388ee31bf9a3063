"""Time the PyTorch -> model-file converter (issue 13: quantise once, then calibrate, then write).

    PYTHONPATH=. python tools/bench_convert.py                 # this tree
    PYTHONPATH=. python tools/bench_convert.py --base d7072e5  # this tree and the converter at a commit

Cases, on nn.LSTM(256, 512, num_layers=2) (torch seed 0) and 4 x 100 calibration steps (numpy seed 0):
``int8-dynamic + calibration`` (no tolerance), ``int8-dynamic + calibration + tolerance 1e-2`` and
``int8`` alone. With ``--base`` the Python files of lstm_embed/ at that commit run in a temporary copy
of the package (this tree's compiled extensions), alternating with this tree, best of ``--repeat`` each;
the SHA-256 of every file written is printed so the two versions can be checked byte for byte. The base
must write format version 2: the compiled reader refuses older files (016d305, where issue 13 was filed,
cannot run). Results and history: docs/benchmarks.md, "Conversion speed".
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = {
    "int8-dynamic+calibration": dict(dtype="int8-dynamic", calibration=True),
    "int8-dynamic+calibration+tol1e-2": dict(dtype="int8-dynamic", calibration=True, tolerance=1e-2),
    "int8": dict(dtype="int8"),
}


def _child() -> None:
    """One timing of every case with the lstm_embed found on sys.path; JSON on stdout."""
    import numpy as np
    import torch

    from lstm_embed.convert import convert_torch

    torch.manual_seed(0)
    lstm = torch.nn.LSTM(256, 512, num_layers=2)
    calib = np.random.default_rng(0).normal(size=(4, 100, 256)).astype(np.float32)
    out = {}
    for name, case in CASES.items():
        kwargs = dict(case)
        if kwargs.pop("calibration", False):
            kwargs["calibration"] = calib
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start, cpu = time.perf_counter(), time.process_time()
            data = convert_torch(lstm, **kwargs)
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        out[name] = {"seconds": seconds, "cpu": cpu, "sha256": hashlib.sha256(data).hexdigest()}
    print(json.dumps(out))


def _run(pythonpath: str) -> dict:
    env = dict(os.environ, PYTHONPATH=pythonpath)
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child"], env=env, cwd=pythonpath,
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _old_tree(base: str, tmp: str) -> str:
    """A copy of lstm_embed/ (compiled extension included) with its Python files taken from ``base``."""
    shutil.copytree(os.path.join(ROOT, "lstm_embed"), os.path.join(tmp, "lstm_embed"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    names = subprocess.run(["git", "ls-tree", "--name-only", base, "lstm_embed/"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split()
    for name in names:
        if name.endswith(".py"):
            text = subprocess.run(["git", "show", f"{base}:{name}"], cwd=ROOT, check=True,
                                  capture_output=True).stdout
            with open(os.path.join(tmp, name), "wb") as f:
                f.write(text)
    return tmp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", help="also time the converter's Python files at this git commit")
    parser.add_argument("--repeat", type=int, default=3, help="timings per version (best is kept)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return _child()
    print(f"load average at the start: {os.getloadavg()[0]:.2f} (1 min)")
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"this tree": ROOT}
        if args.base:
            trees = {f"base {args.base}": _old_tree(args.base, tmp), **trees}
        results = {name: [] for name in trees}
        for _ in range(args.repeat):  # alternate the versions so machine load hits both alike
            for name, path in trees.items():
                results[name].append(_run(path))
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} cpus; "
          "best wall time of the runs (CPU seconds of all threads in brackets)")
    best = {name: {case: min(r[case]["seconds"] for r in runs) for case in CASES} for name, runs in results.items()}
    cpu = {name: {case: min(r[case]["cpu"] for r in runs) for case in CASES} for name, runs in results.items()}
    for case in CASES:
        cells = "  ".join(f"{name}: {best[name][case]:6.2f} s ({cpu[name][case]:5.2f})" for name in trees)
        shas = {runs[0][case]["sha256"] for runs in results.values()}
        ident = "" if len(trees) == 1 else ("  bytes identical" if len(shas) == 1 else "  BYTES DIFFER")
        ratio = f"  x{best[list(trees)[0]][case] / best['this tree'][case]:.1f}" if len(trees) > 1 else ""
        print(f"{case:<34} {cells}{ratio}{ident}  sha256 {sorted(shas)[0][:16]}")
    if len(trees) > 1 and any(len({runs[0][c]["sha256"] for runs in results.values()}) > 1 for c in CASES):
        sys.exit(1)


if __name__ == "__main__":
    main()
