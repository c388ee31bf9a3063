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


def _reference(model, feeds: dict, layout: int = 0) -> list:
    if layout == 0:
        return _ort(model, feeds)
    from onnx.reference import ReferenceEvaluator

    return ReferenceEvaluator(model).run(None, feeds)


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


def test_convert_onnx_int16x8():
    """The integer-only dtype through the same converter: calibration required, output near ONNX Runtime's
    on data of the calibration's range."""
    model = _export(2, False, False, "tanh")
    x = np.random.default_rng(2).standard_normal((3, 11, 5)).astype(np.float32)
    with pytest.raises(ConversionError, match="needs calibration data"):
        convert_onnx(model, dtype="int16x8")
    data = convert_onnx(model, dtype="int16x8", calibration=x[:2])
    assert Model.from_bytes(data).is_integer
    (y,) = _ort(model, {"x": x[2][:, None]})
    assert np.abs(_run(data, x[2]) - y[:, 0]).max() < 3e-2


# --- the onnx package's LSTM node tests ------------------------------------------------------------------

def _backend_cases() -> dict:
    """name -> (model, inputs, outputs): from onnx/backend/test/data/node/test_lstm_* when the installed
    onnx ships that data, else generated by the same onnx test-case code (onnx.backend.test.case)."""
    root = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "node")
    cases = {}
    if os.path.isdir(root):
        for name in sorted(os.listdir(root)):
            if not name.startswith("test_lstm"):
                continue
            model = onnx.load(os.path.join(root, name, "model.onnx"))
            folder = os.path.join(root, name, "test_data_set_0")

            def read(prefix):
                files = sorted(f for f in os.listdir(folder) if f.startswith(prefix))
                return [numpy_helper.to_array(onnx.load_tensor(os.path.join(folder, f))) for f in files]
            cases[name] = (model, read("input_"), read("output_"))
    if not cases:  # pip wheels ship no node data: run onnx's own generator of it (lstm.py) only
        import importlib

        import onnx.backend.test.case.node as node_cases
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if not any(c.name.startswith("test_lstm") for c in node_cases._NodeTestCases):
                node_cases._TargetOpType = "LSTM"
                importlib.import_module("onnx.backend.test.case.node.lstm")
            found = [c for c in node_cases._NodeTestCases if c.name.startswith("test_lstm")]
            if not found:  # the public (slower) way
                found = [c for c in node_cases.collect_testcases("LSTM") if c.name.startswith("test_lstm")]
        for case in found:
            inputs, outputs = case.data_sets[0]
            cases[case.name] = (case.model, list(inputs), list(outputs))
    return cases


_BACKEND = None


def _backend(name):
    global _BACKEND
    if _BACKEND is None:
        _BACKEND = _backend_cases()
    if name not in _BACKEND:
        pytest.skip(f"{name} is not among the onnx package's LSTM test cases here")
    return _BACKEND[name]


def _freeze(model, inputs):
    """The model with every graph input but the first (X) turned into an initializer of its test value:
    the node tests feed weights as inputs; a model file needs them constant."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    g = model.graph
    keep = g.input[0]
    for vi, value in list(zip(g.input, inputs))[1:]:
        g.initializer.append(numpy_helper.from_array(np.asarray(value), vi.name))
    del g.input[:]
    g.input.append(keep)
    return model


def _last_states(out: np.ndarray, hidden: int) -> np.ndarray:
    """Y_h [D, H] from a model's per-step output (T, D*H): forward's last step, reverse's step 0."""
    d = out.shape[1] // hidden
    return np.stack([out[-1, :hidden], out[0, hidden:]][:d])


SUPPORTED = ["test_lstm_defaults", "test_lstm_with_initial_bias", "test_lstm_batchwise", "test_lstm_bidirectional"]
REFUSED = {"test_lstm_with_peepholes": ["peepholes", "sequence_lens"], "test_lstm_reverse": ["reverse"]}


