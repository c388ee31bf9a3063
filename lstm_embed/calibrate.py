"""Choosing and measuring int8 layer modes on calibration data.

The float model and quantised variants run on the same inputs through this library's engine (whose fp32
path matches PyTorch to ~1e-6), so calibration needs no torch. Per layer, the error of each mode is the
output error when only that layer is quantised; the total is with every chosen mode at once.
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np

from lstm_embed._lstm import Model
from lstm_embed.errors import ConversionError
from lstm_embed.format import ModelSpec, write_model
from lstm_embed.quantize import parallel_map, quantize_spec

log = logging.getLogger("lstm_embed")

# int8 modes, fastest first; float32 is the fallback when none stays within a tolerance.
INT8_MODES = ("int8-dynamic", "int8-a16", "int8")


@dataclass
class CalibrationReport:
    """What calibration measured and chose. Errors are of the model output against the float32 model on
    the calibration data, as (max, mean) absolute error; ``str(report)`` is a readable table.

    Fields:

    - ``modes``: the dtype chosen for each layer ("int8-dynamic", "int8" or "float32").
    - ``layer_errors``: for each int8 mode, per layer the (max, mean) error when only that layer is
      quantised in that mode (every other layer float32): which layers are sensitive, and to what.
    - ``max_error`` / ``mean_error``: the error of the model as written (all chosen modes at once).
    - ``steps``: calibration timesteps measured (all sequences together).
    - ``tolerance``: the max error asked for, or None (then every layer got ``dtype``).
    - ``dtype``: the dtype that was requested ("int8" or "int8-dynamic"), or None when unknown.
    """

    modes: list[str]
    layer_errors: dict[str, list[tuple[float, float]]]
    max_error: float
    mean_error: float
    steps: int
    tolerance: float | None = None
    dtype: str | None = None

    @property
    def float_layers(self) -> list[int]:
        """Indices of the layers left float32 (none unless a tolerance could not be met quantised)."""
        return [i for i, mode in enumerate(self.modes) if mode == "float32"]

    @property
    def within_tolerance(self) -> bool | None:
        """Whether the written model's error is within ``tolerance`` (None without a tolerance)."""
        return None if self.tolerance is None else self.max_error <= self.tolerance

    def layer_summary(self, layer: int) -> str:
        """One layer's max abs error in each int8 mode, that layer alone: "int8-dynamic 3.1e-02, int8 4.0e-03"."""
        return ", ".join(f"{mode} {errors[layer][0]:.2e}" for mode, errors in self.layer_errors.items())

    def as_dict(self) -> dict:
        """The report as plain JSON-ready values."""
        return {"modes": list(self.modes), "dtype": self.dtype, "tolerance": self.tolerance, "steps": self.steps,
                "max_error": self.max_error, "mean_error": self.mean_error,
                "layer_errors": {mode: [{"max": mx, "mean": mn} for mx, mn in errors]
                                 for mode, errors in self.layer_errors.items()}}

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


class _Runner:
    """Runs the calibration data through ``spec`` with given layer modes, each combination once. The spec
    carries its quantised weights, so a trial build only lays out bytes; nothing is quantised here."""

    def __init__(self, spec: ModelSpec, seqs: list[np.ndarray]):
        self.spec, self.seqs, self.cache = spec, seqs, {}

    def _run(self, modes: tuple) -> np.ndarray:
        model = Model.from_bytes(write_model(replace(self.spec, layer_dtypes=list(modes))))
        return np.concatenate([model.stream().run(s) for s in self.seqs])

    def prefetch(self, combinations: list[list[str]]) -> None:
        """Run several mode combinations at once, in threads (the engine releases the GIL; each result is
        the same whichever thread computes it)."""
        keys = list(dict.fromkeys(tuple(m) for m in combinations if tuple(m) not in self.cache))
        for key, out in zip(keys, parallel_map(self._run, keys)):
            self.cache[key] = out

    def __call__(self, modes: list[str]) -> np.ndarray:
        key = tuple(modes)
        if key not in self.cache:
            self.cache[key] = self._run(key)
        return self.cache[key]


