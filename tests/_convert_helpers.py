"""Torch models shaped like real training code, and a parity check, for the converter and CLI tests.

The classes live in an importable module so that whole pickled modules (``torch.save(model)``) load.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

import lstm_embed

STEPS = 250  # parity is checked over this many steps, state carried


class Tagger(nn.Module):
    """An LSTM followed by a Linear head: ``forward`` maps (T, I) to (T, O)."""

    def __init__(self, input_size: int = 5, hidden: int = 16, out: int = 3, **lstm_kwargs):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden, **lstm_kwargs)
        width = (lstm_kwargs.get("proj_size") or hidden) * (2 if lstm_kwargs.get("bidirectional") else 1)
        self.fc = nn.Linear(width, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.lstm(x[:, None, :])[0][:, 0])


class Encoder(nn.Module):
    """The encoder of ``Seq2Seq``: an input normalisation that is not part of the converted path."""

    def __init__(self):
        super().__init__()
        self.norm = nn.LayerNorm(4)
        self.lstm = nn.LSTM(4, 12, num_layers=2)


class Decoder(nn.Module):
    """``fc`` reads the LSTM output; ``aux`` reads ``fc``'s output (so it is no head candidate)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(12, 6)
        self.aux = nn.Linear(6, 2)


class Seq2Seq(nn.Module):
    """A bigger model: keys ``encoder.lstm.*`` and ``decoder.fc.*`` among others. ``forward`` is the
    path the converter keeps: encoder.lstm then decoder.fc."""

    def __init__(self):
        super().__init__()
        self.encoder = Encoder()
        self.decoder = Decoder()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder.fc(self.encoder.lstm(x[:, None, :])[0][:, 0])


def seeded(module_class, seed: int = 0, **kwargs) -> nn.Module:
    """An instance built under a fixed seed, in eval mode."""
    torch.manual_seed(seed)
    return module_class(**kwargs).eval()


def inputs(n: int, steps: int = STEPS, seed: int = 0) -> np.ndarray:
    """(steps, n) float32 N(0,1) inputs."""
    return np.random.default_rng(seed).standard_normal((steps, n)).astype(np.float32)


def stream_outputs(model: lstm_embed.Model, xs: np.ndarray) -> np.ndarray:
    """One ``step`` per row on a fresh stream."""
    stream = model.stream()
    return np.stack([stream.step(x) for x in xs])


def assert_parity(data: bytes, forward, input_size: int, tol: float = 1e-5) -> None:
    """The model in ``data``, stepped over STEPS inputs, matches ``forward`` (T, I) -> (T, O) to ``tol``."""
    xs = inputs(input_size)
    with torch.no_grad():
        want = forward(torch.from_numpy(xs)).numpy()
    got = stream_outputs(lstm_embed.Model.from_bytes(data), xs)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=tol)