@pytest.mark.parametrize("name", SUPPORTED)
def test_backend_supported(name):
    model, inputs, outputs = _backend(name)
    frozen = _freeze(model, inputs)
    data = convert_onnx(frozen)
    x = inputs[0]
    node = model.graph.node[0]
    layout = next((a.i for a in node.attribute if a.name == "layout"), 0)
    hidden = next(a.i for a in node.attribute if a.name == "hidden_size")
    xb = x if layout == 0 else np.swapaxes(x, 0, 1)  # [T, B, I]
    runs = [_run(data, xb[:, b]) for b in range(xb.shape[1])]  # each (T, D*H)
    names = [o.name for o in model.graph.output]
    for oname, want in zip(names, outputs):
        if oname == "Y":
            y = np.stack(runs, axis=1)  # [T, B, D*H]
            d = want.shape[2] if layout == 0 else want.shape[2]
            got = y.reshape(y.shape[0], y.shape[1], d, hidden)  # [T, B, D, H]
            got = got.transpose(0, 2, 1, 3) if layout == 0 else got.transpose(1, 0, 2, 3)
            _close(got, want)
        elif oname == "Y_h":
            got = np.stack([_last_states(r, hidden) for r in runs], axis=1)  # [D, B, H]
            _close(got if layout == 0 else got.transpose(1, 0, 2), want)
    # and the frozen model still computes the stored outputs (onnxruntime has no layout=1 LSTM: onnx's
    # reference evaluator there)
    for got, want in zip(_reference(frozen, {model.graph.input[0].name: x}, layout), outputs):
        _close(got, want)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_backend_refused(name):
    model, inputs, _ = _backend(name)
    with pytest.raises(ConversionError) as e:
        convert_onnx(_freeze(model, inputs))
    for word in REFUSED[name]:
        assert word in str(e.value)


# --- hand-built graphs ---------------------------------------------------------------------------------

I, H, O = 3, 4, 2


def _weights(nd, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((nd, 4 * H, I)).astype(np.float32) * 0.5,
            rng.standard_normal((nd, 4 * H, H)).astype(np.float32) * 0.5,
            rng.standard_normal((nd, 8 * H)).astype(np.float32) * 0.5)


def _graph(direction="forward", layout=0, lstm_attrs=None, extra_inputs=(), head="gemm", act=None,
           constant_nodes=False, x_shape=None):
    """X -> LSTM -> Squeeze(D) -> Squeeze(B) -> head (Gemm, or MatMul + Add) -> activation."""
    nd = 2 if direction == "bidirectional" else 1
    W, R, B = _weights(nd)
    rng = np.random.default_rng(5)
    hw = rng.standard_normal((O, nd * H)).astype(np.float32)
    hb = rng.standard_normal(O).astype(np.float32)
    tensors = {"W": W, "R": R, "B": B, "hw": hw, "hwT": hw.T.copy(), "hb": hb,
               **{name: value for name, value in extra_inputs if value is not None}}
    nodes, inits = [], []
    for name, value in tensors.items():
        if constant_nodes:
            nodes.append(helper.make_node("Constant", [], [name], value=numpy_helper.from_array(value, name)))
        else:
            inits.append(numpy_helper.from_array(value, name))
    ins = ["X", "W", "R", "B"] + [name for name, _ in extra_inputs]
    nodes.append(helper.make_node("LSTM", ins, ["Y", "Y_h"], hidden_size=H, direction=direction,
                                  **({"layout": layout} if layout else {}), **(lstm_attrs or {})))
    # Y: layout 0 [T, D, B, H], layout 1 [B, T, D, H]; -> [T, D*H] (batch 1)
    tb = ("Y_t", [0, 2, 1, 3]) if layout == 0 else ("Y_t", [1, 0, 2, 3])
    nodes.append(helper.make_node("Transpose", ["Y"], [tb[0]], perm=tb[1]))  # [T, B, D, H]
    nodes.append(helper.make_node("Reshape", ["Y_t", "shape"], ["Y_r"]))  # [T, B, D*H]
    inits.append(numpy_helper.from_array(np.array([0, 0, -1], np.int64), "shape"))
    inits.append(numpy_helper.from_array(np.array([1], np.int64), "axis1"))
    nodes.append(helper.make_node("Squeeze", ["Y_r", "axis1"], ["Y_2d"]))  # [T, D*H]
    if head == "gemm":
        nodes.append(helper.make_node("Gemm", ["Y_2d", "hw", "hb"], ["Z"], transB=1, alpha=0.5, beta=2.0))
    else:
        nodes.append(helper.make_node("MatMul", ["Y_2d", "hwT"], ["Zm"]))
        nodes.append(helper.make_node("Add", ["Zm", "hb"], ["Z"]))
    out = "Z"
    if act:
        nodes.append(helper.make_node(act, ["Z"], ["A"], **({"axis": -1} if act == "Softmax" else {})))
        out = "A"
    if x_shape is None:
        x_shape = ["T", 1, I] if layout == 0 else [1, "T", I]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["T", O])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])


@pytest.mark.parametrize("layout,direction,head,act", [
    (0, "forward", "gemm", None), (1, "forward", "gemm", "Sigmoid"), (1, "bidirectional", "matmul", "Softmax"),
    (0, "bidirectional", "matmul", "Relu"), (1, "forward", "matmul", "Tanh")])
