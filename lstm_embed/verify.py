"""Checks of a model file: its integrity and header (``inspect_file``, for ``lstm-embed info``) and its
numbers against the PyTorch weights it came from (``verify``, for ``lstm-embed verify``)."""
from __future__ import annotations

import os
import struct
import warnings
import zlib
from dataclasses import dataclass

import numpy as np

from lstm_embed._lstm import ACTIVATIONS, FORMAT, Model
from lstm_embed.checkpoint import Checkpoint
from lstm_embed.errors import LstmError, ModelFormatError
from lstm_embed.quantize import quantize_rows

_WINDOWS = 10  # time windows of the error report (10% of the stream each)

# Header fields shown for a file that does not open: (label, offset key, struct format).
_HEADER_FIELDS = (
    ("format_version", "HDR_VERSION", "<I"), ("header_size", "HDR_HEADER_SIZE", "<I"),
    ("file_size", "HDR_FILE_SIZE", "<Q"), ("crc32", "HDR_CRC32", "<I"), ("flags", "HDR_FLAGS", "<I"),
    ("fingerprint", "HDR_FINGERPRINT", "<Q"), ("input_size", "HDR_INPUT_SIZE", "<I"),
    ("hidden_size", "HDR_HIDDEN_SIZE", "<I"), ("proj_size", "HDR_PROJ_SIZE", "<I"),
    ("num_layers", "HDR_NUM_LAYERS", "<I"), ("num_directions", "HDR_NUM_DIRECTIONS", "<I"),
    ("head_size", "HDR_HEAD_SIZE", "<I"), ("head_activation", "HDR_HEAD_ACTIVATION", "<I"),
    ("tensor_count", "HDR_TENSOR_COUNT", "<I"),
)


class VerifyError(LstmError, ValueError):
    """The model file and the PyTorch weights do not describe the same network, or the data is unusable."""


def _crc_status(data: bytes) -> str:
    """'OK', or what is wrong with the stored CRC32, computed the way the format defines it."""
    if len(data) < FORMAT["HDR_SIZE"]:
        return f"cannot check: the file has {len(data)} bytes, less than the {FORMAT['HDR_SIZE']}-byte header"
    size = struct.unpack_from("<Q", data, FORMAT["HDR_FILE_SIZE"])[0]
    if size > len(data) or size < FORMAT["HDR_SIZE"]:
        return f"cannot check: the header's file size {size} does not fit the {len(data)} bytes present"
    stored = struct.unpack_from("<I", data, FORMAT["HDR_CRC32"])[0]
    buf = bytearray(data[:size])
    struct.pack_into("<I", buf, FORMAT["HDR_CRC32"], 0)
    computed = zlib.crc32(bytes(buf))
    return "OK" if computed == stored else f"MISMATCH: stored 0x{stored:08x}, computed 0x{computed:08x}"


def _raw_header(data: bytes) -> dict:
    """Every fixed-header field readable from ``data``, as stored (nothing validated)."""
    magic = data[:len(FORMAT["MAGIC"])]
    fields = {"magic": repr(magic) + (" (OK)" if magic == FORMAT["MAGIC"] else f" (expected {FORMAT['MAGIC']!r})")}
    for name, key, fmt in _HEADER_FIELDS:
        off = FORMAT[key]
        if off + struct.calcsize(fmt) <= len(data):
            fields[name] = struct.unpack_from(fmt, data, off)[0]
    for name in ("crc32", "fingerprint"):
        if name in fields:
            fields[name] = f"0x{fields[name]:0{8 if name == 'crc32' else 16}x}"
    if fields.get("head_activation", len(ACTIVATIONS)) < len(ACTIVATIONS):
        fields["head_activation"] = f"{fields['head_activation']} ({ACTIVATIONS[fields['head_activation']]})"
    return fields


