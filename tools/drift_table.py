"""The fp32 drift table of docs/accuracy.md: a trained model's outputs over long runs of N(0, 1) input, from
PyTorch fp32 and from lstm_embed under every ISA of this CPU, against the float64 NumPy reference
(tests/reference.py).

    python tools/drift_table.py STATE_DICT.pt [--steps 1000] [--seeds 6]

STATE_DICT.pt: a torch.nn.LSTM state_dict (or a checkpoint whose "model_state" holds one under "lstm.").
Per engine: over the seeds, the mean and median of the max abs error, the mean abs error (mean over seeds,
and its standard error), and the ratio of the mean abs error to PyTorch's.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from reference import ReferenceLSTM  # noqa: E402

import lstm_embed  # noqa: E402


def load_state_dict(path):
    sd = torch.load(path, map_location="cpu")
    if isinstance(sd, dict) and "model_state" in sd:
        sd = sd["model_state"]
    if any(k.startswith("lstm.") for k in sd):
        sd = {k[len("lstm."):]: v for k, v in sd.items() if k.startswith("lstm.")}
    return sd


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("state_dict")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--seeds", type=int, default=6)
    args = ap.parse_args()
    torch.set_num_threads(1)
    sd = load_state_dict(args.state_dict)
    ref = ReferenceLSTM(sd)
    inp, hidden, layers = ref.layers[0][0].w_ih.shape[1], ref.layers[0][0].hidden, len(ref.layers)
    lstm = torch.nn.LSTM(inp, hidden, layers)
    lstm.load_state_dict(sd)
    data = lstm_embed.convert_torch(lstm)
    engines = {"PyTorch fp32": None}
    for isa in lstm_embed.supported_isas():
        engines[f"lstm_embed {isa}"] = lstm_embed.Model.from_bytes(data, isa=isa)
    mx = {k: [] for k in engines}
    mean = {k: [] for k in engines}
    for seed in range(args.seeds):
        xs = np.random.default_rng(seed).standard_normal((args.steps, inp)).astype(np.float32)
        want = ref(xs)
        for name, model in engines.items():
            if model is None:
                with torch.no_grad():
                    got = lstm(torch.from_numpy(xs))[0].numpy()
            else:
                got = model.stream().run(xs)
            err = np.abs(got.astype(np.float64) - want)
            mx[name].append(err.max())
            mean[name].append(err.mean())
    base = np.mean(mean["PyTorch fp32"])
    print(f"{args.seeds} seeds x {args.steps} steps, {layers} x LSTM({inp}, {hidden})\n")
    print("| engine | max err, mean | max err, median | mean abs err (+- s.e.) | / PyTorch |\n|---|---|---|---|---|")
    for name in engines:
        m = np.array(mean[name])
        print(f"| {name} | {np.mean(mx[name]):.3g} | {np.median(mx[name]):.3g} | {m.mean():.3g} (+- "
              f"{m.std(ddof=1) / np.sqrt(len(m)):.2g}) | {m.mean() / base:.2f} |")


if __name__ == "__main__":
    main()
