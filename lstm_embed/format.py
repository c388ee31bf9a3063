"""Writer of the model file (layout: src/lstm_c/lstm_format.h, prose: docs/format.md).

Every offset and code comes from the C header through the binding (``_lstm.FORMAT``), so the reader in
C and this writer cannot drift apart. Needs only numpy.
"""
from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

from lstm_embed._lstm import ACTIVATIONS, FORMAT
from lstm_embed.errors import ConversionError


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
    layer_dtypes: list[str] = field(default_factory=list)  # per layer; default all "float32"

    @property
    def num_directions(self) -> int:
        return len(self.layers[0])


def _f32(a) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32))


def _tensors(spec: ModelSpec) -> list[tuple[int, int, np.ndarray]]:
    """(role, index, 2-D float32 array) for every tensor, in file order."""
    out = []
    for layer, cells in enumerate(spec.layers):
        for direction, cell in enumerate(cells):
            index = layer * 2 + direction
            fused = np.concatenate([_f32(cell.w_ih), _f32(cell.w_hh)], axis=1)
            out.append((FORMAT["ROLE_WEIGHT"], index, fused))
            out.append((FORMAT["ROLE_BIAS"], index, _f32(cell.bias).reshape(-1, 1)))
            if spec.proj_size:
                out.append((FORMAT["ROLE_PROJ"], index, _f32(cell.w_hr)))
    if spec.head_w is not None:
        out.append((FORMAT["ROLE_HEAD_W"], 0, _f32(spec.head_w)))
        out.append((FORMAT["ROLE_HEAD_B"], 0, _f32(spec.head_b).reshape(-1, 1)))
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


def write_model(spec: ModelSpec) -> bytes:
    """Serialise a ModelSpec into model-file bytes (shapes are checked again by the C reader on load)."""
    _check(spec)
    tensors = _tensors(spec)
    align = FORMAT["TENSOR_ALIGN"]
    header_size = FORMAT["HDR_SIZE"] + FORMAT["TENSOR_ENTRY_SIZE"] * len(tensors)
    offsets, pos = [], -(-header_size // align) * align
    for _, _, arr in tensors:
        offsets.append(pos)
        pos += -(-arr.nbytes // align) * align
    file_size = pos
    buf = bytearray(file_size)

    def u32(off: int, v: int) -> None:
        struct.pack_into("<I", buf, off, v)

    def u64(off: int, v: int) -> None:
        struct.pack_into("<Q", buf, off, v)

    digest = hashlib.sha256()
    for (role, index, arr), off in zip(tensors, offsets):
        buf[off:off + arr.nbytes] = arr.astype("<f4").tobytes()
        digest.update(struct.pack("<III", role, index, arr.shape[1]))
        digest.update(arr.astype("<f4").tobytes())
    buf[FORMAT["HDR_MAGIC"]:FORMAT["HDR_MAGIC"] + len(FORMAT["MAGIC"])] = FORMAT["MAGIC"]
    u32(FORMAT["HDR_VERSION"], FORMAT["VERSION"])
    u32(FORMAT["HDR_HEADER_SIZE"], header_size)
    u64(FORMAT["HDR_FILE_SIZE"], file_size)
    u64(FORMAT["HDR_FINGERPRINT"], int.from_bytes(digest.digest()[:8], "little"))
    u32(FORMAT["HDR_INPUT_SIZE"], spec.input_size)
    u32(FORMAT["HDR_HIDDEN_SIZE"], spec.hidden_size)
    u32(FORMAT["HDR_PROJ_SIZE"], spec.proj_size)
    u32(FORMAT["HDR_NUM_LAYERS"], len(spec.layers))
    u32(FORMAT["HDR_NUM_DIRECTIONS"], spec.num_directions)
    u32(FORMAT["HDR_HEAD_SIZE"], 0 if spec.head_w is None else spec.head_w.shape[0])
    u32(FORMAT["HDR_HEAD_ACTIVATION"], ACTIVATIONS.index(spec.head_activation))
    u32(FORMAT["HDR_TENSOR_COUNT"], len(tensors))
    for layer, dtype in enumerate(spec.layer_dtypes or ["float32"] * len(spec.layers)):
        if dtype != "float32":
            raise ConversionError(f"layer dtype {dtype!r} is not supported by this format version")
        buf[FORMAT["HDR_LAYER_DTYPES"] + layer] = FORMAT["LAYER_FP32"]
    for t, ((role, index, arr), off) in enumerate(zip(tensors, offsets)):
        entry = FORMAT["HDR_SIZE"] + t * FORMAT["TENSOR_ENTRY_SIZE"]
        u32(entry + FORMAT["TENSOR_ROLE"], role)
        u32(entry + FORMAT["TENSOR_INDEX"], index)
        u32(entry + FORMAT["TENSOR_DTYPE"], FORMAT["DTYPE_F32"])
        u32(entry + FORMAT["TENSOR_ROWS"], arr.shape[0])
        u32(entry + FORMAT["TENSOR_COLS"], arr.shape[1])
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
