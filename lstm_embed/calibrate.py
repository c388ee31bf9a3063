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
from lstm_embed.gptq import gptq_spec
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


def _model_sequences(spec: ModelSpec, calibration) -> list[np.ndarray]:
    """``_sequences`` of calibration data for ``spec``: refused unless each step has its input_size features."""
    seqs = _sequences(calibration)
    if any(s.shape[1] != spec.input_size for s in seqs):
        got = next(s.shape[1] for s in seqs if s.shape[1] != spec.input_size)
        raise ConversionError(f"calibration data has {got} features per step, the model takes {spec.input_size}")
    return seqs


class _Runner:
    """The calibration data run through ``spec`` with given layer modes, layer by layer.

    The engine runs a model one layer at a time over a sequence (each layer's float32 outputs are the next
    layer's inputs, the head comes after the last layer), so a stack of one-layer models gives the same
    bits as the whole model. Here each (layer, mode) is written and loaded once as a one-layer model, and
    the outputs of layers 0..k in given modes are computed once and shared by every combination that
    starts with those modes: the float32 reference and the one-layer trials share their float32 layers.
    Every layer output is a valid engine input: |h| <= 1, or with a projection <= LSTM_MAX_DIM *
    LSTM_MAX_ABS_WEIGHT = 2^36, far below LSTM_MAX_ABS_INPUT (2^64). Nothing is quantised here."""

    def __init__(self, spec: ModelSpec, seqs: list[np.ndarray]):
        self.spec, self.seqs = spec, seqs
        self.models: dict[tuple[int, str], Model] = {}  # (layer, mode) -> one-layer model
        self.outputs: dict[tuple, list[np.ndarray]] = {(): seqs}  # modes of layers 0..k -> outputs

    def _layer_spec(self, k: int, mode: str) -> ModelSpec:
        """Layer ``k`` of ``spec`` as a model of its own (the head only on the last layer)."""
        spec, last = self.spec, k == len(self.spec.layers) - 1
        width = (spec.proj_size or spec.hidden_size) * spec.num_directions
        return replace(spec, input_size=spec.input_size if k == 0 else width, layers=[spec.layers[k]],
                       head_w=spec.head_w if last else None, head_b=spec.head_b if last else None,
                       head_activation=spec.head_activation if last else "none", layer_dtypes=[mode],
                       int8=None if spec.int8 is None else [spec.int8[k]])

    def _load(self, key: tuple[int, str]) -> Model:
        return Model.from_bytes(write_model(self._layer_spec(*key)))

    def _run_layer(self, key: tuple[int, str], inputs: list[np.ndarray]) -> list[np.ndarray]:
        """The one-layer model ``key`` over every input sequence, each from a zero state. float32 and int8
        layers of a unidirectional model step all sequences together (``step_many``: one pass over the
        weights per step for all of them, the same bits as ``run``); int8-dynamic layers, whose run is
        cheaper than a batched step, and bidirectional models run sequence by sequence."""
        model = self.models[key]
        if key[1] == "int8-dynamic" or self.spec.num_directions != 1 or len(inputs) < 2:
            return [model.stream().run(x) for x in inputs]
        streams = [model.stream() for _ in inputs]
        outs = [np.empty((len(x), model.output_size), dtype=np.float32) for x in inputs]
        for t in range(max(len(x) for x in inputs)):
            active = [i for i, x in enumerate(inputs) if t < len(x)]
            ys = model.step_many([streams[i] for i in active], np.stack([inputs[i][t] for i in active]))
            for row, i in enumerate(active):
                outs[i][t] = ys[row]
        return outs

    def prefetch(self, combinations: list[list[str]]) -> None:
        """Compute several mode combinations: the one-layer models they need are built in threads, then
        layer by layer every new prefix of modes runs in threads (the engine releases the GIL; each
        result is the same whichever thread computes it)."""
        keys = list(dict.fromkeys(tuple(m) for m in combinations))
        needed = list(dict.fromkeys((k, mode) for key in keys for k, mode in enumerate(key)
                                    if (k, mode) not in self.models))
        for key, model in zip(needed, parallel_map(self._load, needed)):
            self.models[key] = model
        for k in range(len(self.spec.layers)):
            prefixes = list(dict.fromkeys(key[:k + 1] for key in keys if key[:k + 1] not in self.outputs))
            runs = parallel_map(lambda prefix: self._run_layer((k, prefix[-1]), self.outputs[prefix[:-1]]),
                                prefixes)
            self.outputs.update(zip(prefixes, runs))

    def __call__(self, modes: list[str]) -> np.ndarray:
        key = tuple(modes)
        if key not in self.outputs:
            self.prefetch([modes])
        return np.concatenate(self.outputs[key])


def _error(out: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    diff = np.abs(out.astype(np.float64) - ref)
    return float(diff.max()), float(diff.mean())


def calibrate(spec: ModelSpec, calibration, dtype: str = "int8", tolerance: float | None = None
              ) -> CalibrationReport:
    """Measure int8 modes on calibration data and choose one per layer.

    Without ``tolerance`` every layer gets ``dtype``. With it, every layer starts at the fastest mode and
    the layer that hurts most is moved to the next more accurate mode (int8-dynamic, int8-a16, int8, float32) until
    the output error is within the tolerance. ``spec`` may already carry its quantised weights
    (``quantize.quantize_spec``): they are measured as they are (layers without are quantised once here).
    A spec without any is quantised here with its int8 values rounded by GPTQ against ``calibration``
    (``gptq.gptq_spec``), as the converter stores them when given calibration data.
    """
    return _calibrate(spec, calibration, dtype, tolerance)[1]


def _calibrate(spec: ModelSpec, calibration, dtype: str, tolerance: float | None
               ) -> tuple[ModelSpec, CalibrationReport]:
    """``calibrate``, also returning ``spec`` with every layer quantised (once)."""
    seqs = _model_sequences(spec, calibration)
    layers = len(spec.layers)
    # every layer quantised once, before any trial: a spec without int8 weights gets the clip search's
    # scales with values rounded by GPTQ against these sequences (gptq.py); weights it carries are kept
    spec = gptq_spec(spec, seqs) if spec.int8 is None else quantize_spec(spec)
    _outputs = _Runner(spec, seqs)
    ladder = (*INT8_MODES, "float32")
    modes = [dtype] * layers if tolerance is None else [ladder[0]] * layers
    one_layer = {mode: [["float32"] * i + [mode] + ["float32"] * (layers - i - 1) for i in range(layers)]
                 for mode in INT8_MODES}
    reference = ["float32"] * layers
    _outputs.prefetch([reference, *(m for trials in one_layer.values() for m in trials), modes])
    ref = _outputs(reference).astype(np.float64)
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
    # each layer quantised once (GPTQ against the calibration data); calibration only chooses among these
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
