"""An independent reference of the int16x8 integer step (docs/int16x8.md), for the tests.

Written from the specification only: it parses a model file's bytes itself (the fixed header, the tensor
table, the I8_BLOCKED / I32 / F32 layouts of docs/format.md and lstm_format.h, with the offsets spelled out
here) and steps the model in NumPy int64 arithmetic. It imports nothing of lstm_embed, so a shared
mistake of the converter, the writer and the C core cannot hide here.

    m = IntModel(data)            # model-file bytes of an all-int16x8 model
    s = m.stream()
    yq = s.step_int(xq)           # int16 in and out, as lstm_step_int
    y = s.step(x)                 # float32 in and out, as lstm_step on an integer model
    s.h, s.c                      # the integer state: per layer h (Q0.15) and c (Q11.20)
    s.gates                       # per layer i, f, g, o of the last step (Q0.15)
"""
from __future__ import annotations

import struct

import numpy as np

# --- file layout (lstm_format.h) ---------------------------------------------------------------------
MAGIC = b"LSTMEMB\0"
HDR_INPUT_SIZE, HDR_HIDDEN_SIZE, HDR_PROJ_SIZE, HDR_NUM_LAYERS = 40, 44, 48, 52
HDR_NUM_DIRECTIONS, HDR_HEAD_SIZE, HDR_HEAD_ACTIVATION, HDR_TENSOR_COUNT = 56, 60, 64, 68
HDR_LAYER_DTYPES, HDR_SIZE, ENTRY_SIZE = 72, 128, 32
ROLE_WEIGHT, ROLE_BIAS, ROLE_HEAD_W, ROLE_HEAD_B = 1, 2, 4, 5
ROLE_QPARAMS, ROLE_HEAD_QPARAMS, ROLE_IO_SCALES = 9, 10, 11
DTYPE_F32, DTYPE_I8_BLOCKED, DTYPE_I32 = 1, 2, 3
LAYER_INT16X8 = 4
ACTIVATIONS = ("none", "sigmoid", "tanh", "relu", "softmax")

# --- the tables (float64, round half even) -------------------------------------------------------------
TANH_TABLE = [int(v) for v in np.rint(32767 * np.tanh(np.arange(513) / 64.0))]
EXP_TABLE = [int(v) for v in np.rint(32767 * np.exp(-np.arange(513) / 32.0))]
_T = np.array(TANH_TABLE, dtype=np.int64)
_E = np.array(EXP_TABLE, dtype=np.int64)
I32_MAX = 2 ** 31 - 1
Z_MAX = 2 ** 29


def rshift_round(v: np.ndarray, s) -> np.ndarray:
    """v / 2^s rounded to nearest, ties away from zero (s >= 1), on int64."""
    v = np.asarray(v, dtype=np.int64)
    s = np.asarray(s, dtype=np.int64)
    half = np.left_shift(np.int64(1), s - 1)
    return np.where(v >= 0, (v + half) >> s, -((-v + half) >> s))


def tanh_q15(v: np.ndarray) -> np.ndarray:
    """tanh of a Q11.20 value, Q0.15, by table interpolation."""
    v = np.asarray(v, dtype=np.int64)
    a = np.abs(v)
    k = np.minimum(a >> 14, 511)
    f = a & 16383
    t = _T[k] + (((_T[k + 1] - _T[k]) * f + 8192) >> 14)
    t = np.where(a >= 2 ** 23, _T[512], t)
    return np.where(v < 0, -t, t)


def sigmoid_q15(v: np.ndarray) -> np.ndarray:
    """sigmoid of a Q11.20 value, Q0.15: 0.5 + 0.5 tanh(v / 2) from the same table."""
    v = np.asarray(v, dtype=np.int64)
    a = np.abs(v)
    k = np.minimum(a >> 15, 511)
    f = a & 32767
    t = _T[k] + (((_T[k + 1] - _T[k]) * f + 16384) >> 15)
    t = np.where(a >= 2 ** 24, _T[512], t)
    return np.where(v >= 0, (32768 + t) >> 1, (32768 - t) >> 1)


