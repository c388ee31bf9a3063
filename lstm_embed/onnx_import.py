"""ONNX ``LSTM`` graphs to model files (docs/onnx.md).

``convert_onnx`` reads an ONNX model (a path, bytes or an ``onnx.ModelProto``), follows the tensor that
flows from the graph input to the graph output and builds a ``ModelSpec`` from what it meets on the way:
one or more ``LSTM`` nodes (forward or bidirectional, layout 0 or 1), the reshapes and transposes
``torch.onnx.export`` puts between them, an optional head (``Gemm``, or ``MatMul`` + ``Add``) and an
optional activation (Sigmoid, Tanh, Relu, Softmax over the last axis). Everything else on that path is
refused with a ``ConversionError`` that names it: the file must compute what the ONNX graph computes,
or not be written. Needs the ``onnx`` package (not onnxruntime).

How it works: a small abstract interpretation over the (topologically sorted) nodes. Every tensor is one
of: a constant (initializer, ``Constant`` node, or a node whose inputs are all constant, evaluated with
onnx's reference evaluator); a "shape" value computed from the data's shape (``Shape``, ``Gather``, ...);
an all-zero tensor of data-dependent shape (``ConstantOfShape`` of value 0 and slices of it: the initial
states torch exports); or the data itself, which carries the model built so far and the meaning of each
of its axes (T time, B batch, D direction, H hidden, F features = D x H merged direction-major, O head
outputs). An op on the data is accepted only when its effect on those axes is known exactly.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from lstm_embed.errors import ConversionError
from lstm_embed.format import CellWeights, ModelSpec

log = logging.getLogger("lstm_embed")

_ONNX_TO_TORCH_GATES = (0, 2, 3, 1)  # ONNX blocks i, o, f, c -> PyTorch i, f, g(=c), o
_DEFAULT_ACTS = ("sigmoid", "tanh", "tanh")
_ELEMENTWISE = {"Sigmoid": "sigmoid", "Tanh": "tanh", "Relu": "relu"}
_PASS_THROUGH = {"Identity", "Dropout"}
_ZERO_KEEPING = {"Slice", "Expand", "Reshape", "Unsqueeze", "Squeeze", "Identity", "Gather", "Concat",
                 "Transpose", "Cast", "Tile"}


@dataclass(frozen=True)
class _Bad:
    """A tensor the converter cannot follow; an error only if the graph output depends on it."""
    reason: str


@dataclass
class _Data:
    """The data tensor: the model that computes it from the graph input, and what its axes mean."""
    axes: tuple  # labels: for the graph input "in0".., then T, B, D, H, F, O
    sizes: dict = field(default_factory=dict)  # label -> size where known (D, H, F, O)
    layers: tuple = ()  # per LSTM layer: list of CellWeights (one per direction)
    hidden: int = 0
    input_size: int = 0
    head_w: Any = None  # [O, F]
    head_b: Any = None  # [O]
    activation: str = "none"
    final_h: bool = False  # an LSTM's Y_h (last state), not the per-step output Y
    stage: str = "input"  # input, lstm, head, activation


_ZERO = object()  # marks an all-zero tensor of data-dependent shape
_SHAPE = object()  # marks a value computed from shapes only


def _attrs(node) -> dict:
    from onnx import helper

    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        if isinstance(v, list):
            v = [s.decode() if isinstance(s, bytes) else s for s in v]
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def _label(node) -> str:
    """A node's name for messages: its name, else its first named output."""
    return node.name or next((o for o in node.output if o), "") or f"<unnamed {node.op_type}>"


def _load(model_or_path):
    import onnx

    if isinstance(model_or_path, onnx.ModelProto):
        return model_or_path
    if isinstance(model_or_path, (bytes, bytearray, memoryview)):
        return onnx.load_from_string(bytes(model_or_path))
    if isinstance(model_or_path, (str, os.PathLike)):
        try:
            return onnx.load(os.fspath(model_or_path))
        except OSError:
            raise
        except Exception as e:  # protobuf decode errors have no common base class
            raise ConversionError(f"{model_or_path}: not a readable ONNX model ({e})") from None
    raise ConversionError(f"expected an ONNX model: a path, bytes or onnx.ModelProto, got {type(model_or_path).__name__}")


