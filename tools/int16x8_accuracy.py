"""Accuracy of the integer-only int16x8 dtype (docs/int16x8.md) beside int8, int8-a16 and int8-dynamic, on
the two real models of tools/a16_accuracy.py and on the digits model of the tests:

- Resemblyzer's speaker encoder (3 x LSTM(40, 256) + Linear(256, 256) + ReLU) on the mel energies of
  a16_accuracy's synthetic speech: embedding cosine against float32 PyTorch, min / mean over the same
  utterances as a16_accuracy (same seed). int16x8 is calibrated on a separate held-out set from the same
  generator (``--calib-utterances`` utterances, seed + 1000).
- Silero VAD's LSTMCell(128, 128) (its front end and decoder as in a16_accuracy): decision flips at 0.5
  and 0.35 over the same stream as a16_accuracy; int16x8 calibrated on the encoder features of a separate
  stream from the same generator (``--calib-vad-seconds`` seconds, seed + 1001).
- The digits reader of tests/test_trained.py (LSTM(8, 32) + Linear(32, 10) + softmax, trained in seconds
  by tests/_digits.py with the same seeds): held-out accuracy; int16x8 calibrated on the training images.

    PYTHONPATH=. python tools/int16x8_accuracy.py [--utterances 24] [--vad-seconds 120] [--isa auto]
        [--engine library|reference]

``--engine reference`` steps the int16x8 models with the NumPy reference of the tests
(tests/reference_int.py) instead of the C library (the same bits; for checking the specification alone).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [_HERE, os.path.join(os.path.dirname(_HERE), "tests")]

import a16_accuracy as a16  # noqa: E402  (the audio generator, mel front end and model loading)

# Each int8 dtype twice: converted without calibration data (weights rounded to nearest) and with the
# calibration set ("/cal": weights rounded by GPTQ against it, lstm_embed/gptq.py). int16x8 always has it.
DTYPES = ("float32", "int8", "int8-a16", "int8-dynamic", "int8/cal", "int8-a16/cal", "int8-dynamic/cal", "int16x8")


def _runner(data: bytes, args):
    """A function (T, I) float32 -> (T, O) float32 from a fresh state, by the library or the reference."""
    if args.engine == "reference" and data[72] == 4:
        from reference_int import IntModel

        model = IntModel(data)
        return lambda xs: model.stream().run(xs)
    import lstm_embed

    model = lstm_embed.Model.from_bytes(data, isa=args.isa)
    return lambda xs: model.stream().run(xs)


def _convert(module, label: str, calibration, **kw) -> bytes:
    """The model file of one DTYPES entry: "dtype" or "dtype/cal" (converted with ``calibration``)."""
    import lstm_embed

    dtype = label.split("/")[0]
    calibrated = label.endswith("/cal") or dtype == "int16x8"
    return lstm_embed.convert_torch(module, dtype=dtype, calibration=calibration if calibrated else None, **kw)


def _utterances(rng, n: int) -> list[np.ndarray]:
    """a16_accuracy's utterances: alternately lower and higher voices, 160 mel frames each."""
    mels = []
    for u in range(n):
        low = u % 2 == 0
        wav = a16.normalize_dbfs(a16.voiced_audio(rng, 1.62, (85.0, 180.0) if low else (160.0, 300.0)))
        mels.append(a16.mel_energies(wav)[:160])
    return mels


def resemblyzer(args) -> dict:
    import torch

    sd = torch.load(args.resemblyzer_pt, map_location="cpu", weights_only=False)["model_state"]
    lstm = torch.nn.LSTM(40, 256, 3)
    lstm.load_state_dict({k[5:]: v for k, v in sd.items() if k.startswith("lstm.")})
    linear = torch.nn.Linear(256, 256)
    linear.load_state_dict({"weight": sd["linear.weight"], "bias": sd["linear.bias"]})
    mels = _utterances(np.random.default_rng(args.seed), args.utterances)
    calibration = np.stack(_utterances(np.random.default_rng(args.seed + 1000), args.calib_utterances))
    with torch.no_grad():
        ref = torch.relu(linear(lstm(torch.from_numpy(np.stack(mels)).transpose(0, 1))[0][-1])).numpy()
    ref = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    out = {}
    for dtype in DTYPES:
        run = _runner(_convert(lstm, dtype, calibration, head=linear, head_activation="relu"), args)
        emb = np.stack([run(m)[-1] for m in mels]).astype(np.float64)
        emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-30)
        cos = (emb * ref).sum(1)
        out[dtype] = (float(cos.min()), float(cos.mean()))
        print(f"resemblyzer {dtype:16s} cosine vs float32 PyTorch: min {cos.min():.5f} mean {cos.mean():.5f} "
              f"({len(mels)} utterances; '/cal' and int16x8 calibrated on {len(calibration)} others)", flush=True)
    return out


