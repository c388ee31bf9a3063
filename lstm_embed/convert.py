"""From PyTorch LSTM weights to a model file.

``spec_from_state_dict`` works on plain arrays (no torch needed): it reads PyTorch's parameter names,
infers every size from the tensor shapes and checks them against each other. ``convert_torch`` takes the
modules themselves; ``lstm_embed.checkpoint`` finds them in checkpoint files. Both end in
``spec_to_bytes``, the one place where the stored dtype is chosen.

Data flow: weights -> ``ModelSpec`` (float) -> quantised once per layer (``quantize.quantize_spec``) ->
calibration chooses each layer's dtype among those quantised layers -> ``format.write_model`` writes.
With ``report=True`` the converters return a ``Conversion`` saying what was done; a quantised dtype
that had to fall back to float32 raises a ``ConversionWarning`` either way.
"""
from __future__ import annotations

import os
import re
import sys
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from lstm_embed._lstm import ACTIVATIONS
from lstm_embed.calibrate import CalibrationReport
from lstm_embed.errors import ConversionError
from lstm_embed.format import CellWeights, ModelSpec, write_model

DTYPES = ("float32", "int8", "int8-dynamic", "int8-a16", "int16x8")
_LAYER_KEY = re.compile(r"^(weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l(\d+)(_reverse)?$")
_CELL_KEYS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


class ConversionWarning(UserWarning):
    """A conversion did not give what was asked, e.g. a quantised dtype fell back to float32 for some
    layers because the calibration tolerance could not be met. The file is valid but bigger or slower."""


@dataclass
class Conversion:
    """What a conversion wrote and why (``report=True`` of ``convert_torch``, ``spec_to_bytes``,
    ``Checkpoint.convert``).

    - ``data``: the model-file bytes (what ``report=False`` returns).
    - ``dtypes``: the dtype each layer got ("float32", "int8", "int8-dynamic", "int8-a16" or "int16x8").
    - ``report``: the calibration measurements (``CalibrationReport``: error per layer and mode, the
      chosen modes, the total error), or None when no calibration data was given (and for int16x8,
      whose calibration sets scales instead: see ``int_scales``).
    - ``int_scales``: for an integer-only (int16x8) model, ``(input_scale, output_scale)``: the real value
      of one step of the int16 input and output (``x = xq * input_scale``, ``y = yq * output_scale``);
      None otherwise.
    - ``int_error``: for an int16x8 model, ``(max, mean, max|output|)`` of its output's absolute error
      against the float32 model over the calibration data; None otherwise.
    - ``warnings``: human-readable problems, e.g. a requested int8 dtype that fell back to float32 (each
      also raised as a ``ConversionWarning``) or int8 weights whose error was not measured.
    """

    data: bytes
    dtypes: list[str]
    report: CalibrationReport | None = None
    warnings: list[str] = field(default_factory=list)
    int_scales: tuple[float, float] | None = None
    int_error: tuple[float, float, float] | None = None

    def __bytes__(self) -> bytes:
        return self.data

    def __str__(self) -> str:
        lines = [f"{len(self.data)} bytes; layer dtypes: {', '.join(self.dtypes)}"]
        if self.report is not None:
            lines.append(str(self.report))
        if self.int_scales is not None:
            lines.append(f"integer-only: input scale {self.int_scales[0]:.6g} (xq = round(x / input_scale), "
                         f"int16), output scale {self.int_scales[1]:.6g} (y = yq * output_scale)")
        if self.int_error is not None:
            mx, mean, top = self.int_error
            lines.append(f"integer-only: error against float32 on the calibration data: max {mx:.2e} / mean "
                         f"{mean:.2e} (max |output| {top:.3g})")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def _warn(message: str) -> None:
    """``warnings.warn`` attributed to the first caller outside the lstm_embed package."""
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level = sys._getframe(1), 2
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, ConversionWarning, stacklevel=level)


def _fallback_message(dtype: str, report: CalibrationReport) -> str:
    """Why the layers of ``report`` left float32 are not ``dtype``, and what to do."""
    layers = report.float_layers
    which = "every layer" if len(layers) == len(report.modes) else \
        f"layer{'s' * (len(layers) > 1)} {', '.join(map(str, layers))} of {len(report.modes)}"
    errors = "; ".join(f"layer {i}: {report.layer_summary(i)}" for i in layers)
    return (f"dtype {dtype!r} was requested, but {which} stayed float32: no int8 mode kept the output "
            f"error on the calibration data within the tolerance {report.tolerance:.2e} (max abs error with "
            f"only that layer quantised: {errors}). "
            "The file is larger and slower than asked. To quantise these layers, raise the tolerance above "
            "the errors shown, or convert with dtype=\"int8\" and no tolerance (every layer int8, error "
            "not bounded).")


