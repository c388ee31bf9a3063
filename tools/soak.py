"""Soak test of the C core through the Python binding (a tool, not a pytest test: a full run takes minutes).

    python tools/soak.py                      # 10 million steps per dtype, as recorded in docs/fuzzing.md
    python tools/soak.py --steps 200000       # a short run
    python tools/soak.py --dtypes int8 --json soak.json

For each dtype (float32, int8, int8-dynamic) an H = 64 model (nn.LSTM(32, 64) and a Linear(64, 8) tanh
head, fixed seeds) is converted with lstm_embed.convert_torch and then:

1. Long run: two streams are fed the same chunks of random input (numpy default_rng, fixed seed) with
   Stream.run. Stream A runs uninterrupted. Stream B is snapshotted every --every steps, dropped, and a
   fresh stream restored from the snapshot continues. Every chunk's outputs of B must equal A's bit for
   bit and be finite; at the end the two snapshots must be identical and hold finite h and c.
2. Streams: --streams streams are created, stepped once and dropped; RSS (VmRSS of /proc/self/status)
   is read before and after (after a warm-up round of the same work, so allocator pools are primed).
3. Models: --models models are created from the bytes, given a stream, stepped, and dropped; RSS likewise.

Exits 1 if outputs differ, are not finite, or RSS grows by more than --rss-slack-mb in 2 or 3.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import lstm_embed  # noqa: E402

DTYPES = ("float32", "int8", "int8-dynamic")
INPUT, HIDDEN, HEAD = 32, 64, 8


def rss_kb() -> int:
    """Resident set size of this process in KiB (VmRSS)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource  # fallback: peak, not current (Linux ru_maxrss is KiB)

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def make_model_bytes(dtype: str) -> bytes:
    import torch
    import torch.nn as nn

    torch.manual_seed(64)
    lstm = nn.LSTM(INPUT, HIDDEN, batch_first=True).eval()
    head = nn.Linear(HIDDEN, HEAD).eval()
    return lstm_embed.convert_torch(lstm, head=head, head_activation="tanh", dtype=dtype)


def long_run(model, steps: int, chunk: int, every: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    a = model.stream()
    b = model.stream()
    done = restores = 0
    max_abs_out = 0.0
    t0 = time.perf_counter()
    while done < steps:
        n = min(chunk, steps - done, every - done % every)
        xs = rng.standard_normal((n, model.input_size), dtype=np.float32)
        xs *= 2.0
        ya = a.run(xs)
        yb = b.run(xs)
        if not np.isfinite(ya).all():
            raise SystemExit(f"non-finite output at steps {done}..{done + n}")
        if ya.tobytes() != yb.tobytes():
            bad = int(np.argmax((ya != yb).any(axis=1)))
            raise SystemExit(f"interrupted stream differs from the uninterrupted one at step {done + bad}")
        max_abs_out = max(max_abs_out, float(np.abs(ya).max()))
        done += n
        if done % every == 0 and done < steps:
            blob = b.snapshot()
            del b
            b = model.stream()
            b.restore(blob)
            restores += 1
    seconds = time.perf_counter() - t0
    sa, sb = a.snapshot(), b.snapshot()
    if sa != sb:
        raise SystemExit("final snapshots differ")
    floats = np.frombuffer(sa[24:-4], dtype="<f4")
    if not np.isfinite(floats).all():
        raise SystemExit("final state holds NaN or Inf")
    hdim = model.hidden_size
    c = floats[hdim:]  # one layer: h [H] then c [H]
    return {"steps": done, "restores": restores, "seconds": round(seconds, 1),
            "ns_per_step_per_stream": round(seconds / done / 2 * 1e9, 1),
            "max_abs_output": max_abs_out, "final_max_abs_c": float(np.abs(c).max()),
            "bit_identical": True, "finite": True}


def churn_streams(model, count: int) -> tuple[int, int]:
    x = np.ones(model.input_size, np.float32)

    def work(n):
        for _ in range(n):
            s = model.stream()
            s.step(x)
            del s

    work(min(count, 10000))  # warm-up
    gc.collect()
    before = rss_kb()
    work(count)
    gc.collect()
    return before, rss_kb()


def churn_models(data: bytes, count: int) -> tuple[int, int]:
    x = np.ones(INPUT, np.float32)

    def work(n):
        for _ in range(n):
            m = lstm_embed.Model.from_bytes(data)
            s = m.stream()
            s.step(x)
            s.snapshot()
            del s, m

    work(min(count, 100))
    gc.collect()
    before = rss_kb()
    work(count)
    gc.collect()
    return before, rss_kb()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=10_000_000, help="steps per dtype (default 10,000,000)")
    ap.add_argument("--every", type=int, default=100_000, help="snapshot/restore interval in steps")
    ap.add_argument("--chunk", type=int, default=10_000, help="steps per Stream.run call")
    ap.add_argument("--streams", type=int, default=100_000, help="streams created and dropped per dtype")
    ap.add_argument("--models", type=int, default=1_000, help="models created and dropped per dtype")
    ap.add_argument("--dtypes", nargs="+", default=list(DTYPES), choices=DTYPES)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--rss-slack-mb", type=float, default=4.0, help="allowed RSS growth in the churn phases")
    ap.add_argument("--json", type=Path, help="also write the figures there")
    args = ap.parse_args(argv)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

    models = {dtype: make_model_bytes(dtype) for dtype in args.dtypes}  # torch is loaded before RSS counts
    gc.collect()
    results = {"rss_kb_start": rss_kb(), "dtypes": {}}
    failed = False
    for dtype in args.dtypes:
        data = models[dtype]
        model = lstm_embed.Model.from_bytes(data)
        r = {"isa": model.isa, "model_bytes": len(data)}
        r["long_run"] = long_run(model, args.steps, args.chunk, args.every, args.seed)
        s0, s1 = churn_streams(model, args.streams)
        m0, m1 = churn_models(data, args.models)
        r["streams"] = {"count": args.streams, "rss_kb_before": s0, "rss_kb_after": s1, "growth_kb": s1 - s0}
        r["models"] = {"count": args.models, "rss_kb_before": m0, "rss_kb_after": m1, "growth_kb": m1 - m0}
        for part in ("streams", "models"):
            if r[part]["growth_kb"] > args.rss_slack_mb * 1024:
                failed = True
                r[part]["FAILED"] = f"RSS grew by more than {args.rss_slack_mb} MB"
        lr = r["long_run"]
        print(f"{dtype:13s} {lr['steps']:>10,d} steps x2 streams in {lr['seconds']:6.1f} s "
              f"({lr['ns_per_step_per_stream']} ns/step), {lr['restores']} restores, bit-identical, finite "
              f"(max |y| {lr['max_abs_output']:.3f}, final max |c| {lr['final_max_abs_c']:.2f}); "
              f"RSS {args.streams:,d} streams {s0}->{s1} KiB, {args.models:,d} models {m0}->{m1} KiB",
              flush=True)
        results["dtypes"][dtype] = r
    results["rss_kb_end"] = rss_kb()
    print(f"RSS start {results['rss_kb_start']} KiB, end {results['rss_kb_end']} KiB")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    if failed:
        print("FAILED: RSS grew", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
