"""A float64 NumPy LSTM that follows PyTorch's definitions, used as an oracle independent of lstm_embed.

It reads a PyTorch state_dict directly (``nn.LSTM`` keys ``weight_ih_l{k}[_reverse]`` ...,
``nn.LSTMCell`` keys ``weight_ih`` ... without suffix) and computes, for every layer and direction,

    i, f, g, o = split(W_ih x + b_ih + W_hh h + b_hh, 4)      (gate order of PyTorch)
    c = sigmoid(f) * c + sigmoid(i) * tanh(g)
    h = sigmoid(o) * tanh(c),  then  h = W_hr h  when the layer has a projection (proj_size > 0)

followed by an optional ``nn.Linear`` head and activation. Nothing here imports lstm_embed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ACTIVATIONS = ("none", "sigmoid", "tanh", "relu", "softmax")


def _f64(value) -> np.ndarray:
    """A torch tensor or array-like as a float64 ndarray."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float64)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function, written through tanh so it cannot overflow."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def activate(name: str, y: np.ndarray) -> np.ndarray:
    """Apply a head activation along the last axis."""
    if name == "none":
        return y
    if name == "sigmoid":
        return sigmoid(y)
    if name == "tanh":
        return np.tanh(y)
    if name == "relu":
        return np.maximum(y, 0.0)
    if name == "softmax":
        e = np.exp(y - y.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    raise ValueError(f"unknown activation {name!r}")


@dataclass
class Cell:
    """Weights of one direction of one layer, float64."""

    w_ih: np.ndarray
    w_hh: np.ndarray
    b_ih: np.ndarray
    b_hh: np.ndarray
    w_hr: np.ndarray | None

    @property
    def hidden(self) -> int:
        return self.w_ih.shape[0] // 4

    @property
    def out(self) -> int:
        return self.hidden if self.w_hr is None else self.w_hr.shape[0]

    def step(self, x: np.ndarray, h: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One timestep; returns the new (h, c)."""
        z = self.w_ih @ x + self.b_ih + self.w_hh @ h + self.b_hh
        i, f, g, o = np.split(z, 4)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        if self.w_hr is not None:
            h = self.w_hr @ h
        return h, c


def _cell(sd: dict, suffix: str) -> Cell:
    w_ih = _f64(sd["weight_ih" + suffix])
    zeros = np.zeros(w_ih.shape[0])
    return Cell(
        w_ih=w_ih,
        w_hh=_f64(sd["weight_hh" + suffix]),
        b_ih=_f64(sd["bias_ih" + suffix]) if "bias_ih" + suffix in sd else zeros,
        b_hh=_f64(sd["bias_hh" + suffix]) if "bias_hh" + suffix in sd else zeros,
        w_hr=_f64(sd["weight_hr" + suffix]) if "weight_hr" + suffix in sd else None,
    )


class ReferenceLSTM:
    """The network described by a state_dict, plus an optional head ({"weight", "bias"}) and activation."""

    def __init__(self, state_dict: dict, head: dict | None = None, activation: str = "none"):
        sd = dict(state_dict)
        if "weight_ih" in sd:  # nn.LSTMCell
            self.layers = [[_cell(sd, "")]]
        else:
            count = 0
            while f"weight_ih_l{count}" in sd:
                count += 1
            directions = 2 if "weight_ih_l0_reverse" in sd else 1
            self.layers = [[_cell(sd, f"_l{k}" + ("", "_reverse")[d]) for d in range(directions)]
                           for k in range(count)]
        self.head_w = None if head is None else _f64(head["weight"])
        self.head_b = None
        if head is not None:
            self.head_b = _f64(head["bias"]) if "bias" in head else np.zeros(self.head_w.shape[0])
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}")
        self.activation = activation

    @property
    def bidirectional(self) -> bool:
        return len(self.layers[0]) == 2

    def _head(self, y: np.ndarray) -> np.ndarray:
        if self.head_w is None:
            return y
        return activate(self.activation, y @ self.head_w.T + self.head_b)

    def forward(self, xs) -> tuple[np.ndarray, list[np.ndarray]]:
        """The whole sequence xs (T, input_size) from a zero state.

        Returns (outputs (T, output_size), cell states) where cell states is the list of every
        layer's and direction's c over time, each (T, hidden), for checking how large |c| got.
        """
        seq = _f64(xs)
        cs = []
        for cells in self.layers:
            outs = []
            for d, cell in enumerate(cells):
                h, c = np.zeros(cell.out), np.zeros(cell.hidden)
                ys, ct = np.zeros((len(seq), cell.out)), np.zeros((len(seq), cell.hidden))
                order = range(len(seq) - 1, -1, -1) if d else range(len(seq))
                for t in order:
                    h, c = cell.step(seq[t], h, c)
                    ys[t], ct[t] = h, c
                outs.append(ys)
                cs.append(ct)
            seq = np.concatenate(outs, axis=1)
        return self._head(seq), cs

    def __call__(self, xs) -> np.ndarray:
        """Outputs (T, output_size) of the whole sequence xs from a zero state."""
        return self.forward(xs)[0]