def not_a_model(start: bytes, path: str = "") -> str:
    """'' when ``start`` (the first bytes of a file) begins with the model-file magic; otherwise
    "not an lstm_embed model file (...what it looks like...)"."""
    magic = FORMAT["MAGIC"]
    if start.startswith(magic):
        return ""
    if start.startswith(b"PK\x03\x04") or start.startswith(b"\x80"):
        looks = "it looks like a PyTorch checkpoint: convert it with `lstm-embed convert`"
    elif str(path).lower().endswith(".onnx"):
        looks = "it looks like an ONNX model: convert it with `lstm-embed convert`"
    elif start.startswith(b"\x93NUMPY"):
        looks = "it is a NumPy .npy array"
    elif not start:
        looks = "the file is empty"
    else:
        looks = f"it starts with {start[:8]!r}, not the magic {magic!r}"
    return f"not an lstm_embed model file ({looks})"


def inspect_file(path: str | os.PathLike) -> dict:
    """What ``lstm-embed info`` reports, as a dict (also its ``--json`` output).

    ``ok`` tells whether the file opens. If it does: sizes, dtypes, parameter count, file size, checksum
    status, ``state_size`` and ``compact_state_size`` (bytes of state per stream, full and compact). If
    not: ``error`` (the loader's message), ``checksum`` and ``header`` (the fixed-header fields as stored, to see what is damaged); for a file
    that is no model file at all (no magic: a PyTorch checkpoint, ...) ``not_model`` and ``error`` only.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    why = not_a_model(data[:64], path)
    if why:
        return {"path": path, "ok": False, "not_model": True, "error": why, "bytes": len(data)}
    try:
        model = Model.from_bytes(data)
    except ModelFormatError as e:
        return {"path": path, "ok": False, "error": str(e), "bytes": len(data), "checksum": _crc_status(data),
                "header": _raw_header(data)}
    return {
        "path": path, "ok": True, "format_version": model.format_version, "checksum": _crc_status(data),
        "dtype": model.dtype, "layer_dtypes": list(model.layer_dtypes), "input_size": model.input_size,
        "hidden_size": model.hidden_size, "proj_size": model.proj_size, "num_layers": model.num_layers,
        "num_directions": model.num_directions, "head_size": model.head_size,
        "head_activation": model.head_activation, "output_size": model.output_size,
        "param_count": model.param_count, "file_size": model.file_size, "state_size": model.state_size,
        "compact_state_size": model.compact_state_size,
        "fingerprint": f"0x{model.fingerprint:016x}", "streaming": model.num_directions == 1,
        "kernels": model.isa, **_integer_info(model),
    }


def _integer_info(model: Model) -> dict:
    """For an integer-only (int16x8) model: ``integer_only`` and its two scales (docs/int16x8.md)."""
    if "int16x8" not in model.layer_dtypes:
        return {"integer_only": False}
    return {"integer_only": True, "input_scale": float(model.input_scale), "output_scale": float(model.output_scale)}


# Error budgets of the quantized formats, as a fraction of the largest |output| of the float64 reference
# (see docs/cli.md, "verify"). A float32 layer adds nothing beyond float32 rounding; a mixed file gets the
# budget of its loosest layer.
# int16x8 (integer-only, docs/int16x8.md): the int8 weights plus int16 activations, table activations and
# calibrated input/output scales. Measured against float64 on 54 random models (1-3 layers x every head,
# 16 inputs, 32 hidden, 200 steps of N(0,1)) calibrated on the same data: at most 6.8e-3 x max|output|;
# 5e-2 is 7 times that. Data beyond the calibration range saturates the int16 input (or a none/ReLU
# head's output) and may miss it by design: the rule says so.
QUANT_BUDGETS = {"float32": 0.0, "int8": 5e-2, "int8-a16": 5e-2, "int8-dynamic": 1e-1, "int16x8": 5e-2}
FP32_FACTOR = 4.0  # a float32 file may be this many times further from float64 than PyTorch's float32 is
FP32_FLOOR = 1e-6  # ... plus this fraction of the largest |output| (rounding noise of tiny errors)


ROUNDING_FACTOR = 2.0  # a quantized file may also be this many times the error of its int8 weights alone


def default_limit(layer_dtypes, torch_max: float, scale: float, rounding_max: float = 0.0) -> tuple[float, str]:
    """The max abs error (ours vs float64) that passes by default, and the rule that gave it, in words.

    ``torch_max``: PyTorch float32's max abs error against float64; ``rounding_max``: that of PyTorch
    float64 run with the file's int8 weights (the error the weight rounding alone causes on this data)."""
    scale = scale if scale > 0 else 1.0
    fp32 = FP32_FACTOR * torch_max + FP32_FLOOR * scale
    budget = max(QUANT_BUDGETS[d] for d in layer_dtypes)
    if budget == 0.0:
        return fp32, (f"float32: {FP32_FACTOR:g} x PyTorch float32's error + {FP32_FLOOR:g} x max|output|")
    worst = max(layer_dtypes, key=QUANT_BUDGETS.__getitem__)
    beyond = (" (inputs within the calibration range: beyond it the int16 input, and a none/ReLU head's int16 "
              "output, saturate)") if worst == "int16x8" else ""
    return (fp32 + budget * scale + ROUNDING_FACTOR * rounding_max,
            f"{worst}: {budget:g} x max|output| + {ROUNDING_FACTOR:g} x the int8 weights' own error{beyond}")


