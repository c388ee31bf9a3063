"""Throughput of batch scoring (lstm_embed.score) against the in-process ``run`` loop: a benchmark, not a test.

    python tools/bench_score.py                   # 1,000 sequences of T = 1,000, I = H = 128, fp32 and int8-dynamic
    python tools/bench_score.py --count 200       # smaller

For each dtype it measures, on the same files of one (T, I) float32 sequence each:

- in-process ``run`` loop: arrays already in memory, one ``Stream.reset`` + ``Stream.run`` per sequence;
- in-process files: ``lstm_embed.score.score_files`` called directly (read each .npy, run, write the output
  atomically; ``--fsync`` flushes each to disk first): the work of a Dask task without Dask;
- LocalCluster with 1 and 2 worker processes (1 thread each), through ``lstm_embed.score.score`` with a
  client whose cluster was started beforehand (start-up time is printed apart).

With ``--rounds R`` every measurement is repeated R times, interleaved, and the best kept. It prints two
Markdown tables: sequences per second (wall time; the Dask path's overhead per sequence against both
in-process rows; the 2-worker / 1-worker scaling), and CPU ms per sequence summed over every process
involved (the workers, and this process, which holds the LocalCluster's scheduler): on a loaded machine
wall times measure the load, CPU times much less. With the CPU model, core count, load average and the
command. Nothing here is asserted: on a shared machine the numbers move with the load, which is printed.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import platform
import resource
import shutil
import sys
import tempfile
import time

import numpy as np

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if any(f.startswith("_lstm.") and not f.endswith((".pyx", ".pxd", ".pyi", ".c"))
       for f in os.listdir(os.path.join(_ROOT, "lstm_embed"))):  # built in place; else the installed package
    sys.path.insert(0, _ROOT)

import lstm_embed  # noqa: E402
from machine_info import cpu_model  # noqa: E402
from lstm_embed.score import LOOPBACK_HTTP, score, score_files  # noqa: E402


def make_model(size: int, dtype: str, seed: int = 0) -> bytes:
    """A seeded nn.LSTM(size, size) converted to ``dtype`` (int8 modes calibrated on N(0,1) inputs)."""
    import torch

    torch.manual_seed(seed)
    lstm = torch.nn.LSTM(size, size).eval()
    calibration = np.random.default_rng(seed).standard_normal((500, size)).astype(np.float32)
    return lstm_embed.convert_torch(lstm, dtype=dtype, calibration=None if dtype == "float32" else calibration)


def write_inputs(folder: str, count: int, steps: int, size: int) -> list[str]:
    """``count`` files of one (steps, size) float32 N(0,1) sequence each."""
    rng = np.random.default_rng(1)
    paths = []
    for i in range(count):
        path = os.path.join(folder, f"seq{i:06d}.npy")
        np.save(path, rng.standard_normal((steps, size), dtype=np.float32))
        paths.append(path)
    return paths


def cpu_seconds() -> float:
    """CPU time (user + system, every thread) this process has used; run on workers by ``client.run``."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def in_process_loop(model_bytes: bytes, paths: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds for reset + run over every sequence, inputs in memory, one output buffer reused."""
    stream = lstm_embed.Model.from_bytes(model_bytes).stream()
    xs = [np.load(p) for p in paths]
    out = np.empty((xs[0].shape[0], stream.model.output_size), np.float32)
    start, cpu = time.perf_counter(), cpu_seconds()
    for x in xs:
        stream.reset()
        stream.run(x, out=out)
    return time.perf_counter() - start, cpu_seconds() - cpu


def in_process_files(model_bytes: bytes, paths: list[str], out: str, fsync: bool) -> tuple[float, float]:
    """(wall, CPU) seconds for the worker's task code (read, run, atomic write) over every file, without Dask."""
    os.makedirs(out)
    jobs = [(p, p, os.path.join(out, os.path.basename(p))) for p in paths]
    start, cpu = time.perf_counter(), cpu_seconds()
    results = score_files(model_bytes, jobs, False, "bench", fsync)
    elapsed, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    assert all(why is None for _, why in results), results
    return elapsed, cpu


