"""The integer parameters of an int16x8 (integer-only) model, computed as docs/int16x8.md specifies.

Inputs: the float weights of a ``format.ModelSpec`` (read as float64), its int8 per-row weights (the
per-row scales of the int8 layer dtypes' clip search, ``quantize.quantize_spec``; the values rounded by GPTQ
against the calibration data, ``gptq_spec``) and calibration data. Outputs, carried by the spec as an ``IntParams``:

- per layer ``QPARAMS`` (int32 [5, 4H]: ``M_x, S_x, M_h, S_h, B``), the requantisation of each gate row's
  two products into the Q11.20 pre-activation, plus the bias in Q11.20;
- for a model with a head: the head's int8 per-row weights, their ``HEAD_QPARAMS`` (int32 [3, head]:
  ``M_y, S_y, B_y``);
- ``IO_SCALES`` (float32 [4]): ``input_scale``, ``float32(1 / input_scale)``, ``output_scale``, 0.

All arithmetic is float64 with round-half-even (``np.rint``). The scales are rounded to float32 first
(they are stored as float32) and every multiplier is computed from those stored values, so a reader that
recomputes a multiplier from the file gets the same integer.

The output scale of a head without a bounded activation (none or ReLU) comes from the float model's head
output over the calibration data: the fp32 model (the converter's float32 file of the same spec, head
activation none, i.e. before ReLU) run by this library's C engine (``Stream.run``), which matches PyTorch
to ~1e-6; the max abs of that output / 32767 is the output scale.

A model outside the integer-only scope is refused with a ``ConversionError`` that says why: projection,
bidirectional, a width beyond ``LSTM_INT_MAX_WIDTH`` (512), a multiplier >= 2^30 (it would need a shift
below 1: an input scale that large is a calibration error), a bias beyond 512 (or a head bias beyond 2^29
output steps).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from lstm_embed._lstm import FORMAT
from lstm_embed.errors import ConversionError
from lstm_embed.gptq import gptq_spec
from lstm_embed.quantize import quantize_rows, quantize_spec

# Q11.20: the scale of gate pre-activations, the cell state and (bounded heads) the head's pre-activation.
Z_BITS = 20
# Q0.15: the scale of h (every layer's output and the input of the layer above).
H_SCALE = 2.0 ** -15
INT16_MAX = 32767
# Stored |B| and |B_y| bound (512 in Q11.20).
MAX_ABS_B = 1 << 29
# Shifts are 1 .. 62; M is in [2^30, 2^31) except for multipliers too small to reach it with S = 62.
MAX_SHIFT = 62
BOUNDED = ("sigmoid", "tanh", "softmax")
# The reader's bound on every IO scale (LSTM_MAX_ABS_INPUT): yq * output_scale and x * inv_input_scale stay
# finite in float32.
MAX_SCALE = 2.0 ** 64


@dataclass(frozen=True)
class IntParams:
    """What an int16x8 model stores beyond the int8 layers' tensors (docs/int16x8.md, "File").

    ``qparams``: per layer int32 [5, 4H] rows ``M_x, S_x, M_h, S_h, B``;
    ``head_q``: int8 [head, r4(H)] the head's per-row weights (None without a head);
    ``head_qparams``: int32 [3, head] rows ``M_y, S_y, B_y`` (None without a head);
    ``io_scales``: float32 [4] ``input_scale, inv_input_scale, output_scale, 0``.
    """

    qparams: list[np.ndarray]
    head_q: np.ndarray | None
    head_qparams: np.ndarray | None
    io_scales: np.ndarray

    @property
    def input_scale(self) -> float:
        return float(self.io_scales[0])

    @property
    def output_scale(self) -> float:
        return float(self.io_scales[2])


def multiplier_shift(m: np.ndarray, what: str = "multiplier") -> tuple[np.ndarray, np.ndarray]:
    """``(M, S)`` with ``m ~= M * 2^-S`` for each float64 ``m >= 0``: ``M = round_half_even(m * 2^S)`` in
    ``[2^30, 2^31)`` for the largest ``S <= 62``; a multiplier too small for that with ``S = 62`` keeps
    ``S = 62`` and ``M = round_half_even(m * 2^62)`` (0 for 0). Raises ``ConversionError`` when a
    multiplier would need ``S < 1`` (``m`` about 2^30 or more)."""
    m = np.asarray(m, dtype=np.float64)
    if not np.isfinite(m).all() or (m < 0).any():
        raise ConversionError(f"{what}: multipliers must be finite and >= 0")
    _, e = np.frexp(m)  # m = f * 2^e, f in [0.5, 1): m * 2^(31 - e) in [2^30, 2^31)
    s = np.where(m == 0, MAX_SHIFT, np.minimum(31 - e.astype(np.int64), MAX_SHIFT))
    mm = np.rint(np.ldexp(m, s.astype(np.int32)))
    carry = mm >= 2.0 ** 31  # rounding reached 2^31: one shift less gives exactly 2^30
    s = np.where(carry, s - 1, s)
    mm = np.where(carry, 2.0 ** 30, mm)
    big = s < 1
    if big.any():
        worst = float(m.max())
        raise ConversionError(f"{what}: a multiplier of {worst:.6g} would need a shift below 1 (the integer "
                              "step handles multipliers below 2^30); such a scale is a calibration error: "
                              "check the calibration data's range")
    return mm.astype(np.int64), s


def _round_bias(b: np.ndarray, scale: float, what: str) -> np.ndarray:
    """round_half_even(b / scale) as int64, refused beyond 2^29 in magnitude."""
    q = np.rint(np.asarray(b, dtype=np.float64) / scale)
    if (np.abs(q) > MAX_ABS_B).any():
        worst = float(np.abs(np.asarray(b, dtype=np.float64)).max())
        raise ConversionError(f"{what}: a bias of {worst:.6g} is beyond what the integer step holds "
                              f"(|bias| <= {MAX_ABS_B * scale:.6g}: 2^29 steps of the pre-activation scale)")
    return q.astype(np.int64)


def check_integer_scope(spec: Any) -> None:
    """Refuse a spec that an integer-only model cannot hold (docs/int16x8.md, "Scope")."""
    width = FORMAT["INT_MAX_WIDTH"]
    if spec.proj_size:
        raise ConversionError("int16x8 does not support LSTMs with projection (proj_size > 0): integer-only "
                              "models are unidirectional LSTMs without projection; convert with "
                              "dtype=\"int8\" instead")
    if spec.num_directions != 1:
        raise ConversionError("int16x8 does not support bidirectional LSTMs: a bidirectional model needs the "
                              "whole sequence, which a step-by-step microcontroller model never has; convert "
                              "with dtype=\"int8\" instead")
    head = 0 if spec.head_w is None else spec.head_w.shape[0]
    for name, value in (("input_size rounded up to a multiple of 4", -(-spec.input_size // 4) * 4),
                        ("hidden_size", spec.hidden_size), ("head size", head)):
        if value > width:
            raise ConversionError(f"int16x8 models need {name} <= {width} (every integer sum must stay in "
                                  f"int32), got {value}; convert with dtype=\"int8\" instead")


def _max_abs(seqs: list[np.ndarray]) -> float:
    return max(float(np.abs(s.astype(np.float64)).max()) for s in seqs)


def float_head_outputs(spec: Any, seqs: list[np.ndarray]) -> np.ndarray:
    """The float model's head output before any activation, every calibration step (rows stacked): the
    spec written as float32 with head activation none and run by the C engine, each sequence from a zero
    state."""
    from lstm_embed._lstm import Model
    from lstm_embed.format import write_model

    model = Model.from_bytes(write_model(replace(spec, head_activation="none", layer_dtypes=[], int8=None,
                                                 int16x8=None)))
    return np.concatenate([model.stream().run(s) for s in seqs])


def integer_params(spec: Any, seqs: list[np.ndarray]) -> IntParams:
    """The ``IntParams`` of ``spec`` (which must carry its int8 weights in ``spec.int8``) for the
    calibration sequences ``seqs`` ((T, input_size) float32 arrays)."""
    check_integer_scope(spec)
    max_in = _max_abs(seqs)
    input_scale = np.float32(max_in / INT16_MAX) if max_in > 0 else np.float32(1.0 / INT16_MAX)
    if not (np.isfinite(input_scale) and input_scale > 0):
        raise ConversionError(f"the calibration data's largest magnitude {max_in:.6g} gives no usable float32 "
                              "input scale (max abs / 32767)")
    inv = 1.0 / np.float64(input_scale)
    if not input_scale <= MAX_SCALE or not inv <= MAX_SCALE:
        raise ConversionError(f"the calibration data's largest magnitude {max_in:.6g} is too "
                              f"{'small' if inv > MAX_SCALE else 'large'}: the input scale (max abs / 32767) and "
                              "its inverse must both be at most 2^64; scale the inputs")
    inv_input_scale = np.float32(inv)
    qparams = []
    for k, cells in enumerate(spec.layers):
        cell, q = cells[0], spec.int8[k][0]
        s_w = q.scales.astype(np.float64)  # [2, 4H]
        s_in0 = float(input_scale) if k == 0 else H_SCALE
        where = f"layer {k}"
        mx, sx = multiplier_shift(s_w[0] * s_in0 * 2.0 ** Z_BITS, f"{where}, input weights")
        mh, sh = multiplier_shift(s_w[1] * H_SCALE * 2.0 ** Z_BITS, f"{where}, recurrent weights")
        b = _round_bias(np.asarray(cell.bias, dtype=np.float64), 2.0 ** -Z_BITS, f"{where} (gate bias)")
        qparams.append(np.stack([mx, sx, mh, sh, b]).astype(np.int32))
    head_q = head_qparams = None
    output_scale = np.float32(H_SCALE)
    if spec.head_w is not None:
        q, s_wy = quantize_rows(np.asarray(spec.head_w, dtype=np.float64))
        head_q = np.pad(q, ((0, 0), (0, -q.shape[1] % 4)))
        s_wy = s_wy.astype(np.float64)
        b_y = np.asarray(spec.head_b, dtype=np.float64)
        if spec.head_activation in BOUNDED:
            my, sy = multiplier_shift(s_wy * H_SCALE * 2.0 ** Z_BITS, "head")
            by = _round_bias(b_y, 2.0 ** -Z_BITS, "head")
        else:
            max_out = float(np.abs(float_head_outputs(spec, seqs).astype(np.float64)).max())
            output_scale = np.float32(max_out / INT16_MAX) if max_out > 0 else np.float32(H_SCALE)
            if not (np.isfinite(output_scale) and 0 < output_scale <= MAX_SCALE):
                raise ConversionError(f"the head's largest output {max_out:.6g} on the calibration data gives "
                                      "no usable float32 output scale")
            my, sy = multiplier_shift(s_wy * H_SCALE / np.float64(output_scale), "head")
            by = _round_bias(b_y, float(output_scale), "head")
        head_qparams = np.stack([my, sy, by]).astype(np.int32)
    io = np.array([input_scale, inv_input_scale, output_scale, 0.0], dtype=np.float32)
    return IntParams(qparams=qparams, head_q=head_q, head_qparams=head_qparams, io_scales=io)


def calibration_error(spec: Any, data: bytes, seqs: list[np.ndarray]) -> tuple[float, float, float]:
    """(max, mean, max|output|) of |integer model - float32 model| over the calibration sequences: the
    file ``data`` and the float32 file of ``spec`` (same head activation), both run by the C engine."""
    from lstm_embed._lstm import Model
    from lstm_embed.format import write_model

    fp32 = Model.from_bytes(write_model(replace(spec, layer_dtypes=[], int8=None, int16x8=None)))
    ours = Model.from_bytes(data)
    ref = np.concatenate([fp32.stream().run(s) for s in seqs]).astype(np.float64)
    got = np.concatenate([ours.stream().run(s) for s in seqs]).astype(np.float64)
    diff = np.abs(got - ref)
    return float(diff.max()), float(diff.mean()), float(np.abs(ref).max())


def integer_spec(spec: Any, seqs: list[np.ndarray]) -> Any:
    """``spec`` as an integer-only model: every layer int16x8; its int8 weights with the int8 dtypes'
    per-row scales, their values rounded by GPTQ against the calibration data (``gptq_spec``: int16x8
    always has calibration data, and on the real Silero VAD cell this removes the decision flips that
    round-to-nearest int8 weights cause); its ``IntParams`` from the calibration sequences."""
    check_integer_scope(spec)
    spec = gptq_spec(quantize_spec(spec), seqs)
    return replace(spec, layer_dtypes=["int16x8"] * len(spec.layers), int16x8=integer_params(spec, seqs))
