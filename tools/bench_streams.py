#!/usr/bin/env python3
"""Many streams on one model (issue 12): step_many against N single steps, per ISA and dtype, and
step_many spread over threads. Single process; run it on a quiet machine.

    PYTHONPATH=. python tools/bench_streams.py [--quick]

Table 1: N = 64 streams at H = 64 (input 64): µs per timestep for all N streams, as N ``Stream.step`` calls
and as one ``Model.step_many``; the ratio (issue 12 goal: >= 5x), and each dtype's step_many against fp32's
on the same ISA (goal: int8 modes faster). Table 2: N = 256 and 512 streams at H = 256: step_many with
threads=1 and threads=2 (goal: >= 1.7x on 2 cores). Every stream is compact (``stream(compact=True)``).
Medians of interleaved samples.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

import lstm_embed
from machine_info import cpu_model  # noqa: E402

DTYPES = ("float32", "int8", "int8-dynamic")


def median_us(fn, repeat: int, inner: int) -> float:
    fn()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - t0) / inner * 1e6)
    return statistics.median(samples)


def model_bytes(hidden: int, dtype: str, calibration: np.ndarray) -> bytes:
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(64, hidden)
    cal = calibration if dtype != "float32" else None
    return lstm_embed.convert_torch(lstm, dtype=dtype, calibration=cal)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    args = parser.parse_args()
    repeat = 5 if args.quick else 15
    rng = np.random.default_rng(0)
    cal = rng.standard_normal((2, 50, 64)).astype(np.float32)
    isas = [i for i in lstm_embed.supported_isas() if i not in ("reference", "blas")]
    print(f"machine: {cpu_model()}, {os.cpu_count()} CPUs; ISAs timed: {', '.join(isas)}; "
          f"lstm_embed {lstm_embed.__version__}\n")

    print("### N = 64 streams, H = 64: µs per timestep of all 64\n")
    print("| ISA | dtype | 64 x step | step_many | ratio | step_many vs fp32's |")
    print("|---|---|---|---|---|---|")
    xs = rng.standard_normal((64, 64)).astype(np.float32)
    for isa in isas:
        fp32_many = None
        for dtype in DTYPES:
            model = lstm_embed.Model.from_bytes(model_bytes(64, dtype, cal), isa=isa)
            streams = [model.stream(compact=True) for _ in range(64)]
            singles = [model.stream() for _ in range(64)]
            out = np.empty(model.output_size, np.float32)

            def one_by_one():
                for s, x in zip(singles, xs):
                    s.step(x, out=out)

            many_out = np.empty((64, model.output_size), np.float32)
            single = median_us(one_by_one, repeat, 20)
            many = median_us(lambda: model.step_many(streams, xs, out=many_out), repeat, 50)
            fp32_many = many if dtype == "float32" else fp32_many
            print(f"| {isa} | {dtype} | {single:.1f} | {many:.1f} | {single / many:.2f}x | "
                  f"{fp32_many / many:.2f}x |")

    print("\n### step_many at H = 256 over threads: ms per timestep\n")
    print("| ISA | dtype | N | threads=1 | threads=2 | speed-up |")
    print("|---|---|---|---|---|---|")
    for isa in isas:
        for dtype in ("float32", "int8-dynamic"):
            model = lstm_embed.Model.from_bytes(model_bytes(256, dtype, cal), isa=isa)
            for n in (256, 512):
                streams = [model.stream(compact=True) for _ in range(n)]
                xn = rng.standard_normal((n, 64)).astype(np.float32)
                one = median_us(lambda: model.step_many(streams, xn), repeat, 3) / 1e3
                two = median_us(lambda: model.step_many(streams, xn, threads=2), repeat, 3) / 1e3
                print(f"| {isa} | {dtype} | {n} | {one:.2f} | {two:.2f} | {one / two:.2f}x |")


if __name__ == "__main__":
    main()
