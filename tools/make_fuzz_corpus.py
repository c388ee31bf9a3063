"""Write the seed corpus of the libFuzzer harnesses (tools/fuzz/) from small PyTorch modules.

    python tools/make_fuzz_corpus.py            # (re)writes tools/fuzz/corpus/{model,snapshot}/seed-*
                                                # and tools/fuzz/snapshot_model.lstm

Every model file is made by ``lstm_embed.convert_torch`` from a torch module with fixed seeds, so the
corpus is reproducible: fp32, int8 and int8-dynamic; 1, 2 and 3 layers; int8-a16 and int16x8 (integer-only,
each head activation); proj_size; nn.LSTMCell; a dense
head with each activation; bidirectional; and one model with a different dtype per layer (through
``spec_to_bytes``'s per-layer modes, which ``convert_torch`` picks by calibration). Hidden sizes are 4 to
32 so the whole corpus stays well under 2 MB.

Snapshot seeds are ``Stream.snapshot()`` blobs of the fixed model the snapshot harness embeds
(tools/fuzz/snapshot_model.lstm) after 0, 1, 7 and 100 steps of random, large and constant input, plus
snapshots of other models (the WRONG_MODEL path). Only files named seed-* are rewritten; inputs the fuzzer
found and that were merged in (tools/fuzz/merge.sh) keep their hash names.
Run from the repository root after ``python setup.py build_ext --inplace``.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

import lstm_embed  # noqa: E402

FUZZ = ROOT / "tools" / "fuzz"
ACTIVATIONS = (None, "sigmoid", "tanh", "relu", "softmax")
DTYPES = ("float32", "int8", "int8-dynamic")
SHORT = {"float32": "f32", "int8": "i8", "int8-dynamic": "i8d"}


def _lstm(seed: int, **kw) -> nn.LSTM:
    torch.manual_seed(seed)
    return nn.LSTM(batch_first=True, **kw).eval()


def _head(seed: int, n_in: int, n_out: int) -> nn.Linear:
    torch.manual_seed(seed + 1000)
    return nn.Linear(n_in, n_out).eval()


def model_specs():
    """(name, bytes) of every seed model."""
    out = []
    seed = 0
    for dtype in DTYPES:
        d = SHORT[dtype]
        # plain stacks of 1, 2, 3 layers
        for layers, (i, h) in zip((1, 2, 3), ((3, 8), (5, 16), (4, 6))):
            seed += 1
            out.append((f"{d}-l{layers}-i{i}-h{h}", lstm_embed.convert_torch(
                _lstm(seed, input_size=i, hidden_size=h, num_layers=layers), dtype=dtype)))
        # LSTMP
        seed += 1
        out.append((f"{d}-proj-l2-h12-p5", lstm_embed.convert_torch(
            _lstm(seed, input_size=7, hidden_size=12, num_layers=2, proj_size=5), dtype=dtype)))
        # nn.LSTMCell, with a head
        seed += 1
        torch.manual_seed(seed)
        cell = nn.LSTMCell(6, 10).eval()
        out.append((f"{d}-cell-h10", lstm_embed.convert_torch(cell, dtype=dtype)))
        out.append((f"{d}-cell-h10-head2-sigmoid", lstm_embed.convert_torch(
            cell, head=_head(seed, 10, 2), head_activation="sigmoid", dtype=dtype)))
        # bidirectional (run only), with and without a head and projection
        seed += 1
        bi = _lstm(seed, input_size=4, hidden_size=8, num_layers=2, bidirectional=True)
        out.append((f"{d}-bi-l2-h8", lstm_embed.convert_torch(bi, dtype=dtype)))
        seed += 1
        bip = _lstm(seed, input_size=3, hidden_size=9, num_layers=1, bidirectional=True, proj_size=4)
        out.append((f"{d}-bi-proj-h9-p4-head3-tanh", lstm_embed.convert_torch(
            bip, head=_head(seed, 8, 3), head_activation="tanh", dtype=dtype)))
        # heads with each activation
        for act in ACTIVATIONS:
            seed += 1
            m = _lstm(seed, input_size=5, hidden_size=32 if act == "softmax" else 4, num_layers=1)
            hin = m.hidden_size
            out.append((f"{d}-head4-{act or 'none'}", lstm_embed.convert_torch(
                m, head=_head(seed, hin, 4), head_activation=act, dtype=dtype)))
        # tiny edge shapes: input 1, hidden 1, head 1
        seed += 1
        out.append((f"{d}-i1-h1-head1", lstm_embed.convert_torch(
            _lstm(seed, input_size=1, hidden_size=1), head=_head(seed, 1, 1), dtype=dtype)))
        # bias=False
        seed += 1
        out.append((f"{d}-nobias-h5", lstm_embed.convert_torch(
            _lstm(seed, input_size=2, hidden_size=5, bias=False), dtype=dtype)))
    # one layer of each dtype in one model (what calibration with a tolerance can produce)
    from lstm_embed.convert import spec_from_state_dict
    from lstm_embed.format import write_model

    seed += 1
    m = _lstm(seed, input_size=6, hidden_size=8, num_layers=3)
    spec = spec_from_state_dict(m.state_dict(), None, "none")
    spec = dataclasses.replace(spec, layer_dtypes=["float32", "int8", "int8-dynamic"])
    out.append(("mixed-f32-i8-i8d-l3-h8", write_model(spec)))
    seed += 1
    m = _lstm(seed, input_size=3, hidden_size=8, num_layers=2, proj_size=3)
    spec = spec_from_state_dict(m.state_dict(), _head(seed, 3, 2).state_dict(), "softmax")
    spec = dataclasses.replace(spec, layer_dtypes=["int8-dynamic", "float32"])
    out.append(("mixed-i8d-f32-proj-head2-softmax", write_model(spec)))
    # int8-a16 (int16 activations) and int16x8 (integer-only: QPARAMS, HEAD_QPARAMS, IO_SCALES), appended
    # so the seeds above keep their bytes
    seed += 1
    out.append(("i8a16-l2-i5-h16-head3-tanh", lstm_embed.convert_torch(
        _lstm(seed, input_size=5, hidden_size=16, num_layers=2), head=_head(seed, 16, 3),
        head_activation="tanh", dtype="int8-a16")))
    rng = np.random.default_rng(99)
    for act in ACTIVATIONS:
        seed += 1
        m = _lstm(seed, input_size=6, hidden_size=12, num_layers=2)
        calib = (rng.standard_normal((2, 30, 6)) * 2.0).astype(np.float32)
        out.append((f"i16x8-l2-h12-head4-{act or 'none'}", lstm_embed.convert_torch(
            m, head=_head(seed, 12, 4), head_activation=act, dtype="int16x8", calibration=calib)))
    seed += 1
    out.append(("i16x8-l1-h8-nohead", lstm_embed.convert_torch(
        _lstm(seed, input_size=3, hidden_size=8), dtype="int16x8",
        calibration=rng.standard_normal((1, 20, 3)).astype(np.float32))))
    seed += 1
    out.append(("i16x8-i1-h1-head1", lstm_embed.convert_torch(
        _lstm(seed, input_size=1, hidden_size=1), head=_head(seed, 1, 1), dtype="int16x8",
        calibration=rng.standard_normal((1, 20, 1)).astype(np.float32))))
    return out


def snapshot_model() -> bytes:
    """The fixed model of the snapshot harness: 2 layers, projection, int8-dynamic then fp32, a head."""
    from lstm_embed.convert import spec_from_state_dict
    from lstm_embed.format import write_model

    m = _lstm(4242, input_size=5, hidden_size=12, num_layers=2, proj_size=6)
    spec = spec_from_state_dict(m.state_dict(), _head(4242, 6, 3).state_dict(), "tanh")
    return write_model(dataclasses.replace(spec, layer_dtypes=["int8-dynamic", "float32"]))


def snapshot_seeds(model_bytes: bytes, others):
    model = lstm_embed.Model.from_bytes(model_bytes)
    rng = np.random.default_rng(7)
    seeds = []
    for steps, scale in ((0, 1.0), (1, 1.0), (7, 3.0), (100, 1.0), (20, 1e6), (20, 1e18)):
        s = model.stream()
        if steps:
            s.run((rng.standard_normal((steps, model.input_size)) * scale).astype(np.float32))
        seeds.append((f"own-{steps}steps-x{scale:g}", s.snapshot()))
    s = model.stream()
    s.run(np.ones((50, model.input_size), np.float32))
    seeds.append(("own-50steps-ones", s.snapshot()))
    for name, data in others:  # other models' snapshots: WRONG_MODEL, other lengths
        m = lstm_embed.Model.from_bytes(data)
        s = m.stream()
        if m.num_directions == 1:
            s.run(rng.standard_normal((3, m.input_size)).astype(np.float32))
        seeds.append((f"other-{name}", s.snapshot()))
    return seeds


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=FUZZ, help="tools/fuzz (corpus/ and snapshot_model.lstm go there)")
    args = ap.parse_args(argv)
    mdir, sdir = args.out / "corpus" / "model", args.out / "corpus" / "snapshot"
    for d in (mdir, sdir):
        d.mkdir(parents=True, exist_ok=True)
        for old in d.glob("seed-*"):
            old.unlink()
    models = model_specs()
    total = 0
    for name, data in models:
        lstm_embed.Model.from_bytes(data)  # every seed must open
        (mdir / f"seed-{name}.lstm").write_bytes(data)
        total += len(data)
    snap_model = snapshot_model()
    (args.out / "snapshot_model.lstm").write_bytes(snap_model)
    (mdir / "seed-snapshot-model.lstm").write_bytes(snap_model)
    others = [(n, d) for n, d in models if n in ("f32-l1-i3-h8", "i8d-proj-l2-h12-p5", "f32-bi-l2-h8")]
    snaps = snapshot_seeds(snap_model, others)
    for name, blob in snaps:
        (sdir / f"seed-{name}.snap").write_bytes(blob)
        total += len(blob)
    print(f"{len(models) + 1} model seeds, {len(snaps)} snapshot seeds, {total + len(snap_model)} bytes "
          f"in {os.path.relpath(args.out / 'corpus')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