def rounded_checkpoint(ckpt: Checkpoint, layer_dtypes) -> Checkpoint:
    """The checkpoint with the weights of every quantized layer rounded to int8 as the model file stores
    them (``quantize_rows``: per-row scale, back to float): PyTorch's run of it shows the error the weight
    rounding alone causes, apart from how the file computes."""
    import dataclasses

    state = dict(ckpt.lstm_state)
    for name, value in ckpt.lstm_state.items():
        if not name.startswith(("weight_ih", "weight_hh", "weight_hr")):
            continue
        layer = int(name.split("_l")[1].split("_")[0]) if "_l" in name else 0
        if layer_dtypes[layer] == "float32":
            continue
        w = np.asarray(value.detach().cpu().float().numpy() if hasattr(value, "detach") else value, np.float32)
        q, s = quantize_rows(w)
        state[name] = q.astype(np.float64) * s.astype(np.float64)[:, None]
    return dataclasses.replace(ckpt, lstm_state=state, notes=[], warnings=[])


@dataclass
class VerifyReport:
    """Errors of the model file and of PyTorch float32 against PyTorch float64 (the reference), over N
    sequences of T steps each."""

    errors: np.ndarray  # |ours - float64|, (N, T, O)
    torch_errors: np.ndarray  # |PyTorch float32 - float64|, (N, T, O)
    vs_torch: np.ndarray  # |ours - PyTorch float32|, (N, T, O)
    rounding_max: float | None  # max |PyTorch float64 with the file's int8 weights - float64| (None: float32)
    scale: float  # largest |output| of the float64 reference, to judge the errors against
    limit: float  # largest max abs error that passes
    rule: str  # how ``limit`` was set, in words
    tolerance: float | None  # the --tolerance given, or None (default rule)
    dtype: str
    mode: str  # "step" (state carried from step to step) or "run" (whole sequence, bidirectional)

    @staticmethod
    def _max(a: np.ndarray) -> float:
        return float(a.max()) if a.size else 0.0

    @property
    def sequences(self) -> int:
        return self.errors.shape[0]

    @property
    def steps(self) -> int:
        return self.errors.shape[1]

    @property
    def max_abs(self) -> float:
        return self._max(self.errors)

    @property
    def mean_abs(self) -> float:
        return float(self.errors.mean()) if self.errors.size else 0.0

    @property
    def torch_max_abs(self) -> float:
        return self._max(self.torch_errors)

    @property
    def torch_mean_abs(self) -> float:
        return float(self.torch_errors.mean()) if self.torch_errors.size else 0.0

    @property
    def max_abs_vs_torch(self) -> float:
        return self._max(self.vs_torch)

    @property
    def relative(self) -> float:
        """max abs error / max |output|."""
        return self.max_abs / self.scale if self.scale > 0 else self.max_abs

    @property
    def torch_relative(self) -> float:
        return self.torch_max_abs / self.scale if self.scale > 0 else self.torch_max_abs

    @property
    def passed(self) -> bool:
        return self.max_abs <= self.limit

    def per_output(self) -> list[tuple[int, float, float, float, float]]:
        """(output index, ours max, ours mean, PyTorch fp32 max, PyTorch fp32 mean) over all steps."""
        o = self.errors.shape[2]
        ours, theirs = self.errors.reshape(-1, o), self.torch_errors.reshape(-1, o)
        return [(j, float(ours[:, j].max()), float(ours[:, j].mean()), float(theirs[:, j].max()),
                 float(theirs[:, j].mean())) for j in range(o)]

    def windows(self) -> list[tuple[int, int, float, float, float, float]]:
        """(first step, last step + 1, ours max, ours mean, PyTorch fp32 max, mean) over about 10 equal
        windows of the steps (all sequences together): drift shows as errors growing from window to window."""
        out, start = [], 0
        parts = min(_WINDOWS, self.steps)
        for ours, theirs in zip(np.array_split(self.errors, parts, axis=1),
                                np.array_split(self.torch_errors, parts, axis=1)):
            n = ours.shape[1]
            out.append((start, start + n, float(ours.max()), float(ours.mean()), float(theirs.max()),
                        float(theirs.mean())))
            start += n
        return out

    def to_dict(self) -> dict:
        return {
            "sequences": self.sequences, "steps": self.steps, "mode": self.mode, "dtype": self.dtype,
            "reference": "PyTorch float64",
            "max_abs_error": self.max_abs, "mean_abs_error": self.mean_abs, "relative_error": self.relative,
            "torch_fp32_max_abs_error": self.torch_max_abs, "torch_fp32_mean_abs_error": self.torch_mean_abs,
            "torch_fp32_relative_error": self.torch_relative, "max_abs_error_vs_torch_fp32": self.max_abs_vs_torch,
            "int8_weights_max_abs_error": self.rounding_max,
            "max_abs_output": self.scale, "tolerance": self.tolerance, "limit": self.limit, "rule": self.rule,
            "passed": self.passed,
            "per_output": [{"output": j, "max": mx, "mean": mn, "torch_fp32_max": tx, "torch_fp32_mean": tn}
                           for j, mx, mn, tx, tn in self.per_output()],
            "windows": [{"start": a, "stop": b, "max": mx, "mean": mn, "torch_fp32_max": tx,
                         "torch_fp32_mean": tn} for a, b, mx, mn, tx, tn in self.windows()],
        }


