"""The main job on a shipped example: train a small LSTM on real data, convert it, stream it.

Data: the handwritten digits that ship with scikit-learn (1797 images of 8x8 pixels). Each image is read
as a sequence of 8 rows of 8 pixels, one row per timestep, like frames of a signal; after the last row
the head classifies the digit. The script trains ``nn.LSTM(8, 32) + nn.Linear(32, 10)`` with PyTorch for
a few seconds, converts it with ``lstm_embed.convert_torch``, streams every held-out image through
``Stream.step`` one row at a time, and prints how closely the outputs and the accuracy agree with
PyTorch's.

    python tools/demo.py [--out digits.lstm] [--epochs 40] [--trace trace.png]

With --trace (needs matplotlib), it also converts the network to int8-dynamic and draws the gate trace of
12 held-out digits (each from a fresh state, one after another) against the float32 model's: where the
quantised model departs, gate by gate (docs/trace.md shows the picture).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import lstm_embed


class DigitReader(torch.nn.Module):
    """LSTM over the rows of an image, then a linear classifier on the last output."""

    def __init__(self, hidden: int = 32):
        super().__init__()
        self.lstm = torch.nn.LSTM(8, hidden, batch_first=True)
        self.head = torch.nn.Linear(hidden, 10)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        return self.head(self.lstm(rows)[0])  # logits at every row


def load_data(seed: int):
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)  # (1797, 8, 8) in [0, 1]
    return train_test_split(images, digits.target, test_size=0.25, random_state=seed, stratify=digits.target)


def train(model: DigitReader, x: np.ndarray, y: np.ndarray, epochs: int, seed: int) -> None:
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y).long()
    for _ in range(epochs):
        for idx in torch.randperm(len(xt)).split(64):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xt[idx])[:, -1], yt[idx])
            loss.backward()
            opt.step()


def draw_trace(net: DigitReader, fp32: lstm_embed.Model, images: np.ndarray, path: str) -> None:
    """The int8-dynamic model's gate trace over `images` (each from a fresh state) against fp32's."""
    from lstm_embed.trace import Trace, plot_trace

    q = lstm_embed.Model.from_bytes(lstm_embed.convert_torch(net.lstm, head=net.head, head_activation="softmax",
                                                             dtype="int8-dynamic", calibration=images))

    def traced(model):
        parts = [model.stream().trace(image) for image in images]
        return Trace(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("gates", "c", "h", "y")))

    ours, ref = traced(q), traced(fp32)
    plot_trace(ours, path, reference=ref, title=f"digits demo, int8-dynamic vs float32: {len(images)} held-out "
               f"digits of 8 rows each (state reset between digits)")
    err = ours.errors(ref)
    print(f"wrote {path}: max |gate error| (i f g o) " + " ".join(f"{v:.2e}" for v in err["gates"][0]) +
          f"; max |output error| {float(err['y']):.2e}; saturated (i f g o) " +
          " ".join(f"{v:.2f}" for v in ref.saturation()[0]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="digits.lstm", help="where to write the converted model file")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trace", metavar="OUT.png", help="also draw the int8-dynamic model's gate trace of 12 "
                        "held-out digits against the float32 model's")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)

    x_train, x_test, y_train, y_test = load_data(args.seed)
    net = DigitReader()
    start = time.perf_counter()
    train(net, x_train, y_train, args.epochs, args.seed)
    net.eval()
    print(f"trained nn.LSTM(8, 32) + nn.Linear(32, 10) on {len(x_train)} digit images "
          f"in {time.perf_counter() - start:.1f} s")

    data = lstm_embed.convert_torch(net.lstm, head=net.head, head_activation="softmax")
    model = lstm_embed.Model.from_bytes(data)
    model.save(args.out)
    print(f"converted to {args.out}: {model.file_size} bytes, {model.param_count} parameters, "
          f"{model.state_size} bytes of state per stream")

    with torch.no_grad():
        torch_probs = torch.softmax(net(torch.from_numpy(x_test)), dim=-1).numpy()  # (N, 8, 10)

    stream = model.stream()
    ours = np.empty_like(torch_probs)
    start = time.perf_counter()
    for n, image in enumerate(x_test):
        stream.reset()
        for t, row in enumerate(image):  # one timestep per row, as a streaming caller would
            stream.step(row, out=ours[n, t])
    per_step = (time.perf_counter() - start) / (len(x_test) * 8) * 1e6

    err = np.abs(ours - torch_probs)
    acc_torch = np.mean(torch_probs[:, -1].argmax(1) == y_test)
    acc_ours = np.mean(ours[:, -1].argmax(1) == y_test)
    agree = np.mean(torch_probs[:, -1].argmax(1) == ours[:, -1].argmax(1))
    print(f"streamed {len(x_test)} held-out images row by row ({per_step:.2f} us per step from Python)")
    print(f"max abs difference from PyTorch over every step and class: {err.max():.2e} "
          f"(mean {err.mean():.2e})")
    print(f"accuracy: PyTorch {acc_torch:.4f}, lstm_embed {acc_ours:.4f}; predictions agree on {agree:.2%}")
    if args.trace:
        draw_trace(net, model, x_test[:12], args.trace)
    ok = err.max() <= 1e-5 and acc_torch == acc_ours
    print("AGREEMENT OK" if ok else "AGREEMENT FAILED")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