def test_hand_built(layout, direction, head, act):
    model = _graph(direction, layout, head=head, act=act, constant_nodes=layout == 1)
    onnx.checker.check_model(model)
    data = convert_onnx(model)
    x = np.random.default_rng(2).standard_normal((9, I)).astype(np.float32)
    feed = x[:, None] if layout == 0 else x[None]
    (want,) = _reference(model, {"X": feed}, layout)
    _close(_run(data, x), want)


def _refused(lstm_attrs=None, extra=(), direction="forward"):
    with pytest.raises(ConversionError) as e:
        convert_onnx(_graph(direction, lstm_attrs=lstm_attrs, extra_inputs=extra))
    return str(e.value)


def test_reverse_refused():
    assert 'direction="reverse"' in _refused(direction="reverse")


@pytest.mark.parametrize("attrs,word", [
    ({"clip": 3.0}, "clip"), ({"input_forget": 1}, "input_forget"),
    ({"activations": ["Sigmoid", "Tanh", "Relu"]}, "activations"),
    ({"activations": ["HardSigmoid", "Tanh", "Tanh"], "activation_alpha": [0.2], "activation_beta": [0.5]},
     "activation_alpha"),
    ({"activation_beta": [0.5]}, "activation_beta")])
def test_attributes_refused(attrs, word):
    assert word in _refused(lstm_attrs=attrs)


def test_default_activations_spelled_out_accepted():
    model = _graph(lstm_attrs={"activations": ["Sigmoid", "Tanh", "Tanh"]})
    x = np.random.default_rng(3).standard_normal((5, I)).astype(np.float32)
    _close(_run(convert_onnx(model), x), _ort(model, {"X": x[:, None]})[0])


def _zeros(*shape):
    return np.zeros(shape, np.float32)


def test_inputs_refused():
    assert "sequence_lens" in _refused(extra=[("sequence_lens", np.array([5], np.int32))])
    assert "peepholes" in _refused(extra=[("", None), ("", None), ("", None), ("P", _zeros(1, 3 * H) + 0.1)])
    assert "initial_h" in _refused(extra=[("", None), ("initial_h", _zeros(1, 1, H) + 1)])
    assert "initial_c" in _refused(extra=[("", None), ("", None), ("initial_c", _zeros(1, 1, H) + 1)])
    # several at once: every one is named
    msg = _refused(lstm_attrs={"clip": 1.0, "input_forget": 1}, extra=[("seq", np.array([5], np.int32))])
    assert "clip" in msg and "input_forget" in msg and "sequence_lens" in msg


def test_zero_initial_states_accepted():
    model = _graph(extra_inputs=[("", None), ("initial_h", _zeros(1, 1, H)), ("initial_c", _zeros(1, 1, H))])
    x = np.random.default_rng(4).standard_normal((6, I)).astype(np.float32)
    _close(_run(convert_onnx(model), x), _ort(model, {"X": x[:, None]})[0])


def test_unknown_op_on_path_refused():
    model = _graph(act="Sigmoid")
    model.graph.node[-1].op_type = "Abs"
    with pytest.raises(ConversionError, match="Abs"):
        convert_onnx(model)


def test_cli_convert_onnx(tmp_path, capsys):
    from lstm_embed.cli import main

    import lstm_embed
    assert lstm_embed.convert_onnx is convert_onnx
    model = _graph(direction="bidirectional", head="matmul", act="Softmax")
    src, out = tmp_path / "m.onnx", tmp_path / "m.lstm"
    onnx.save(model, str(src))
    assert main(["convert", str(src), "-o", str(out)]) == 0
    assert out.read_bytes() == convert_onnx(model)
    assert main(["convert", str(src), "-o", str(out), "--dtype", "int8"]) == 0
    assert Model.load(str(out)).dtype == "int8"
    assert main(["convert", str(src), "-o", str(out), "--head-activation", "tanh"]) == 1
    bad = _graph(lstm_attrs={"clip": 2.0})
    onnx.save(bad, str(src))
    assert main(["convert", str(src), "-o", str(tmp_path / "bad.lstm")]) == 1
    assert "clip" in capsys.readouterr().err
    assert not (tmp_path / "bad.lstm").exists()


def test_not_an_lstm_graph_refused(tmp_path):
    bad = tmp_path / "junk.onnx"
    bad.write_bytes(b"\x08\x07not a model" * 10)
    with pytest.raises(ConversionError):
        convert_onnx(str(bad))
    model = _graph()
    model.graph.node[[n.op_type for n in model.graph.node].index("LSTM")].op_type = "GRU"
    with pytest.raises(ConversionError, match="GRU"):
        convert_onnx(model)
