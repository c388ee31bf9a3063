"""Step time of int8-a16 against int8-dynamic (and int8) in C: tools/bench_a16.c (the C lstm_step in a
plain C loop, built with the extension's flags) on the same weights stored in each dtype, under each ISA
named. Every round times each ISA and dtype in turn (interleaved); the CPU time per call (process CPU
time: a shared machine's other processes are left out) is reported as the minimum and the median over
the rounds, with the ratio int8-a16 / int8-dynamic.

    PYTHONPATH=. python tools/bench_a16.py [--hidden 64 256] [--input 40] [--layers 3] [--rounds 30]
                                           [--isas avx512_vnni avx2] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import glob
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_floor  # noqa: E402  (the extension's compile flags)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DTYPES = ("int8-dynamic", "int8-a16", "int8")


def build(out_dir: str) -> str:
    exe = os.path.join(out_dir, "bench_a16")
    cmd = [os.environ.get("CC", "cc"), *bench_floor.extension_flags(), "-I", os.path.join(ROOT, "src", "lstm_c"),
           os.path.join(ROOT, "tools", "bench_a16.c"), *sorted(glob.glob(os.path.join(ROOT, "src", "lstm_c", "*.c"))),
           "-lm", "-o", exe]
    subprocess.run(cmd, check=True)
    return exe


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hidden", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--input", type=int, default=40)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--ms", type=float, default=10.0, help="about this many milliseconds per sample")
    ap.add_argument("--isas", nargs="+", default=["avx512_vnni", "avx2"])
    ap.add_argument("--json")
    args = ap.parse_args(argv)

    import logging

    import torch

    import lstm_embed

    logging.getLogger("lstm_embed").setLevel(logging.ERROR)
    tmp = tempfile.mkdtemp(prefix="bench_a16_")
    exe = build(tmp)
    results = {}
    for hidden in args.hidden:
        torch.manual_seed(hidden)
        lstm = torch.nn.LSTM(args.input, hidden, args.layers)
        paths = []
        for dtype in DTYPES:
            paths.append(os.path.join(tmp, f"h{hidden}_{dtype}.lstm"))
            with open(paths[-1], "wb") as f:
                f.write(lstm_embed.convert_torch(lstm, dtype=dtype))
        calls = max(1, int(args.ms * 1e3 / (hidden * hidden / 64)))  # about args.ms per sample
        done = subprocess.run([exe, str(args.rounds), str(calls), ",".join(args.isas), *paths],
                              capture_output=True, text=True, check=True)
        got = {}
        for line in done.stdout.splitlines():
            _, isa, index, lo, med = line.split()
            got[isa, DTYPES[int(index)]] = (float(lo), float(med))
        for isa in args.isas:
            for k, stat in enumerate(("min", "median")):
                v = {d: got[isa, d][k] for d in DTYPES}
                results[f"H{hidden} {isa} {stat}"] = v
                print(f"H={hidden:4d} I={args.input} L={args.layers} {isa:12s} {stat:6s} "
                      + "  ".join(f"{d} {v[d] / 1000:8.2f} us" for d in DTYPES)
                      + f"  a16/dynamic {v['int8-a16'] / v['int8-dynamic']:.2f}x"
                      + f"  int8/dynamic {v['int8'] / v['int8-dynamic']:.2f}x", flush=True)
    with open("/proc/loadavg") as f:
        print("load average:", f.read().split()[:3])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