def _eval_const(node, inputs: list, opset: int):
    """Run one node on constant inputs with onnx's reference evaluator (constant folding)."""
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    names = [f"c{i}" if n else "" for i, n in enumerate(node.input)]
    n2 = helper.make_node(node.op_type, names, [f"o{i}" for i in range(len(node.output))], domain=node.domain)
    n2.attribute.extend(node.attribute)
    inits = [numpy_helper.from_array(np.asarray(v), name) for v, name in zip(inputs, names) if name]
    outs = [helper.make_empty_tensor_value_info(o) for o in n2.output]
    graph = helper.make_graph([n2], "fold", [], outs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(node.domain or "", opset)])
    return ReferenceEvaluator(model).run(None, {})


def _axes_list(node, attrs, consts, pos: int = 1):
    if "axes" in attrs:
        return list(attrs["axes"])
    if len(node.input) > pos and node.input[pos]:
        if node.input[pos] not in consts:
            return "dynamic"
        return [int(a) for a in np.asarray(consts[node.input[pos]]).reshape(-1)]
    return None


def _lstm(node, x: Any, consts: dict, zeros: set) -> list:
    """The outputs (Y, Y_h, Y_c) of an LSTM node reading the data value ``x``."""
    a = _attrs(node)
    ins = list(node.input) + [""] * (8 - len(node.input))
    refused = []
    if ins[7]:
        refused.append("peepholes (input P)")
    if "clip" in a:
        refused.append(f"clip={a['clip']:g} (cell clipping)")
    if a.get("input_forget", 0):
        refused.append("input_forget=1 (coupled input and forget gates)")
    directions = a.get("direction", "forward")
    if "activations" in a:
        acts = tuple(s.lower() for s in a["activations"])
        if acts != _DEFAULT_ACTS * (len(acts) // 3) or len(acts) not in (3, 6):
            refused.append(f"activations={list(a['activations'])} (only the defaults Sigmoid, Tanh, Tanh run)")
    for key in ("activation_alpha", "activation_beta"):
        if key in a:
            refused.append(f"{key}={list(a[key])}")
    if ins[4]:
        refused.append("sequence_lens input (per-sequence lengths; feed each sequence as its own stream)")
    for i, name in ((5, "initial_h"), (6, "initial_c")):
        if not ins[i] or ins[i] in zeros:
            continue
        if ins[i] in consts:
            if np.any(np.asarray(consts[ins[i]]) != 0):
                refused.append(f"{name} with non-zero values (a stream starts from zero state; initial "
                               "states must be absent or all zeros)")
        else:
            refused.append(f"{name} computed at run time (a stream starts from zero state; initial states "
                           "must be absent or all zeros)")
    if directions == "reverse":
        refused.append('direction="reverse" (a reverse-only LSTM reads the sequence from its end: not a '
                       'streaming model, and the model file has no reverse-only layer; use "bidirectional" '
                       "or reverse the input yourself and export a forward LSTM)")
    elif directions not in ("forward", "bidirectional"):
        refused.append(f"direction={directions!r}")
    if refused:
        raise ConversionError(f"LSTM node {_label(node)!r}: cannot be converted exactly: "
                              + "; ".join(refused))
    for i, name in ((1, "W"), (2, "R"), (3, "B")):
        if ins[i] and ins[i] not in consts:
            raise ConversionError(f"LSTM node {_label(node)!r}: input {name} ({ins[i]!r}) is not "
                                  "a constant (initializer or Constant node)")
    if isinstance(x, _Bad):
        raise ConversionError(x.reason)
    if not isinstance(x, _Data) or x.final_h:
        raise ConversionError(f"LSTM node {_label(node)!r}: its input X does not come from the "
                              "graph input through LSTMs and reshapes only")
    layout = a.get("layout", 0)
    if layout not in (0, 1):
        raise ConversionError(f"LSTM layout={layout} is not defined by ONNX (0 or 1)")
    W = np.asarray(consts[ins[1]], np.float32)
    R = np.asarray(consts[ins[2]], np.float32)
    nd = 2 if directions == "bidirectional" else 1
    hidden = int(a.get("hidden_size", R.shape[-1]))
    if W.ndim != 3 or R.shape != (nd, 4 * hidden, hidden) or W.shape[:2] != (nd, 4 * hidden):
        raise ConversionError(f"LSTM node {_label(node)!r}: W {W.shape} / R {R.shape} do not fit hidden_size "
                              f"{hidden} and {nd} direction(s)")
    B = np.zeros((nd, 8 * hidden), np.float32) if not ins[3] else np.asarray(consts[ins[3]], np.float32)
    if B.shape != (nd, 8 * hidden):
        raise ConversionError(f"LSTM node {_label(node)!r}: B has shape {B.shape}, expected {(nd, 8 * hidden)}")
    want = ("T", "B", "F") if layout == 0 else ("B", "T", "F")
    if x.stage == "input":
        if len(x.axes) != 3:
            raise ConversionError(f"the graph input reaches the LSTM with {len(x.axes)} axes; an LSTM reads 3")
        in_size = W.shape[2]
    elif x.stage == "lstm":
        ax = x.axes
        if ax != want:
            raise ConversionError(f"LSTM node {_label(node)!r} reads the previous LSTM's output with axes {ax}, "
                                  f"expected {want} (layout {layout}); only torch.onnx.export's reshapes are "
                                  "understood")
        in_size = x.sizes["F"]
        if W.shape[2] != in_size:
            raise ConversionError(f"LSTM node {_label(node)!r}: W reads {W.shape[2]} features, the previous "
                                  f"layer gives {in_size}")
        if x.layers and (len(x.layers[0]) != nd or x.hidden != hidden):
            raise ConversionError("every LSTM layer must have the same hidden_size and direction as the first "
                                  f"(model file format): got {x.hidden} x {len(x.layers[0])} then {hidden} x {nd}")
    else:
        raise ConversionError(f"LSTM node {_label(node)!r} after a head or activation cannot be converted")
    order = np.concatenate([np.arange(g * hidden, (g + 1) * hidden) for g in _ONNX_TO_TORCH_GATES])
    cells = [CellWeights(w_ih=W[d][order], w_hh=R[d][order],
                         bias=(B[d, :4 * hidden] + B[d, 4 * hidden:])[order]) for d in range(nd)]
    base = dict(layers=x.layers + (cells,), hidden=hidden, input_size=x.input_size or in_size, stage="lstm")
    sizes = {"D": nd, "H": hidden}
    y = _Data(axes=("T", "D", "B", "H") if layout == 0 else ("B", "T", "D", "H"), sizes=sizes, **base)
    y_h = _Data(axes=("D", "B", "H") if layout == 0 else ("B", "D", "H"), sizes=sizes, final_h=True, **base)
    return [y, y_h, _Bad("Y_c (the LSTM's cell state) is not an output of the model file")]


def _merge_dh(v: _Data) -> _Data:
    """Y with D of size 1 squeezed: H is the feature axis."""
    axes = tuple("F" if a == "H" else a for a in v.axes if a != "D")
    return replace(v, axes=axes, sizes={**v.sizes, "F": v.sizes["H"]})


def _data_op(node, vals: list, consts: dict, opset: int) -> Any:
    """The value of a node whose first data input is ``vals[0]`` (a _Data); _Bad when not understood."""
    op, a, v = node.op_type, _attrs(node), vals[0]
    where = f"{op} node {_label(node)!r}"
    if op in _PASS_THROUGH:
        return v
    if v.final_h and op not in ("Transpose", "Squeeze", "Reshape"):
        return _Bad(f"{where}: uses an LSTM's last state Y_h; only the per-step output Y can feed further ops")
    if op == "Transpose":
        perm = a.get("perm", list(range(len(v.axes)))[::-1])
        return replace(v, axes=tuple(v.axes[p] for p in perm))
    if op == "Squeeze":
        axes = _axes_list(node, a, consts)
        if axes == "dynamic":
            return _Bad(f"{where}: axes computed at run time")
        if axes is None:
            axes = [i for i, lab in enumerate(v.axes) if v.sizes.get(lab) == 1]
        labels = [v.axes[i] for i in axes]
        out = v
        for lab in labels:
            if lab == "D" and v.sizes["D"] == 1:
                out = _merge_dh(out)
            elif lab == "B":  # the graph then runs batch 1 only; per sequence it is the same model
                out = replace(out, axes=tuple(x for x in out.axes if x != "B"))
            else:
                return _Bad(f"{where}: squeezes axis {lab!r} of size {v.sizes.get(lab, '?')}")
        return out
    if op == "Reshape":
        if node.input[1] not in consts:
            return _Bad(f"{where}: target shape computed at run time")
        shape = [int(s) for s in np.asarray(consts[node.input[1]]).reshape(-1)]
        ax = v.axes
        if len(shape) == len(ax) and all(s in (0, v.sizes.get(lab, s)) for s, lab in zip(shape, ax)):
            return v  # no-op
        if len(shape) == len(ax) - 1 and "D" in ax:
            i = ax.index("D")
            if i + 1 < len(ax) and ax[i + 1] == "H":
                merged = v.sizes["D"] * v.sizes["H"]
                keep = ax[:i] + ax[i + 2:]
                if shape[i] in (-1, merged) and all(s in (0, -1, v.sizes.get(lab, s)) for s, lab in
                                                     zip(shape[:i] + shape[i + 1:], keep)):
                    return replace(v, axes=ax[:i] + ("F",) + ax[i + 2:], sizes={**v.sizes, "F": merged})
            if v.sizes["D"] == 1:
                keep = ax[:i] + ax[i + 1:]
                if all(s in (0, -1, v.sizes.get(lab, s)) for s, lab in zip(shape, keep)) and \
                        shape[keep.index("H")] in (-1, v.sizes["H"]):
                    return _merge_dh(v)
        return _Bad(f"{where}: reshape of axes {ax} to {shape} is not one the converter understands "
                    "(merging direction and hidden, or dropping a direction axis of size 1)")
    if op in ("MatMul", "Gemm"):
        if v.stage != "lstm" or len(node.input) < 2 or node.input[1] not in consts or node.input[0] != v.name_in:
            return _Bad(f"{where}: only a head with constant weights right after the LSTM output is supported")
        w = np.asarray(consts[node.input[1]], np.float32)
        if v.axes and v.axes[-1] == "H" and v.sizes["D"] == 1:
            v = _merge_dh(v)
        if not v.axes or v.axes[-1] != "F":
            return _Bad(f"{where}: multiplies axes {v.axes}; the last axis must be the LSTM features")
        if op == "MatMul":
            if w.ndim != 2 or w.shape[0] != v.sizes["F"]:
                return _Bad(f"{where}: weight of shape {w.shape} for {v.sizes['F']} features")
            head_w, head_b = w.T, np.zeros(w.shape[1], np.float32)
        else:
            if len(v.axes) != 2 or a.get("transA", 0):
                return _Bad(f"{where}: Gemm needs a 2-D input (T, features) without transA")
            wt = w.T if a.get("transB", 0) else w  # [F, O]
            if wt.ndim != 2 or wt.shape[0] != v.sizes["F"]:
                return _Bad(f"{where}: weight of shape {w.shape} for {v.sizes['F']} features")
            head_w = a.get("alpha", 1.0) * wt.T
            head_b = np.zeros(wt.shape[1], np.float32)
            if len(node.input) > 2 and node.input[2]:
                if node.input[2] not in consts:
                    return _Bad(f"{where}: C is not a constant")
                c = np.asarray(consts[node.input[2]], np.float32)
                if c.size not in (1, wt.shape[1]) or (c.ndim == 2 and c.shape[0] != 1) or c.ndim > 2:
                    return _Bad(f"{where}: C of shape {c.shape} is not one bias per output")
                head_b = head_b + a.get("beta", 1.0) * np.broadcast_to(c.reshape(-1), head_b.shape)
        return replace(v, axes=v.axes[:-1] + ("O",), sizes={**v.sizes, "O": head_w.shape[0]},
                       head_w=np.asarray(head_w, np.float32), head_b=np.asarray(head_b, np.float32),
                       stage="head")
    if op == "Add":
        other = node.input[1] if node.input[0] == v.name_in else node.input[0]
        if v.stage != "head" or other not in consts:
            return _Bad(f"{where}: only a constant bias added to the head's MatMul is supported")
        b = np.asarray(consts[other], np.float32)
        n_out = v.head_w.shape[0]
        if b.size not in (1, n_out) or (b.ndim >= 1 and b.shape[-1] not in (1, n_out)) or \
                b.size != 1 and any(d != 1 for d in b.shape[:-1]):
            return _Bad(f"{where}: bias of shape {b.shape} is not one value per head output")
        return replace(v, head_b=(v.head_b + np.broadcast_to(b.reshape(-1), (n_out,))).astype(np.float32))
    if op in _ELEMENTWISE or op == "Softmax":
        if op == "Softmax":
            axis = a.get("axis", -1 if opset >= 13 else 1)
            if axis not in (-1, len(v.axes) - 1):
                return _Bad(f"{where}: softmax over axis {axis}, not the last (features) axis")
        if v.stage == "lstm":  # activation straight on the LSTM output: an identity head, exact
            if v.axes[-1] == "H" and v.sizes["D"] == 1:
                v = _merge_dh(v)
            if v.axes[-1] != "F":
                return _Bad(f"{where}: activation over axes {v.axes}")
            n = v.sizes["F"]
            v = replace(v, axes=v.axes[:-1] + ("O",), sizes={**v.sizes, "O": n}, head_w=np.eye(n, dtype=np.float32),
                        head_b=np.zeros(n, np.float32), stage="head")
        if v.stage != "head":
            return _Bad(f"{where}: an activation is converted only on the LSTM output or after the head, once")
        return replace(v, activation=_ELEMENTWISE.get(op, "softmax"), stage="activation")
    return _Bad(f"{where}: op {op} on the data path is not supported (supported: LSTM, Transpose, Squeeze, "
                "Reshape, Identity, Dropout, Gemm, MatMul, Add, Sigmoid, Tanh, Relu, Softmax)")


def spec_from_onnx(model_or_path) -> ModelSpec:
    """A ModelSpec computing the ONNX graph's output (see the module docstring for what is accepted)."""
    try:
        import onnx  # noqa: F401
        from onnx import numpy_helper
    except ImportError:
        raise ConversionError("reading ONNX models needs the onnx package: pip install onnx") from None
    model = _load(model_or_path)
    graph = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
    consts: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in consts]
    if len(inputs) != 1:
        raise ConversionError(f"the graph must have one input (the sequence), got {[i.name for i in inputs]}; "
                              "weights must be initializers or Constant nodes")
    rank = len(inputs[0].type.tensor_type.shape.dim)
    vals: dict[str, Any] = {inputs[0].name: _Data(axes=tuple(f"in{k}" for k in range(rank)))}
    zeros: set[str] = set()
    _shape_names: set[str] = set()  # values computed from shapes only
    for node in graph.node:
        outs = list(node.output)
        if node.op_type == "Constant":
            from onnx import helper
            a = node.attribute[0]
            value = helper.get_attribute_value(a)
            consts[outs[0]] = numpy_helper.to_array(value) if a.name == "value" else np.asarray(value)
            continue
        ins = [n for n in node.input if n]
        if node.op_type == "LSTM":
            results = _lstm(node, vals.get(node.input[0]), consts, zeros)
            for name, r in zip(outs, results):
                if name:
                    vals[name] = r
            continue
        data = [vals[n] for n in ins if n in vals]
        if not data:
            if node.op_type == "ConstantOfShape" and not all(n in consts for n in ins):
                value = _attrs(node).get("value")
                if value is None or not np.any(numpy_helper.to_array(value)):
                    zeros.update(outs)
                    continue
            if any(n in zeros for n in ins) and node.op_type in _ZERO_KEEPING and \
                    all(n in zeros or n in consts or n in _shape_names for n in ins):
                zeros.update(outs)
                continue
            if all(n in consts for n in ins) and node.domain in ("", "ai.onnx"):
                try:
                    for name, r in zip(outs, _eval_const(node, [consts[n] for n in node.input if n], opset)):
                        consts[name] = r
                    continue
                except Exception:  # noqa: BLE001 - then it is simply not a constant we can use
                    pass
            _shape_names.update(outs)
            continue
        if node.op_type == "Shape":
            _shape_names.update(outs)
            continue
        first = data[0]
        if isinstance(first, _Bad):
            vals.update({o: first for o in outs if o})
            continue
        if len(data) > 1:
            vals.update({o: _Bad(f"{node.op_type} node {_label(node)!r} combines the data with itself") for o in outs})
            continue
        first = replace(first, sizes=dict(first.sizes))
        object.__setattr__(first, "name_in", next(n for n in ins if n in vals))
        vals[outs[0]] = _data_op(node, [first], consts, opset)
        for o in outs[1:]:
            if o:
                vals[o] = _Bad(f"{node.op_type} node {_label(node)!r}: secondary output {o!r}")
    return _pick_output(graph, vals)