def _array(value: Any, name: str) -> np.ndarray:
    """A float32 copy of a weight tensor (torch tensor of any float dtype, bfloat16 included, or array)."""
    if hasattr(value, "detach"):  # a torch tensor, possibly on a GPU or in half precision
        value = value.detach().cpu()
        value = (value.float() if value.is_floating_point() else value).numpy()
    arr = np.asarray(value)
    if arr.dtype.kind != "f":
        raise ConversionError(f"{name} must hold floating-point weights, got dtype {arr.dtype}")
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise ConversionError(f"{name} holds NaN or infinite values (did training diverge?); "
                              "such weights cannot be converted")
    return arr


def recurrent_kind(shapes: Mapping[str, tuple]) -> str | None:
    """Which PyTorch recurrent module a set of parameter names and shapes comes from.

    ``shapes`` maps parameter names without prefix to shapes. Returns "LSTM", "LSTMCell", "GRU",
    "GRUCell", "RNN", "RNNCell", "unknown recurrent" (recurrent names, but the gate count fits none),
    or None when the names are not those of a recurrent module. The gate count is read from
    ``weight_hh``: [gates * H, H] (LSTM 4, GRU 3, RNN 1); an LSTM with projection has ``weight_hr_l0``.
    """
    if "weight_hh_l0" in shapes and "weight_ih_l0" in shapes:
        hh, suffix = shapes["weight_hh_l0"], ""
        if "weight_hr_l0" in shapes:
            return "LSTM"
    elif "weight_hh" in shapes and "weight_ih" in shapes:
        hh, suffix = shapes["weight_hh"], "Cell"
    else:
        return None
    if len(hh) != 2 or not hh[1] or hh[0] % hh[1]:
        return "unknown recurrent"
    kind = {4: "LSTM", 3: "GRU", 1: "RNN"}.get(hh[0] // hh[1])
    return kind + suffix if kind else "unknown recurrent"


def _shape_error(name: str, got, want) -> ConversionError:
    return ConversionError(f"{name} has shape {tuple(got)}, but the sizes read from the other tensors need "
                           f"{tuple(want)}: the tensors do not form one consistent model (edited, or mixed "
                           "from two models?); convert the state_dict of the trained module as it was saved")


def _cell(state: Mapping[str, np.ndarray], suffix: str, in_size: int, hidden: int, proj: int) -> CellWeights:
    """The weights of one layer/direction, shapes checked. `suffix` is '_l0', '_l1_reverse' or ''."""
    hr = proj or hidden
    want = {"weight_ih": (4 * hidden, in_size), "weight_hh": (4 * hidden, hr), "bias_ih": (4 * hidden,),
            "bias_hh": (4 * hidden,)}
    if proj:
        want["weight_hr"] = (proj, hidden)
    got = {}
    for key, shape in want.items():
        name = key + suffix
        if name not in state:
            if key.startswith("bias"):  # nn.LSTM(bias=False)
                got[key] = np.zeros(shape, np.float32)
                continue
            raise ConversionError(f"missing tensor {name!r}")
        got[key] = _array(state[name], name)
        if got[key].shape != shape:
            raise _shape_error(name, got[key].shape, shape)
    return CellWeights(w_ih=got["weight_ih"], w_hh=got["weight_hh"], bias=got["bias_ih"] + got["bias_hh"],
                       w_hr=got.get("weight_hr"))


def spec_from_state_dict(state: Mapping[str, Any], head: Mapping[str, Any] | None = None,
                         head_activation: str = "none") -> ModelSpec:
    """Build a ModelSpec from an ``nn.LSTM`` or ``nn.LSTMCell`` state_dict (keys without prefix) and an
    optional ``nn.Linear`` state_dict (``weight``, ``bias``). Every key must be understood: anything
    else raises ``ConversionError`` naming it, so nothing is silently dropped."""
    keys = set(state)
    kind = recurrent_kind({k: tuple(np.shape(v)) for k, v in state.items()})
    if kind == "unknown recurrent":
        raise ConversionError("weight_hh has a shape that fits no LSTM (expected [4*hidden, hidden]); only "
                              "nn.LSTM and nn.LSTMCell weights can be converted")
    if kind and not kind.startswith("LSTM"):
        raise ConversionError(f"{kind} is not supported: these tensors come from a torch.nn.{kind} "
                              "(weight_hh has the gate rows of that module, not the 4 of an LSTM); "
                              "lstm_embed converts only nn.LSTM and nn.LSTMCell")
    if set(_CELL_KEYS[:2]) <= keys:  # nn.LSTMCell
        unknown = keys - set(_CELL_KEYS)
        w_ih = _array(state["weight_ih"], "weight_ih")
        hidden, in_size, proj, suffixes = w_ih.shape[0] // 4, w_ih.shape[1], 0, [[""]]
    else:
        matches = {k: _LAYER_KEY.match(k) for k in keys}
        unknown = {k for k, m in matches.items() if not m}
        if "weight_ih_l0" not in keys:
            raise ConversionError("no LSTM weights found: expected nn.LSTM keys (weight_ih_l0, ...) or "
                                  f"nn.LSTMCell keys (weight_ih, ...); got {sorted(keys)[:8]}")
        layers = 1 + max(int(m.group(2)) for m in matches.values() if m)
        directions = 2 if any(m and m.group(3) for m in matches.values()) else 1
        w_ih = _array(state["weight_ih_l0"], "weight_ih_l0")
        hidden, in_size = w_ih.shape[0] // 4, w_ih.shape[1]
        proj = _array(state["weight_hr_l0"], "weight_hr_l0").shape[0] if "weight_hr_l0" in keys else 0
        suffixes = [[f"_l{k}", f"_l{k}_reverse"][:directions] for k in range(layers)]
        expected = {f"{key}{s}" for row in suffixes for s in row
                    for key in (*_CELL_KEYS, *(("weight_hr",) if proj else ()))}
        unknown |= keys - expected
    if unknown:
        raise ConversionError(f"unsupported tensors in the LSTM weights: {sorted(unknown)} "
                              "(peepholes, layer norm and other LSTM variants cannot be converted)")
    if w_ih.shape[0] % 4:
        raise ConversionError(f"weight_ih has {w_ih.shape[0]} rows, not a multiple of 4 (gates i, f, g, o)")
    if proj >= hidden:
        raise ConversionError(f"projection size {proj} must be smaller than hidden size {hidden}")
    width = (proj or hidden) * len(suffixes[0])
    cells = [[_cell(state, s, in_size if k == 0 else width, hidden, proj) for s in row]
             for k, row in enumerate(suffixes)]
    spec = ModelSpec(input_size=in_size, hidden_size=hidden, proj_size=proj, layers=cells,
                     head_activation=head_activation)
    if head is not None:
        unknown = set(head) - {"weight", "bias"}
        if unknown or "weight" not in head:
            raise ConversionError(f"the head must be an nn.Linear (weight, bias); got keys {sorted(head)}")
        spec.head_w = _array(head["weight"], "head weight")
        if spec.head_w.ndim != 2 or spec.head_w.shape[1] != width:
            raise ConversionError(f"head weight has shape {spec.head_w.shape}; its input must be the LSTM's "
                                  f"output width {width}")
        rows = spec.head_w.shape[0]
        spec.head_b = _array(head["bias"], "head bias") if "bias" in head else np.zeros(rows, np.float32)
        if spec.head_b.shape != (rows,):
            raise _shape_error("head bias", spec.head_b.shape, (rows,))
    elif head_activation != "none":
        raise ConversionError("head_activation needs a head")
    return spec


def activation_name(head_activation: Any) -> str:
    """Accept a name ("softmax") or a torch activation module (nn.Softmax(dim=-1), nn.Tanh(), ...)."""
    if head_activation is None:
        return "none"
    if isinstance(head_activation, str):
        name = head_activation.lower()
    else:
        name = type(head_activation).__name__.lower()
        if name == "identity":
            name = "none"
        if name == "softmax" and getattr(head_activation, "dim", -1) not in (-1, 1, None):
            raise ConversionError("only a softmax over the output features (dim=-1) can be converted")
    if name not in ACTIVATIONS:
        raise ConversionError(f"head activation must be one of {ACTIVATIONS}, got {head_activation!r}")
    return name


def spec_to_bytes(spec: ModelSpec, dtype: str = "float32", calibration=None, tolerance: float | None = None,
                  *, report: bool = False) -> bytes | Conversion:
    """Model-file bytes of ``spec`` with weights stored as ``dtype``: the one place where every converter
    (``convert_torch``, ``Checkpoint.convert``) checks and applies the numeric format. Quantized dtypes
    are quantised once per layer and, with calibration data, measured and chosen per layer
    (``lstm_embed.calibrate.quantize_and_choose``); the writer then only writes.

    ``report=True`` returns a ``Conversion`` (bytes, per-layer dtypes, calibration report, warnings)
    instead of the bytes. A quantised ``dtype`` that ends up float32 for some layers (tolerance not met)
    warns with ``ConversionWarning`` in both cases.
    """
    if dtype not in DTYPES:
        raise ConversionError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    calibration_report, notes = None, []
    if dtype == "int16x8":
        from lstm_embed.calibrate import _sequences
        from lstm_embed.quantize_int import calibration_error

        spec = _integer_spec(spec, calibration, tolerance)
        data = write_model(spec)
        if not report:
            return data
        scales = (spec.int16x8.input_scale, spec.int16x8.output_scale)
        return Conversion(data=data, dtypes=spec.dtypes, warnings=notes, int_scales=scales,
                          int_error=calibration_error(spec, data, _sequences(calibration)))
    if dtype == "float32":
        if calibration is not None or tolerance is not None:
            raise ConversionError("calibration data and tolerance are only used for quantized dtypes")
    else:
        from lstm_embed.calibrate import quantize_and_choose

        spec, calibration_report = quantize_and_choose(spec, dtype, calibration, tolerance)
        if calibration_report is None:
            notes.append(f"converted to {dtype} without calibration data: the quantization error was not "
                         "measured (pass calibration inputs to measure it and choose modes per layer)")
        elif calibration_report.float_layers:
            message = _fallback_message(dtype, calibration_report)
            _warn(message)
            notes.append(message)
    data = write_model(spec)
    if not report:
        return data
    return Conversion(data=data, dtypes=spec.dtypes, report=calibration_report, warnings=notes)


def _integer_spec(spec: ModelSpec, calibration, tolerance: float | None) -> ModelSpec:
    """``spec`` as an integer-only int16x8 model (``quantize_int.integer_spec``), after the checks that
    only this dtype has: calibration data required, no tolerance (the per-layer ladder never mixes
    int16x8 with other dtypes)."""
    from lstm_embed.calibrate import _sequences
    from lstm_embed.quantize_int import check_integer_scope, integer_spec

    check_integer_scope(spec)
    if tolerance is not None:
        raise ConversionError("dtype \"int16x8\" takes no tolerance: an integer-only model is int16x8 in every "
                              "layer (the tolerance ladder chooses among int8-dynamic, int8-a16, int8 and "
                              "float32 per layer); leave the tolerance out")
    if calibration is None:
        raise ConversionError("dtype \"int16x8\" needs calibration data: pass calibration= real inputs, "
                              "(T, input_size) or (N, T, input_size) (command line: --calibration X.npy). "
                              "They set the int16 input scale (max abs input / 32767) and, for a head "
                              "without sigmoid, tanh or softmax, the output scale; the integer step has "
                              "no other way to know the range of its input")
    seqs = _sequences(calibration)
    if seqs[0].shape[1] != spec.input_size:
        raise ConversionError(f"calibration data has {seqs[0].shape[1]} features per step, the model takes "
                              f"{spec.input_size}")
    return integer_spec(spec, seqs)


def convert_torch(lstm, *, head=None, head_activation=None, dtype: str = "float32", calibration=None,
                  tolerance: float | None = None, report: bool = False) -> bytes | Conversion:
    """Convert ``nn.LSTM`` / ``nn.LSTMCell`` (+ optional ``nn.Linear`` head) to model-file bytes.

    ``head_activation``: None, "sigmoid", "tanh", "relu", "softmax", or the matching torch module.
    All layers, both directions, ``proj_size`` and ``bias=False`` are handled; ``dropout`` is an
    inference no-op.

    ``dtype``: "float32"; "int8" (int8 weights, one scale per row, float activations: the accurate
    int8 mode); "int8-dynamic" (activations quantized per step too: the fastest); or "int8-a16"
    (the same int8 weights times activations quantized per step to int16: near int8's accuracy at close
    to int8-dynamic's speed); or "int16x8" (integer-only, docs/int16x8.md: int8 weights, int16
    activations, no floating point in the step, for microcontrollers without an FPU; every layer, no
    per-layer mix, so ``tolerance`` does not apply to it; ``calibration`` is required: it sets the input
    scale and, for a head without a bounded activation, the output scale, and GPTQ rounds the int8
    weights against the float model's activations on it; unidirectional, no
    projection, widths up to 512). ``calibration``:
    real inputs, (T, input_size) or (N, T, input_size), on which the quantization error is measured and
    logged to the "lstm_embed" logger; with ``tolerance`` (max abs output error) each layer gets the
    fastest mode that keeps the output within it (int8-dynamic, int8-a16, int8, then float32); layers left
    float32 that way raise a ``ConversionWarning``.

    ``report=True`` returns a ``Conversion`` (``.data`` bytes, ``.dtypes`` per layer, ``.report`` the
    ``CalibrationReport`` or None, ``.warnings``) instead of the bytes.
    """
    import torch.nn as nn

    if not isinstance(lstm, (nn.LSTM, nn.LSTMCell)):
        raise ConversionError(f"expected torch.nn.LSTM or torch.nn.LSTMCell, got {type(lstm).__name__}")
    if head is not None and not isinstance(head, nn.Linear):
        raise ConversionError(f"head must be a torch.nn.Linear, got {type(head).__name__}")
    spec = spec_from_state_dict(lstm.state_dict(), None if head is None else head.state_dict(),
                                activation_name(head_activation))
    return spec_to_bytes(spec, dtype, calibration, tolerance, report=report)