def torch_outputs(ckpt: Checkpoint, xs: np.ndarray, head_activation: str = "none",
                  precision: str = "float32") -> np.ndarray:
    """PyTorch's outputs for ``xs`` ((T, I) or (N, T, I), T >= 1) in ``precision`` ("float32" or
    "float64": a ``.double()`` copy of the modules, inputs and state): step by step with the state carried
    for a unidirectional model, one whole-sequence call for a bidirectional one (the N sequences form the
    batch); the head and its activation applied. Returns float64 of shape (T, O) or (N, T, O)."""
    import torch

    lstm, head = ckpt.torch_modules()
    dt = {"float32": torch.float32, "float64": torch.float64}[precision]
    lstm = lstm.to(dt)
    head = None if head is None else head.to(dt)
    single = xs.ndim == 2
    x = torch.from_numpy(np.ascontiguousarray(xs[None] if single else xs, dtype=np.float32)).to(dt)
    x = x.transpose(0, 1)  # (T, N, I)
    rows = []
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "LSTM with projections is not supported with oneDNN")
        if isinstance(lstm, torch.nn.LSTMCell):
            state = None
            for t in range(len(x)):
                state = lstm(x[t], state)
                rows.append(state[0])
            y = torch.stack(rows)
        elif lstm.bidirectional:
            y = lstm(x)[0]
        else:
            state = None
            for t in range(len(x)):
                out, state = lstm(x[t:t + 1], state)
                rows.append(out[0])
            y = torch.stack(rows)
        if head is not None:
            y = head(y)
        act = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu,
               "softmax": lambda v: torch.softmax(v, dim=-1), "none": lambda v: v}[head_activation]
        y = act(y).transpose(0, 1).double().numpy()  # (N, T, O)
    return y[0] if single else y