def _pick_output(graph, vals: dict) -> ModelSpec:
    outs = [(o.name, vals.get(o.name)) for o in graph.output]
    per_step = [(n, v) for n, v in outs if isinstance(v, _Data) and v.stage != "input" and not v.final_h]
    final = [(n, v) for n, v in outs if isinstance(v, _Data) and v.final_h]
    if len(per_step) > 1:
        raise ConversionError(f"the graph has several per-step outputs {[n for n, _ in per_step]}; a model file "
                              "has one")
    if per_step:
        name, v = per_step[0]
    elif final:
        name, v = max(final, key=lambda nv: len(nv[1].layers))
        log.info("graph output %r is the last LSTM's final state Y_h: the model file gives the per-step "
                 "output Y, whose last step (forward direction; step 0 of the reverse direction) is Y_h", name)
    else:
        bad = [v for _, v in outs if isinstance(v, _Bad)]
        if bad:
            raise ConversionError(bad[0].reason)
        raise ConversionError("no graph output comes from an LSTM of the graph input")
    for other, ov in outs:
        if other != name:
            log.info("graph output %r is not part of the model file's output; ignored", other)
    need = {"T", "O"} if v.head_w is not None else {"T"}
    per_step_axes = need <= set(v.axes) <= {"T", "B", "F", "D", "H", "O"}
    if not per_step_axes and not (v.final_h and set(v.axes) <= {"D", "B", "H"}):
        raise ConversionError(f"the graph output {name!r} has axes {v.axes}: not per-step features")
    return ModelSpec(input_size=v.input_size, hidden_size=v.hidden, layers=[list(c) for c in v.layers],
                     head_w=v.head_w, head_b=v.head_b, head_activation=v.activation)