def _error(out: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    diff = np.abs(out.astype(np.float64) - ref)
    return float(diff.max()), float(diff.mean())


def calibrate(spec: ModelSpec, calibration, dtype: str = "int8", tolerance: float | None = None
              ) -> CalibrationReport:
    """Measure int8 modes on calibration data and choose one per layer.

    Without ``tolerance`` every layer gets ``dtype``. With it, every layer starts at the fastest mode and
    the layer that hurts most is moved to the next more accurate mode (int8-dynamic, int8-a16, int8, float32) until
    the output error is within the tolerance. ``spec`` may already carry its quantised weights
    (``quantize.quantize_spec``); layers that do not are quantised once here.
    """
    return _calibrate(spec, calibration, dtype, tolerance)[1]


def _calibrate(spec: ModelSpec, calibration, dtype: str, tolerance: float | None
               ) -> tuple[ModelSpec, CalibrationReport]:
    """``calibrate``, also returning ``spec`` with every layer quantised (once)."""
    seqs = _sequences(calibration)
    if seqs[0].shape[1] != spec.input_size:
        raise ConversionError(f"calibration data has {seqs[0].shape[1]} features per step, the model takes "
                              f"{spec.input_size}")
    layers = len(spec.layers)
    _outputs = _Runner(spec, seqs)
    # the float32 reference needs no int8 weights: it runs while the layers are quantised
    with ThreadPoolExecutor(max_workers=1) as pool:
        reference = pool.submit(_outputs, ["float32"] * layers)
        spec = _outputs.spec = quantize_spec(spec)  # every layer quantised once, before any int8 trial
        ref = reference.result().astype(np.float64)
    ladder = (*INT8_MODES, "float32")
    modes = [dtype] * layers if tolerance is None else [ladder[0]] * layers
    one_layer = {mode: [["float32"] * i + [mode] + ["float32"] * (layers - i - 1) for i in range(layers)]
                 for mode in INT8_MODES}
    _outputs.prefetch([*(m for trials in one_layer.values() for m in trials), modes])
    alone = {mode: [_error(_outputs(trial), ref) for trial in trials] for mode, trials in one_layer.items()}
    err = _error(_outputs(modes), ref)
    while tolerance is not None and err[0] > tolerance:
        movable = [i for i in range(layers) if modes[i] != "float32"]
        if not movable:
            break
        worst = max(movable, key=lambda i: alone[modes[i]][i][0])
        modes[worst] = ladder[ladder.index(modes[worst]) + 1]
        err = _error(_outputs(modes), ref)
    return spec, CalibrationReport(modes=modes, layer_errors=alone, max_error=err[0], mean_error=err[1],
                                   steps=sum(len(s) for s in seqs), tolerance=tolerance, dtype=dtype)


def quantize_and_choose(spec: ModelSpec, dtype: str, calibration=None, tolerance: float | None = None
                        ) -> tuple[ModelSpec, CalibrationReport | None]:
    """``spec`` quantised (each layer once) with its int8 layer modes, and the calibration report (None
    without calibration data). ``dtype`` ("int8" or "int8-dynamic") goes to every layer, or with
    ``tolerance`` modes are chosen per layer on ``calibration`` data. The report goes to the
    "lstm_embed" logger too."""
    if dtype not in INT8_MODES:
        raise ConversionError(f"quantized dtype must be one of {INT8_MODES}, got {dtype!r}")
    if calibration is None:
        if tolerance is not None:
            raise ConversionError("a tolerance needs calibration data to measure the error against")
        log.warning("converted to %s without calibration data: the quantization error was not measured "
                    "(pass calibration inputs to measure it and choose modes per layer)", dtype)
        return replace(quantize_spec(spec), layer_dtypes=[dtype] * len(spec.layers)), None
    # each layer quantised once; calibration only chooses among these quantised layers
    spec, report = _calibrate(spec, calibration, dtype, tolerance)
    log.info("%s", report)
    if tolerance is not None and report.max_error > tolerance:
        log.warning("even float32 layers miss the tolerance %.2e (error %.2e)", tolerance, report.max_error)
    return replace(spec, layer_dtypes=report.modes), report


def quantized_spec(spec: ModelSpec, dtype: str, calibration=None, tolerance: float | None = None) -> ModelSpec:
    """``spec`` with int8 layer modes: ``dtype`` ("int8" or "int8-dynamic") for every layer, or chosen per
    layer within ``tolerance`` on ``calibration`` data. The report goes to the "lstm_embed" logger; the
    returned spec carries its quantised weights (see ``quantize_and_choose``)."""
    return quantize_and_choose(spec, dtype, calibration, tolerance)[0]