def model_outputs(model: Model, xs: np.ndarray) -> np.ndarray:
    """The model file's outputs for ``xs`` ((T, I), or (N, T, I): each sequence on a fresh stream): one
    ``step`` per row (``run`` for a bidirectional model, which cannot stream)."""
    if xs.ndim == 3:
        return np.stack([model_outputs(model, seq) for seq in xs])
    stream = model.stream()
    if model.num_directions == 2:
        return stream.run(xs)
    out = np.empty((len(xs), model.output_size), np.float32)
    for t in range(len(xs)):
        stream.step(xs[t], out=out[t])
    return out


def check_match(model: Model, ckpt: Checkpoint) -> None:
    """Raise ``VerifyError`` unless the model file and the checkpoint's LSTM/head have the same sizes."""
    spec = ckpt.spec()
    theirs = (spec.input_size, spec.hidden_size, spec.proj_size, len(spec.layers), spec.num_directions,
              0 if spec.head_w is None else spec.head_w.shape[0])
    ours = (model.input_size, model.hidden_size, model.proj_size, model.num_layers, model.num_directions,
            model.head_size)
    if ours != theirs:
        names = ("input", "hidden", "proj", "layers", "directions", "head")
        show = lambda v: ", ".join(f"{n} {x}" for n, x in zip(names, v))  # noqa: E731
        hint = " (pass --head PREFIX, or --head none)" if ours[5] != theirs[5] else ""
        raise VerifyError(f"the model file ({show(ours)}) and the LSTM chosen in {ckpt.source} ({show(theirs)}) "
                          f"differ{hint}")


def verify(model: Model, ckpt: Checkpoint, xs: np.ndarray, tolerance: float | None = None) -> VerifyReport:
    """Run the model file, PyTorch float32 and PyTorch float64 (the reference; with the file's head
    activation) over ``xs`` ((T, I) or (N, T, I)) and compare.

    With ``tolerance`` None the verdict follows the file's dtype (``default_limit``); otherwise the max abs
    error against float64 must be at most ``tolerance``.
    """
    check_match(model, ckpt)
    xs = np.asarray(xs)
    if xs.ndim not in (2, 3) or xs.shape[-1] != model.input_size or not xs.shape[-2] or not len(xs):
        raise VerifyError(f"verification data must have shape (T, {model.input_size}) or "
                          f"(N, T, {model.input_size}) with N, T >= 1, got {xs.shape}")
    xs = np.ascontiguousarray(xs, dtype=np.float32)
    if not np.isfinite(xs).all():
        raise VerifyError("verification data holds NaN or infinite values")
    seqs = xs if xs.ndim == 3 else xs[None]
    ref = torch_outputs(ckpt, seqs, model.head_activation, "float64")
    theirs = torch_outputs(ckpt, seqs, model.head_activation, "float32")
    ours = model_outputs(model, seqs).astype(np.float64)
    torch_errors = np.abs(theirs - ref)
    scale = float(np.abs(ref).max())
    rounding = None
    if any(d != "float32" for d in model.layer_dtypes):
        rounded = torch_outputs(rounded_checkpoint(ckpt, model.layer_dtypes), seqs, model.head_activation,
                                "float64")
        rounding = float(np.abs(rounded - ref).max())
    if tolerance is None:
        limit, rule = default_limit(model.layer_dtypes, float(torch_errors.max()), scale, rounding or 0.0)
    else:
        limit, rule = float(tolerance), f"--tolerance {tolerance:g} (max abs error)"
    return VerifyReport(errors=np.abs(ours - ref), torch_errors=torch_errors, vs_torch=np.abs(ours - theirs),
                        rounding_max=rounding,
                        scale=scale, limit=limit, rule=rule, tolerance=tolerance, dtype=model.dtype,
                        mode="run" if model.num_directions == 2 else "step")