def convert_onnx(model_or_path, *, dtype: str = "float32", calibration=None, tolerance=None) -> bytes:
    """Convert an ONNX model holding ``LSTM`` node(s) (+ optional head and activation) to model-file bytes.

    ``model_or_path``: a path, the file's bytes, or an ``onnx.ModelProto``. ``dtype``, ``calibration``,
    ``tolerance``: as for ``convert_torch``. Raises ``ConversionError`` naming what cannot be converted
    exactly (peepholes, clip, input_forget, non-default activations, sequence_lens, non-zero initial
    states, reverse-only direction, unknown ops on the data path).
    """
    from lstm_embed.convert import spec_to_bytes

    spec = spec_from_onnx(model_or_path)
    return spec_to_bytes(spec, dtype=dtype, calibration=calibration, tolerance=tolerance)


class OnnxSource:
    """What ``lstm-embed convert model.onnx`` uses in place of a checkpoint (same ``convert`` call)."""

    def __init__(self, path, *, lstm=None, head=None):
        if lstm is not None or head is not None:
            raise ConversionError("--lstm and --head select tensors of a PyTorch checkpoint; an ONNX model's "
                                  "LSTM and head are found by following its graph")
        self.path = path
        self.notes: list[str] = ["verify --against reads PyTorch checkpoints; to check an ONNX conversion, "
                                 "compare Stream.run with onnxruntime on the same inputs (docs/onnx.md)"]
        self.warnings: list[str] = []

    def convert(self, *, head_activation="none", dtype="float32", calibration=None, tolerance=None) -> bytes:
        if head_activation not in (None, "none"):
            raise ConversionError("--head-activation is for PyTorch checkpoints; an ONNX model's activation is "
                                  "read from its graph (Sigmoid, Tanh, Relu or Softmax after the head)")
        return convert_onnx(self.path, dtype=dtype, calibration=calibration, tolerance=tolerance)
