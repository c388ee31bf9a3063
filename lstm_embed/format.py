"""Writer of the model file (layout: src/lstm_c/lstm_format.h, prose: docs/format.md).

Every offset and code comes from the C header through the binding (``_lstm.FORMAT``), so the reader in
C and this writer cannot drift apart. Needs only numpy.

The writer only writes: int8 layers are taken from the already-quantised weights the spec carries
(``ModelSpec.int8``, filled by ``lstm_embed.quantize.quantize_spec``). A spec built by hand whose int8
layers carry none is quantised once on entry, for callers that write a float spec with int8 dtypes.
"""
from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

from lstm_embed._lstm import ACTIVATIONS, FORMAT, LAYER_DTYPES
from lstm_embed.errors import ConversionError
from lstm_embed.quantize import Int8Cell, blocked, quantize_spec
from lstm_embed.quantize_int import IntParams


@dataclass
class CellWeights:
    """One direction of one layer, in PyTorch's layout and gate order (i, f, g, o)."""

    w_ih: np.ndarray  # [4H, in]
    w_hh: np.ndarray  # [4H, Hr]
    bias: np.ndarray  # [4H]: b_ih + b_hh
    w_hr: np.ndarray | None = None  # [P, H] for LSTMP


@dataclass
class ModelSpec:
    """Everything a model file holds, as float arrays."""

    input_size: int
    hidden_size: int
    layers: list[list[CellWeights]]  # [layer][direction]
    proj_size: int = 0
    head_w: np.ndarray | None = None  # [head, Hr * directions]
    head_b: np.ndarray | None = None  # [head]
    head_activation: str = "none"
    layer_dtypes: list[str] = field(default_factory=list)  # per layer, from LAYER_DTYPES; default float32
    # per layer [direction] the quantised weights (``quantize.quantize_spec``), None where not quantised;
    # both int8 dtypes store these same weights
    int8: list[list[Int8Cell] | None] | None = field(default=None, repr=False)
    # an integer-only model (every layer "int16x8"): its integer parameters (``quantize_int.integer_spec``)
    int16x8: IntParams | None = field(default=None, repr=False)

    @property
    def num_directions(self) -> int:
        return len(self.layers[0])

    @property
    def dtypes(self) -> list[str]:
        """The dtype of every layer."""
        return list(self.layer_dtypes) or ["float32"] * len(self.layers)


def _f32(a) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32))


@dataclass
class _Tensor:
    role: int
    index: int
    dtype: int
    rows: int
    cols: int
    data: bytes


def _float(role: str, index: int, a) -> _Tensor:
    a = _f32(a)
    a2 = a.reshape(a.shape[0], -1) if a.ndim != 1 else a.reshape(-1, 1)
    return _Tensor(FORMAT[role], index, FORMAT["DTYPE_F32"], a2.shape[0], a2.shape[1], a2.astype("<f4").tobytes())


