"""Step time of int8-a16 against int8-dynamic (and int8) in C: tools/bench_a16.c (the C lstm_step in a
plain C loop, built with the extension's flags) on the same weights stored in each dtype, under each ISA
named. Every round times each ISA and dtype in turn (interleaved); the CPU time per call (process CPU
time: a shared machine's other processes are left out) is reported as the minimum and the median over
the rounds, with the ratio int8-a16 / int8-dynamic.

With --compare DIR (another copy of src/lstm_c, e.g. a checkout of the commit before a kernel change) a
second binary is built from DIR, and the two builds run alternately, one round each in turn (the order
swapped every round), so both see the same load; each build's minimum and median are printed, and for
int8-a16 the ratio this tree / DIR.

    PYTHONPATH=. python tools/bench_a16.py [--hidden 64 256] [--input 40] [--layers 3] [--rounds 30]
                                           [--isas avx512_vnni avx2] [--compare DIR] [--json out.json]
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


def build(out_dir: str, src: str = os.path.join(ROOT, "src", "lstm_c"), name: str = "bench_a16") -> str:
    exe = os.path.join(out_dir, name)
    cmd = [os.environ.get("CC", "cc"), *bench_floor.extension_flags(), "-I", src,
           os.path.join(ROOT, "tools", "bench_a16.c"), *sorted(glob.glob(os.path.join(src, "*.c"))),
           "-lm", "-o", exe]
    subprocess.run(cmd, check=True)
    return exe


def run_rounds(exe: str, rounds: int, calls: int, isas, paths) -> dict:
    """{(isa, dtype): (min, median)} in ns per step over `rounds` rounds of one bench_a16 process."""
    done = subprocess.run([exe, str(rounds), str(calls), ",".join(isas), *paths],
                          capture_output=True, text=True, check=True)
    got = {}
    for line in done.stdout.splitlines():
        _, isa, index, lo, med = line.split()
        got[isa, DTYPES[int(index)]] = (float(lo), float(med))
    return got


def compare(exes: dict, rounds: int, calls: int, isas, paths, hidden: int, args, results: dict) -> None:
    """Builds alternately, one round each; prints each build's min / median and a16 this / other."""
    names = list(exes)
    samples = {name: {} for name in names}
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            for key, (lo, _) in run_rounds(exes[name], 1, calls, isas, paths).items():
                samples[name].setdefault(key, []).append(lo)
    for isa in isas:
        stat = {}
        for name in names:
            for d in DTYPES:
                v = sorted(samples[name][isa, d])
                stat[name, d] = (v[0], v[len(v) // 2])
        for name in names:
            lo = {d: stat[name, d][0] for d in DTYPES}
            med = {d: stat[name, d][1] for d in DTYPES}
            results[f"H{hidden} {isa} {name}"] = {"min": lo, "median": med}
            print(f"H={hidden:4d} I={args.input} L={args.layers} {isa:12s} {name:5s} min / median "
                  + "  ".join(f"{d} {lo[d] / 1000:.2f} / {med[d] / 1000:.2f} us" for d in DTYPES)
                  + f"  a16/dynamic {lo['int8-a16'] / lo['int8-dynamic']:.2f}x"
                  + f" / {med['int8-a16'] / med['int8-dynamic']:.2f}x", flush=True)
        a, b = names
        print(f"H={hidden:4d} {isa:12s} int8-a16 {a}/{b}: min {stat[a, 'int8-a16'][0] / stat[b, 'int8-a16'][0]:.2f}x"
              f"  median {stat[a, 'int8-a16'][1] / stat[b, 'int8-a16'][1]:.2f}x", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hidden", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--input", type=int, default=40)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--ms", type=float, default=10.0, help="about this many milliseconds per sample")
    ap.add_argument("--isas", nargs="+", default=["avx512_vnni", "avx2"])
    ap.add_argument("--compare", metavar="DIR", help="another src/lstm_c to build and alternate with")
    ap.add_argument("--json")
    args = ap.parse_args(argv)

    import logging

    import torch

    import lstm_embed

    logging.getLogger("lstm_embed").setLevel(logging.ERROR)
    tmp = tempfile.mkdtemp(prefix="bench_a16_")
    exe = build(tmp)
    exes = {"this": exe}
    if args.compare:
        exes["other"] = build(tmp, os.path.abspath(args.compare), "bench_a16_other")
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
        if args.compare:
            compare(exes, args.rounds, calls, args.isas, paths, hidden, args, results)
            continue
        got = run_rounds(exe, args.rounds, calls, args.isas, paths)
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
