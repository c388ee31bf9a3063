"""Step time of int8-a16 against int8-dynamic (and int8) in C: tools/bench_floor.c (the C lstm_step in a
plain C loop, built like the extension) on the same weights stored in each dtype, under each ISA named.
The dtypes are timed interleaved, round after round, and the median of all samples is reported, with the
ratio int8-a16 / int8-dynamic per ISA and size.

    PYTHONPATH=. python tools/bench_a16.py [--hidden 64 256] [--input 40] [--layers 3] [--rounds 5]
                                           [--isas avx512_vnni avx2] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_floor  # noqa: E402

DTYPES = ("int8-dynamic", "int8-a16", "int8")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hidden", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--input", type=int, default=40)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--samples", type=int, default=5)
    ap.add_argument("--ms", type=float, default=40.0, help="milliseconds per sample")
    ap.add_argument("--isas", nargs="+", default=["avx512_vnni", "avx2"])
    ap.add_argument("--json")
    args = ap.parse_args(argv)

    import logging

    import torch

    import lstm_embed

    logging.getLogger("lstm_embed").setLevel(logging.ERROR)
    tmp = tempfile.mkdtemp(prefix="bench_a16_")
    exe = bench_floor.build(tmp)
    results = {}
    for hidden in args.hidden:
        torch.manual_seed(hidden)
        lstm = torch.nn.LSTM(args.input, hidden, args.layers)
        paths = {}
        for dtype in DTYPES:
            paths[dtype] = os.path.join(tmp, f"h{hidden}_{dtype}.lstm")
            with open(paths[dtype], "wb") as f:
                f.write(lstm_embed.convert_torch(lstm, dtype=dtype))
        samples = {(d, i): [] for d in DTYPES for i in args.isas}
        for _ in range(args.rounds):
            for dtype in DTYPES:
                got = bench_floor.run(exe, paths[dtype], args.ms, args.samples, args.isas)
                for isa in args.isas:
                    samples[dtype, isa] += got["step_ns"][isa]
        for isa in args.isas:
            med = {d: statistics.median(samples[d, isa]) for d in DTYPES}
            results[f"H{hidden} {isa}"] = med
            print(f"H={hidden:4d} I={args.input} L={args.layers} {isa:12s} "
                  + "  ".join(f"{d} {med[d] / 1000:8.2f} us" for d in DTYPES)
                  + f"  a16/dynamic {med['int8-a16'] / med['int8-dynamic']:.2f}x"
                  + f"  int8/dynamic {med['int8'] / med['int8-dynamic']:.2f}x", flush=True)
    with open("/proc/loadavg") as f:
        print("load average:", f.read().split()[:3])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