def _panels(role: str, index: int, a) -> _Tensor:
    """A [rows, cols] fp32 matrix as packed panels (F32_PANELS in lstm_format.h): 16 rows per panel, each
    panel column after column, rows past `rows` zero."""
    a = _f32(a)
    rows, cols = a.shape
    panels = np.zeros((-(-rows // 16) * 16, cols), dtype="<f4")
    panels[:rows] = a
    data = panels.reshape(-1, 16, cols).transpose(0, 2, 1).tobytes()
    return _Tensor(FORMAT[role], index, FORMAT["DTYPE_F32_PANELS"], rows, cols, data)


def _int8_tensors(index: int, q: Int8Cell) -> list[_Tensor]:
    """An int8 layer: blocked [W_ih | W_hh] with per-row scales of each part, their row sums, projection."""
    out = [
        _Tensor(FORMAT["ROLE_WEIGHT"], index, FORMAT["DTYPE_I8_BLOCKED"], q.weight.shape[0], q.weight.shape[1],
                blocked(q.weight)),
        _float("ROLE_W_SCALE", index, q.scales),
        _Tensor(FORMAT["ROLE_W_ROWSUM"], index, FORMAT["DTYPE_I32"], 2, q.weight.shape[0],
                np.asarray(q.rowsums, dtype="<i4").tobytes()),
    ]
    if q.proj is not None:
        out.append(_Tensor(FORMAT["ROLE_PROJ"], index, FORMAT["DTYPE_I8_BLOCKED"], q.proj.shape[0],
                           q.proj.shape[1], blocked(q.proj)))
        out.append(_float("ROLE_PROJ_SCALE", index, q.proj_scale))
    return out


def _int32(role: str, index: int, a) -> _Tensor:
    a = np.ascontiguousarray(np.asarray(a, dtype="<i4"))
    return _Tensor(FORMAT[role], index, FORMAT["DTYPE_I32"], a.shape[0], a.shape[1], a.tobytes())


def _tensors(spec: ModelSpec) -> list[_Tensor]:
    """Every tensor of the file, in file order."""
    out = []
    ints = spec.int16x8
    for layer, cells in enumerate(spec.layers):
        for direction, cell in enumerate(cells):
            index = layer * 2 + direction
            out.append(_float("ROLE_BIAS", index, cell.bias))
            if spec.dtypes[layer] != "float32":
                out += _int8_tensors(index, spec.int8[layer][direction])
                if spec.dtypes[layer] == "int16x8":
                    out.append(_int32("ROLE_QPARAMS", index, ints.qparams[layer]))
                continue
            out.append(_panels("ROLE_WEIGHT", index, np.concatenate([_f32(cell.w_ih), _f32(cell.w_hh)], axis=1)))
            if spec.proj_size:
                out.append(_panels("ROLE_PROJ", index, cell.w_hr))
    if spec.head_w is not None and ints is not None:
        q = ints.head_q
        out.append(_Tensor(FORMAT["ROLE_HEAD_W"], 0, FORMAT["DTYPE_I8_BLOCKED"], q.shape[0], q.shape[1], blocked(q)))
        out.append(_float("ROLE_HEAD_B", 0, spec.head_b))
        out.append(_int32("ROLE_HEAD_QPARAMS", 0, ints.head_qparams))
    elif spec.head_w is not None:
        out.append(_float("ROLE_HEAD_W", 0, spec.head_w))
        out.append(_float("ROLE_HEAD_B", 0, spec.head_b))
    if ints is not None:
        out.append(_float("ROLE_IO_SCALES", 0, np.asarray(ints.io_scales, dtype=np.float32).reshape(1, -1)))
    return out


def _check(spec: ModelSpec) -> None:
    if not spec.layers or len(spec.layers) > FORMAT["MAX_LAYERS"]:
        raise ConversionError(f"a model needs 1 to {FORMAT['MAX_LAYERS']} layers, got {len(spec.layers)}")
    if any(len(cells) != spec.num_directions for cells in spec.layers) or spec.num_directions not in (1, 2):
        raise ConversionError("every layer needs the same number of directions (1 or 2)")
    for name in ("input_size", "hidden_size"):
        if not 1 <= getattr(spec, name) <= FORMAT["MAX_DIM"]:
            raise ConversionError(f"{name} must be 1..{FORMAT['MAX_DIM']}, got {getattr(spec, name)}")
    if spec.head_activation not in ACTIVATIONS:
        raise ConversionError(f"head activation must be one of {ACTIVATIONS}, got {spec.head_activation!r}")
    if spec.head_w is None and spec.head_activation != "none":
        raise ConversionError("a head activation needs a head")
    if len(spec.dtypes) != len(spec.layers) or not set(spec.dtypes) <= set(LAYER_DTYPES):
        raise ConversionError(f"need one layer dtype per layer from {LAYER_DTYPES}, got {spec.dtypes}")
    if spec.int8 is not None and (len(spec.int8) != len(spec.layers) or any(
            q is not None and len(q) != len(cells) for q, cells in zip(spec.int8, spec.layers))):
        raise ConversionError("the quantised weights (ModelSpec.int8) do not match the layers of the spec")
    integer = [dtype == "int16x8" for dtype in spec.dtypes]
    if any(integer) and not all(integer):
        raise ConversionError(f"int16x8 is for every layer or none (an integer-only model), got {spec.dtypes}")
    if all(integer) and spec.int16x8 is None:
        raise ConversionError("int16x8 layers need their integer parameters (ModelSpec.int16x8): convert with "
                              "dtype=\"int16x8\" and calibration data (lstm_embed.quantize_int.integer_spec)")
    if spec.int16x8 is not None and not all(integer):
        raise ConversionError("integer parameters (ModelSpec.int16x8) belong to an all-int16x8 model")


def write_model(spec: ModelSpec) -> bytes:
    """Serialise a ModelSpec into model-file bytes (shapes are checked again by the C reader on load)."""
    _check(spec)
    int8_layers = [k for k, dtype in enumerate(spec.dtypes) if dtype != "float32"]
    if int8_layers and (spec.int8 is None or any(spec.int8[k] is None for k in int8_layers)):
        spec = quantize_spec(spec, int8_layers)  # a hand-built spec: quantised here, once
    tensors = _tensors(spec)
    align = FORMAT["TENSOR_ALIGN"]
    header_size = FORMAT["HDR_SIZE"] + FORMAT["TENSOR_ENTRY_SIZE"] * len(tensors)
    offsets, pos = [], -(-header_size // align) * align
    for t in tensors:
        offsets.append(pos)
        pos += -(-len(t.data) // align) * align
    buf = bytearray(pos)

    def u32(off: int, v: int) -> None:
        struct.pack_into("<I", buf, off, v)

    def u64(off: int, v: int) -> None:
        struct.pack_into("<Q", buf, off, v)

    digest = hashlib.sha256()
    for t, off in zip(tensors, offsets):
        buf[off:off + len(t.data)] = t.data
        digest.update(struct.pack("<IIIII", t.role, t.index, t.dtype, t.rows, t.cols))
        digest.update(t.data)
    buf[FORMAT["HDR_MAGIC"]:FORMAT["HDR_MAGIC"] + len(FORMAT["MAGIC"])] = FORMAT["MAGIC"]
    u32(FORMAT["HDR_VERSION"], FORMAT["VERSION"])
    u32(FORMAT["HDR_HEADER_SIZE"], header_size)
    u64(FORMAT["HDR_FILE_SIZE"], len(buf))
    u64(FORMAT["HDR_FINGERPRINT"], int.from_bytes(digest.digest()[:8], "little"))
    u32(FORMAT["HDR_INPUT_SIZE"], spec.input_size)
    u32(FORMAT["HDR_HIDDEN_SIZE"], spec.hidden_size)
    u32(FORMAT["HDR_PROJ_SIZE"], spec.proj_size)
    u32(FORMAT["HDR_NUM_LAYERS"], len(spec.layers))
    u32(FORMAT["HDR_NUM_DIRECTIONS"], spec.num_directions)
    u32(FORMAT["HDR_HEAD_SIZE"], 0 if spec.head_w is None else spec.head_w.shape[0])
    u32(FORMAT["HDR_HEAD_ACTIVATION"], ACTIVATIONS.index(spec.head_activation))
    u32(FORMAT["HDR_TENSOR_COUNT"], len(tensors))
    for layer, dtype in enumerate(spec.dtypes):
        buf[FORMAT["HDR_LAYER_DTYPES"] + layer] = LAYER_DTYPES.index(dtype)
    for i, (t, off) in enumerate(zip(tensors, offsets)):
        entry = FORMAT["HDR_SIZE"] + i * FORMAT["TENSOR_ENTRY_SIZE"]
        u32(entry + FORMAT["TENSOR_ROLE"], t.role)
        u32(entry + FORMAT["TENSOR_INDEX"], t.index)
        u32(entry + FORMAT["TENSOR_DTYPE"], t.dtype)
        u32(entry + FORMAT["TENSOR_ROWS"], t.rows)
        u32(entry + FORMAT["TENSOR_COLS"], t.cols)
        u64(entry + FORMAT["TENSOR_OFFSET"], off)
    u32(FORMAT["HDR_CRC32"], zlib.crc32(bytes(buf)))  # the CRC field is still zero here
    return bytes(buf)


def crc_fixed(data: bytes | bytearray) -> bytes:
    """``data`` with its CRC32 field recomputed: for tests that alter a field and want to reach the
    field checks behind the checksum."""
    buf = bytearray(data)
    struct.pack_into("<I", buf, FORMAT["HDR_CRC32"], 0)
    size = struct.unpack_from("<Q", buf, FORMAT["HDR_FILE_SIZE"])[0]
    struct.pack_into("<I", buf, FORMAT["HDR_CRC32"], zlib.crc32(bytes(buf[:size])))
    return bytes(buf)
