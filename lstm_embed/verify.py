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


def inspect_file(path: str | os.PathLike) -> dict:
    """What ``lstm-embed info`` reports, as a dict (also its ``--json`` output).

    ``ok`` tells whether the file opens. If it does: sizes, dtypes, parameter count, file size, checksum
    status and ``state_size`` (bytes of state per stream). If not: ``error`` (the loader's message),
    ``checksum`` and ``header`` (the fixed-header fields as stored, to see what is damaged).
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
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
        "fingerprint": f"0x{model.fingerprint:016x}", "streaming": model.num_directions == 1,
        "kernels": model.isa,
    }


@dataclass
class VerifyReport:
    """Absolute differences between the model file's outputs and PyTorch's over one stream."""

    errors: np.ndarray  # |ours - torch|, (T, O)
    scale: float  # largest |output| of PyTorch, to judge the errors against
    tolerance: float
    mode: str  # "step" (state carried from step to step) or "run" (whole sequence, bidirectional)

    @property
    def max_abs(self) -> float:
        return float(self.errors.max()) if self.errors.size else 0.0

    @property
    def mean_abs(self) -> float:
        return float(self.errors.mean()) if self.errors.size else 0.0

    @property
    def passed(self) -> bool:
        return self.max_abs <= self.tolerance

    def per_output(self) -> list[tuple[int, float, float]]:
        """(output index, max, mean) of the error over time."""
        return [(j, float(col.max()), float(col.mean())) for j, col in enumerate(self.errors.T)]

    def windows(self) -> list[tuple[int, int, float, float]]:
        """(first step, last step + 1, max, mean) over about 10 equal windows of the stream: drift shows
        as errors growing from window to window."""
        out, start = [], 0
        for part in np.array_split(self.errors, min(_WINDOWS, len(self.errors))):
            out.append((start, start + len(part), float(part.max()), float(part.mean())))
            start += len(part)
        return out

    def to_dict(self) -> dict:
        return {
            "steps": len(self.errors), "mode": self.mode, "max_abs_error": self.max_abs,
            "mean_abs_error": self.mean_abs, "max_abs_output": self.scale, "tolerance": self.tolerance,
            "passed": self.passed,
            "per_output": [{"output": j, "max": mx, "mean": mn} for j, mx, mn in self.per_output()],
            "windows": [{"start": a, "stop": b, "max": mx, "mean": mn} for a, b, mx, mn in self.windows()],
        }


def torch_outputs(ckpt: Checkpoint, xs: np.ndarray, head_activation: str = "none") -> np.ndarray:
    """PyTorch's outputs for ``xs`` (T >= 1, I): step by step with the state carried for a unidirectional
    model, one whole-sequence call for a bidirectional one; the head and its activation applied."""
    import torch

    lstm, head = ckpt.torch_modules()
    x = torch.from_numpy(np.ascontiguousarray(xs, dtype=np.float32))
    rows = []
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "LSTM with projections is not supported with oneDNN")
        if isinstance(lstm, torch.nn.LSTMCell):
            state = None
            for t in range(len(x)):
                state = lstm(x[t:t + 1], state)
                rows.append(state[0][0])
        elif lstm.bidirectional:
            rows = list(lstm(x[:, None, :])[0][:, 0])
        else:
            state = None
            for t in range(len(x)):
                y, state = lstm(x[t:t + 1, None, :], state)
                rows.append(y[0, 0])
        y = torch.stack(rows)
        if head is not None:
            y = head(y)
        act = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu,
               "softmax": lambda v: torch.softmax(v, dim=-1), "none": lambda v: v}[head_activation]
        return act(y).numpy()


def model_outputs(model: Model, xs: np.ndarray) -> np.ndarray:
    """The model file's outputs for ``xs``: one ``step`` per row on a fresh stream (``run`` for a
    bidirectional model, which cannot stream)."""
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


def verify(model: Model, ckpt: Checkpoint, xs: np.ndarray, tolerance: float = 1e-5) -> VerifyReport:
    """Run the model file and PyTorch (with the file's head activation) over ``xs`` and compare."""
    check_match(model, ckpt)
    xs = np.ascontiguousarray(xs, dtype=np.float32)
    if xs.ndim != 2 or xs.shape[1] != model.input_size or not len(xs):
        raise VerifyError(f"verification data must have shape (T, {model.input_size}) with T >= 1, "
                          f"got {xs.shape}")
    if not np.isfinite(xs).all():
        raise VerifyError("verification data holds NaN or infinite values")
    want = torch_outputs(ckpt, xs, model.head_activation)
    got = model_outputs(model, xs)
    return VerifyReport(errors=np.abs(got.astype(np.float64) - want), scale=float(np.abs(want).max()),
                        tolerance=tolerance, mode="run" if model.num_directions == 2 else "step")
