"""Choosing and measuring int8 layer modes on calibration data.

The float model and quantised variants run on the same inputs through this library's engine (whose fp32
path matches PyTorch to ~1e-6), so calibration needs no torch. Per layer, the error of each mode is the
output error when only that layer is quantised; the total is with every chosen mode at once.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np

from lstm_embed._lstm import Model
from lstm_embed.errors import ConversionError
from lstm_embed.format import ModelSpec, write_model

log = logging.getLogger("lstm_embed")

# int8 modes, fastest first; float32 is the fallback when neither stays within a tolerance.
INT8_MODES = ("int8-dynamic", "int8")


@dataclass
class CalibrationReport:
    """Errors on the calibration data (max and mean absolute error of the model output)."""

    modes: list[str]  # the chosen mode of each layer
    layer_errors: dict[str, list[tuple[float, float]]]  # mode -> per layer (max, mean), that layer alone
    max_error: float  # all chosen modes together
    mean_error: float
    steps: int
    tolerance: float | None = None

    def __str__(self) -> str:
        lines = [f"calibration on {self.steps} steps; error of the output against float32 (max / mean abs):"]
        for mode, errors in self.layer_errors.items():
            cells = ", ".join(f"layer {i}: {mx:.2e} / {mn:.2e}" for i, (mx, mn) in enumerate(errors))
            lines.append(f"  {mode:<12} one layer at a time: {cells}")
        chosen = ", ".join(f"layer {i}: {m}" for i, m in enumerate(self.modes))
        within = "" if self.tolerance is None else f" (tolerance {self.tolerance:.2e})"
        lines.append(f"  chosen: {chosen}; output error {self.max_error:.2e} / {self.mean_error:.2e}{within}")
        return "\n".join(lines)


def _sequences(calibration) -> list[np.ndarray]:
    """Calibration data as a list of (T, input_size) float32 sequences: accepts (T, I), (N, T, I) or a list."""
    if isinstance(calibration, (list, tuple)):
        seqs = [np.asarray(s, dtype=np.float32) for s in calibration]
    else:
        arr = np.asarray(calibration, dtype=np.float32)
        seqs = list(arr) if arr.ndim == 3 else [arr]
    if not seqs or any(s.ndim != 2 or len(s) == 0 for s in seqs):
        raise ConversionError("calibration data must be (T, input_size), (N, T, input_size) or a list of "
                              "(T, input_size) arrays, with T > 0")
    if not all(np.isfinite(s).all() for s in seqs):
        raise ConversionError("calibration data contains NaN or infinity")
    return seqs


def _outputs(spec: ModelSpec, modes: list[str], seqs: list[np.ndarray]) -> np.ndarray:
    model = Model.from_bytes(write_model(replace(spec, layer_dtypes=list(modes))))
    if model.input_size != seqs[0].shape[1]:
        raise ConversionError(f"calibration data has {seqs[0].shape[1]} features per step, the model takes "
                              f"{model.input_size}")
    return np.concatenate([model.stream().run(s) for s in seqs])


def _error(out: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    diff = np.abs(out.astype(np.float64) - ref)
    return float(diff.max()), float(diff.mean())


def calibrate(spec: ModelSpec, calibration, dtype: str = "int8", tolerance: float | None = None
              ) -> CalibrationReport:
    """Measure int8 modes on calibration data and choose one per layer.

    Without ``tolerance`` every layer gets ``dtype``. With it, every layer starts at the fastest mode and
    the layer that hurts most is moved to the next more accurate mode (int8-dynamic, int8, float32) until
    the output error is within the tolerance.
    """
    seqs = _sequences(calibration)
    layers = len(spec.layers)
    ref = _outputs(spec, ["float32"] * layers, seqs).astype(np.float64)
    alone = {mode: [_error(_outputs(spec, ["float32"] * i + [mode] + ["float32"] * (layers - i - 1), seqs), ref)
                    for i in range(layers)] for mode in INT8_MODES}
    ladder = (*INT8_MODES, "float32")
    modes = [dtype] * layers if tolerance is None else [ladder[0]] * layers
    err = _error(_outputs(spec, modes, seqs), ref)
    while tolerance is not None and err[0] > tolerance:
        movable = [i for i in range(layers) if modes[i] != "float32"]
        if not movable:
            break
        worst = max(movable, key=lambda i: alone[modes[i]][i][0])
        modes[worst] = ladder[ladder.index(modes[worst]) + 1]
        err = _error(_outputs(spec, modes, seqs), ref)
    return CalibrationReport(modes=modes, layer_errors=alone, max_error=err[0], mean_error=err[1],
                             steps=sum(len(s) for s in seqs), tolerance=tolerance)


def quantized_spec(spec: ModelSpec, dtype: str, calibration=None, tolerance: float | None = None) -> ModelSpec:
    """``spec`` with int8 layer modes: ``dtype`` ("int8" or "int8-dynamic") for every layer, or chosen per
    layer within ``tolerance`` on ``calibration`` data. The report goes to the "lstm_embed" logger."""
    if dtype not in INT8_MODES:
        raise ConversionError(f"quantized dtype must be one of {INT8_MODES}, got {dtype!r}")
    if calibration is None:
        if tolerance is not None:
            raise ConversionError("a tolerance needs calibration data to measure the error against")
        log.warning("converted to %s without calibration data: the quantization error was not measured "
                    "(pass calibration inputs to measure it and choose modes per layer)", dtype)
        return replace(spec, layer_dtypes=[dtype] * len(spec.layers))
    report = calibrate(spec, calibration, dtype, tolerance)
    log.info("%s", report)
    if tolerance is not None and report.max_error > tolerance:
        log.warning("even float32 layers miss the tolerance %.2e (error %.2e)", tolerance, report.max_error)
    return replace(spec, layer_dtypes=report.modes)