def softmax_q15(z: np.ndarray) -> np.ndarray:
    """softmax of Q11.20 values, Q0.15, by the exp table and one integer division per output."""
    z = np.asarray(z, dtype=np.int64)
    d = z.max() - z
    k = np.minimum(d >> 15, 511)
    f = d & 32767
    e = _E[k] - (((_E[k] - _E[k + 1]) * f + 16384) >> 15)
    e = np.where(d >= 2 ** 24, 0, e)
    total = int(e.sum())
    return np.minimum(32767, (e * 32768 + total // 2) // total)


def _unblock(raw: bytes, rows: int, cols: int) -> np.ndarray:
    """An I8_BLOCKED tensor as an int8 [rows, cols] matrix: blocks of 16 rows x 4 columns, block (p, g)
    at byte (p * cols / 4 + g) * 64, element (r, k) at byte 4 * (r % 16) + k % 4 of its block."""
    padded = -(-rows // 16) * 16
    a = np.frombuffer(raw, dtype=np.int8, count=padded * cols).reshape(padded // 16, cols // 4, 16, 4)
    return a.transpose(0, 2, 1, 3).reshape(padded, cols)[:rows].astype(np.int64)


class IntModel:
    """An all-int16x8 model file, parsed from its bytes."""

    def __init__(self, data: bytes):
        data = bytes(data)
        if data[:8] != MAGIC:
            raise ValueError("not a model file")

        def u32(off: int) -> int:
            return struct.unpack_from("<I", data, off)[0]

        self.input_size, self.hidden_size = u32(HDR_INPUT_SIZE), u32(HDR_HIDDEN_SIZE)
        self.num_layers, self.head_size = u32(HDR_NUM_LAYERS), u32(HDR_HEAD_SIZE)
        self.activation = ACTIVATIONS[u32(HDR_HEAD_ACTIVATION)]
        if u32(HDR_PROJ_SIZE) or u32(HDR_NUM_DIRECTIONS) != 1:
            raise ValueError("an integer model has no projection and one direction")
        if any(data[HDR_LAYER_DTYPES + k] != LAYER_INT16X8 for k in range(self.num_layers)):
            raise ValueError("not an integer-only model")
        tensors = {}
        for i in range(u32(HDR_TENSOR_COUNT)):
            e = HDR_SIZE + i * ENTRY_SIZE
            role, index, dtype, rows, cols = struct.unpack_from("<5I", data, e)
            offset = struct.unpack_from("<Q", data, e + 24)[0]
            tensors[role, index] = (dtype, rows, cols, data[offset:])

        def get(role: int, index: int, want_dtype: int) -> np.ndarray:
            dtype, rows, cols, raw = tensors[role, index]
            assert dtype == want_dtype, (role, index, dtype)
            if dtype == DTYPE_I8_BLOCKED:
                return _unblock(raw, rows, cols)
            kind = "<i4" if dtype == DTYPE_I32 else "<f4"
            return np.frombuffer(raw, dtype=kind, count=rows * cols).reshape(rows, cols)

        h = self.hidden_size
        self.layers = []
        for k in range(self.num_layers):
            w = get(ROLE_WEIGHT, 2 * k, DTYPE_I8_BLOCKED)
            width = -(-(self.input_size if k == 0 else h) // 4) * 4
            qp = get(ROLE_QPARAMS, 2 * k, DTYPE_I32).astype(np.int64)
            self.layers.append((w[:, :width], w[:, width:width + h], qp))
        io = get(ROLE_IO_SCALES, 0, DTYPE_F32)[0]
        self.input_scale, self.inv_input_scale, self.output_scale = (np.float32(v) for v in io[:3])
        if self.head_size:
            self.head_w = get(ROLE_HEAD_W, 0, DTYPE_I8_BLOCKED)[:, :h]
            self.head_qp = get(ROLE_HEAD_QPARAMS, 0, DTYPE_I32).astype(np.int64)
        self.output_size = self.head_size or h

    def stream(self) -> "IntStream":
        return IntStream(self)


class IntStream:
    """One stream's integer state and the step of docs/int16x8.md."""

    def __init__(self, model: IntModel):
        self.model = model
        self.reset()

    def reset(self) -> None:
        n, h = self.model.num_layers, self.model.hidden_size
        self.h = [np.zeros(h, dtype=np.int64) for _ in range(n)]
        self.c = [np.zeros(h, dtype=np.int64) for _ in range(n)]

    def step_int(self, xq) -> np.ndarray:
        """One integer step: int16 input (input_size,) -> int16 output (output_size,)."""
        m = self.model
        v = np.asarray(xq, dtype=np.int64)
        assert v.shape == (m.input_size,) and (np.abs(v) <= 32768).all()
        hid = m.hidden_size
        self.gates = []  # per layer (i, f, g, o) of this step, Q0.15: what a trace reports
        for k, (w_x, w_h, qp) in enumerate(m.layers):
            v = np.pad(v, (0, w_x.shape[1] - len(v)))
            a_x, a_h = w_x @ v, w_h @ self.h[k]
            t_x = np.clip(rshift_round(a_x * qp[0], qp[1]), -Z_MAX, Z_MAX)
            t_h = np.clip(rshift_round(a_h * qp[2], qp[3]), -Z_MAX, Z_MAX)
            z = t_x + t_h + qp[4]
            i, f = sigmoid_q15(z[:hid]), sigmoid_q15(z[hid:2 * hid])
            g, o = tanh_q15(z[2 * hid:3 * hid]), sigmoid_q15(z[3 * hid:])
            self.gates.append(np.stack([i, f, g, o]))
            c = np.clip(rshift_round(f * self.c[k], 15) + rshift_round(i * g, 10), -I32_MAX, I32_MAX)
            self.c[k] = c
            self.h[k] = rshift_round(o * tanh_q15(c), 15)
            v = self.h[k]
        if not m.head_size:
            return v.astype(np.int16)
        qp = m.head_qp
        z = np.clip(rshift_round((m.head_w @ v) * qp[0], qp[1]), -Z_MAX, Z_MAX) + qp[2]
        act = m.activation
        if act == "none":
            y = np.clip(z, -32767, 32767)
        elif act == "relu":
            y = np.clip(np.maximum(z, 0), -32767, 32767)
        elif act == "sigmoid":
            y = sigmoid_q15(z)
        elif act == "tanh":
            y = tanh_q15(z)
        else:
            y = softmax_q15(z)
        return y.astype(np.int16)

    def quantize_input(self, x) -> np.ndarray:
        """The float entry's input: clamp(round_half_even(x * inv_input_scale), -32767, 32767) in float32."""
        x = np.asarray(x, dtype=np.float32)
        return np.clip(np.rint(x * self.model.inv_input_scale), -32767, 32767).astype(np.int16)

    def step(self, x) -> np.ndarray:
        """The float entry point: float32 x -> int16 step -> float32 yq * output_scale."""
        yq = self.step_int(self.quantize_input(x))
        return yq.astype(np.float32) * self.model.output_scale

    def run(self, xs) -> np.ndarray:
        """step over every row of xs (float32)."""
        return np.stack([self.step(x) for x in np.asarray(xs, dtype=np.float32)])

    def run_int(self, xqs) -> np.ndarray:
        """step_int over every row of xqs (int16)."""
        return np.stack([self.step_int(x) for x in np.asarray(xqs)])
