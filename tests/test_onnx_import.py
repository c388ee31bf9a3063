"""ONNX LSTM import (lstm_embed.onnx_import): torch.onnx.export'ed models, hand-built graphs and the onnx
package's LSTM node test cases, compared with ONNX Runtime; refused attributes must be named."""
from __future__ import annotations

import io
import os
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="ONNX import tests need the onnx package (pip install onnx)")
ort = pytest.importorskip("onnxruntime", reason="ONNX import tests need onnxruntime (pip install onnxruntime)")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from lstm_embed import ConversionError, Model  # noqa: E402
from lstm_embed.onnx_import import convert_onnx  # noqa: E402

TOL = 1e-5


def _ort(model, feeds: dict) -> list:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def _close(got, want, tol=TOL) -> float:
    """Max error, relative to max(1, |want|) so large outputs are compared relatively."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    err = float(np.max(np.abs(got - want) / np.maximum(1.0, np.abs(want)))) if got.size else 0.0
    assert err <= tol, err
    return err


def _run(data: bytes, xs: np.ndarray) -> np.ndarray:
    return Model.from_bytes(data).stream().run(np.ascontiguousarray(xs, np.float32))


# --- torch.onnx.export ---------------------------------------------------------------------------------

torch = None


def _torch():
    global torch
    torch = pytest.importorskip("torch", reason="exporting test models needs torch")
    return torch


ACTS = [None, "sigmoid", "tanh", "relu", "softmax"]


def _export(layers, bidirectional, batch_first, act, hidden=8, in_size=5, out=3, seed=0):
    t = _torch()
    t.manual_seed(seed)

    class Net(t.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = t.nn.LSTM(in_size, hidden, layers, bidirectional=bidirectional, batch_first=batch_first)
            self.head = t.nn.Linear(hidden * (2 if bidirectional else 1), out)

        def forward(self, x):
            y = self.head(self.lstm(x)[0])
            return {None: y, "sigmoid": t.sigmoid(y), "tanh": t.tanh(y), "relu": t.relu(y),
                    "softmax": t.softmax(y, -1)}[act]

    net = Net().eval()
    x = t.randn(2, 7, in_size) if batch_first else t.randn(7, 2, in_size)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t.onnx.export(net, (x,), buf, dynamo=False, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "d0", 1: "d1"}, "y": {0: "d0", 1: "d1"}})
    return onnx.load_from_string(buf.getvalue())


CASES = [(1, False, False, None), (1, False, True, "sigmoid"), (2, False, False, "tanh"),
         (2, True, True, "relu"), (3, True, False, "softmax"), (3, False, True, None), (1, True, False, "sigmoid")]


@pytest.mark.parametrize("layers,bidirectional,batch_first,act", CASES)
def test_torch_export(layers, bidirectional, batch_first, act):
    model = _export(layers, bidirectional, batch_first, act)
    data = convert_onnx(model)
    m = Model.from_bytes(data)
    assert (m.num_layers, m.num_directions, m.head_activation) == (layers, 1 + bidirectional, act or "none")
    rng = np.random.default_rng(1)
    T, B = 11, 3
    x = rng.standard_normal((T, B, 5)).astype(np.float32) * 2
    feed = np.swapaxes(x, 0, 1).copy() if batch_first else x
    (y,) = _ort(model, {"x": feed})
    if batch_first:
        y = np.swapaxes(y, 0, 1)
    for b in range(B):
        _close(_run(data, x[:, b]), y[:, b])


def test_convert_onnx_path_and_int8(tmp_path):
    model = _export(2, False, False, "tanh")
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    assert convert_onnx(str(path)) == convert_onnx(model) == convert_onnx(model.SerializeToString())
    assert Model.from_bytes(convert_onnx(path, dtype="int8")).dtype == "int8"