def silero(args) -> dict:
    net, cell, w_out, b_out = a16.load_silero(args.silero_jit)
    feats = a16.silero_features(net, a16.vad_chunks(np.random.default_rng(args.seed + 1), args.vad_seconds))
    calibration = a16.silero_features(net, a16.vad_chunks(np.random.default_rng(args.seed + 1001),
                                                          args.calib_vad_seconds))
    ref_h = a16.silero_float_h(cell, feats)

    def probs(hh):
        return a16.vad_probs(hh, w_out, b_out)

    ref_p = probs(ref_h)
    thresholds = (0.5, 0.35)
    out = {}
    for dtype in DTYPES:
        p = probs(_runner(_convert(cell, dtype, calibration), args)(feats))
        flips = [int(np.count_nonzero((p > th) != (ref_p > th))) for th in thresholds]
        out[dtype] = (flips, float(np.abs(p - ref_p).max()))
        line = ", ".join(
            f"{f} at threshold {th:.3f}" + (f" (chunks {np.flatnonzero((p > th) != (ref_p > th)).tolist()[:5]}, "
                                            f"fp32 p within {np.abs(ref_p - th)[(p > th) != (ref_p > th)].max():.1e}"
                                            " of it)" if f else "")
            for f, th in zip(flips, thresholds))
        print(f"silero-vad  {dtype:16s} decision flips of {len(feats)} chunks: {line}; "
              f"max |p - p_fp32| {np.abs(p - ref_p).max():.2e} (feature range {feats.min():.3g} .. "
              f"{feats.max():.3g}, calibration max {np.abs(calibration).max():.3g})", flush=True)
    return out


def digits(args) -> dict:
    import torch
    from torch import nn

    from _digits import digits_split, train

    class DigitReader(nn.Module):
        """tests/test_trained.py's model: an image row by row, classes from the last step."""

        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(8, 32, batch_first=True)
            self.fc = nn.Linear(32, 10)

        def forward(self, images):
            return self.fc(self.lstm(images)[0])

    x_train, x_test, y_train, y_test = digits_split()
    torch.manual_seed(0)
    model = DigitReader()
    train(model, torch.optim.Adam(model.parameters(), lr=0.01), x_train, y_train, 12)
    out = {}
    for dtype in DTYPES:
        run = _runner(_convert(model.lstm, dtype, x_train, head=model.fc, head_activation="softmax"), args)
        pred = np.array([run(x)[-1].argmax() for x in x_test])
        out[dtype] = float((pred == y_test).mean())
        print(f"digits      {dtype:16s} held-out accuracy {out[dtype] * 100:.2f}% ({len(x_test)} images; "
              f"'/cal' and int16x8 calibrated on the {len(x_train)} training images)", flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--utterances", type=int, default=24)
    ap.add_argument("--calib-utterances", type=int, default=24)
    ap.add_argument("--vad-seconds", type=float, default=120.0)
    ap.add_argument("--calib-vad-seconds", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--isa", default="auto")
    ap.add_argument("--engine", choices=("library", "reference"), default="library")
    ap.add_argument("--only", choices=("resemblyzer", "silero", "digits"), action="append")
    ap.add_argument("--resemblyzer-pt", default=os.environ.get("RESEMBLYZER_PT", "/tmp/rz/resemblyzer/pretrained.pt"))
    ap.add_argument("--silero-jit", default=os.environ.get("SILERO_JIT", "/tmp/a16_sv/silero_vad/data/silero_vad.jit"))
    args = ap.parse_args(argv)
    logging.getLogger("lstm_embed").setLevel(logging.ERROR)
    for name, fn in (("digits", digits), ("silero", silero), ("resemblyzer", resemblyzer)):
        if not args.only or name in args.only:
            fn(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