def on_cluster(model_bytes: bytes, folder: str, out: str, client, fsync: bool) -> tuple[float, float]:
    """(wall, CPU) seconds for one ``score`` run through ``client`` (model scatter, tasks, results). CPU is
    that of every worker process plus this process (which holds the LocalCluster's scheduler)."""
    workers, here = client.run(cpu_seconds), cpu_seconds()
    report = score(model_bytes, [folder], out, client=client, fsync=fsync)
    after, here = client.run(cpu_seconds), cpu_seconds() - here
    assert report.ok and not report.skipped, report.failed
    return report.seconds, here + sum(after[w] - workers[w] for w in workers)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000, help="sequences, one file each (default 1000)")
    parser.add_argument("--steps", type=int, default=1000, help="T, steps per sequence (default 1000)")
    parser.add_argument("--hidden", type=int, default=128, help="H = input size (default 128)")
    parser.add_argument("--dtypes", nargs="+", default=["int8-dynamic", "float32"])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="LocalCluster sizes (default 1 2)")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds; the best of each is kept")
    parser.add_argument("--fsync", action="store_true", help="flush every output to disk before its rename")
    args = parser.parse_args(argv)

    import distributed

    load = os.getloadavg()
    root = tempfile.mkdtemp(prefix="bench_score_")
    rows, cpu_rows = [], []
    try:
        inputs = os.path.join(root, "in")
        os.makedirs(inputs)
        t0 = time.perf_counter()
        paths = write_inputs(inputs, args.count, args.steps, args.hidden)
        print(f"wrote {args.count} inputs of ({args.steps}, {args.hidden}) float32 in "
              f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
        models = {dtype: make_model(args.hidden, dtype) for dtype in args.dtypes}
        timings: dict[tuple[str, str], float] = {}
        cpus: dict[tuple[str, str], float] = {}

        def measure(dtype: str, what: str, seconds_cpu: tuple[float, float]) -> None:
            seconds, cpu = seconds_cpu
            timings[dtype, what] = min(seconds, timings.get((dtype, what), float("inf")))
            cpus[dtype, what] = min(cpu, cpus.get((dtype, what), float("inf")))
            print(f"{dtype:>12} {what:>6}: {seconds:6.2f} s, CPU {cpu:6.2f} s (load {os.getloadavg()[0]:.1f})",
                  file=sys.stderr)

        with contextlib.ExitStack() as stack:
            clients, startup = {}, {}
            for n in args.workers:
                t0 = time.perf_counter()
                cluster = stack.enter_context(distributed.LocalCluster(
                    n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None,
                    silence_logs=40, scheduler_kwargs=LOOPBACK_HTTP))
                clients[n] = stack.enter_context(distributed.Client(cluster))
                startup[n] = time.perf_counter() - t0
            for _ in range(args.rounds):  # interleaved, best of rounds: load drifts hit every row alike
                for dtype, data in models.items():
                    measure(dtype, "loop", in_process_loop(data, paths))
                    out = os.path.join(root, "out")
                    measure(dtype, "files", in_process_files(data, paths, out, args.fsync))
                    shutil.rmtree(out)
                    for n, client in clients.items():
                        measure(dtype, f"dask{n}", on_cluster(data, inputs, out, client, args.fsync))
                        shutil.rmtree(out)
        for dtype in models:
            rate = {k: args.count / v for (d, k), v in timings.items() if d == dtype}
            per = {k: v / args.count * 1e6 for (d, k), v in timings.items() if d == dtype}
            row = [dtype, f"{rate['loop']:.0f}", f"{rate['files']:.0f}"]
            row += [f"{rate[f'dask{n}']:.0f}" for n in args.workers]
            if 1 in args.workers:
                row += [f"{per['dask1'] - per['loop']:.0f} / {per['dask1'] - per['files']:.0f}"]
            if {1, 2} <= set(args.workers):
                row += [f"{rate['dask2'] / rate['dask1']:.2f}x"]
            rows.append(row)
            cpu = {k: v / args.count * 1e3 for (d, k), v in cpus.items() if d == dtype}
            names = ["loop", "files", *(f"dask{n}" for n in args.workers)]
            cpu_rows.append([dtype, *(f"{cpu[k]:.2f}" for k in names),
                             *(f"{cpu[f'dask{n}'] - cpu['files']:.2f}" for n in args.workers)])
    finally:
        shutil.rmtree(root, ignore_errors=True)

    header = ["dtype", "in-process run loop", "in-process files"]
    header += [f"LocalCluster {n} worker{'s' if n > 1 else ''}" for n in args.workers]
    if 1 in args.workers:
        header += ["Dask overhead µs/seq (vs loop / vs files)"]
    if {1, 2} <= set(args.workers):
        header += ["scaling 2 / 1 workers"]
    cpu_header = ["CPU ms per sequence", "in-process run loop", "in-process files"]
    cpu_header += [f"LocalCluster {n} worker{'s' if n > 1 else ''}" for n in args.workers]
    cpu_header += [f"Dask CPU overhead, {n} worker{'s' if n > 1 else ''} (vs files)" for n in args.workers]
    cores = os.cpu_count()
    print(f"\nSequences per second: {args.count} sequences of T = {args.steps}, I = H = {args.hidden}, one "
          f"(T, I) float32 .npy per sequence, outputs (T, H) written per sequence (temporary file + rename"
          f"{', fsync' if args.fsync else ', no fsync'}).")
    print(f"Machine: {cpu_model()}, {cores} cores; load average before the run {load[0]:.2f} / {load[1]:.2f} / "
          f"{load[2]:.2f} (1/5/15 min){' - loaded: other processes shared the cores' if load[0] > 0.5 else ''}; "
          f"lstm_embed {lstm_embed.__version__}, kernels {lstm_embed.best_isa()}, dask "
          f"{distributed.__version__}, Python {platform.python_version()}.")
    print(f"LocalCluster start-up (not in the rates): "
          + ", ".join(f"{n} worker(s) {s:.1f} s" for n, s in startup.items()) + ".")
    print(f"Command: python tools/bench_score.py {' '.join(sys.argv[1:] if argv is None else argv)}".rstrip() + "\n")
    for head, body in ((header, rows), (cpu_header, cpu_rows)):
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for row in body:
            print("| " + " | ".join(row) + " |")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
