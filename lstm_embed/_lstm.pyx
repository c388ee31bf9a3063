# cython: language_level=3, boundscheck=False, wraparound=False, embedsignature=True
"""Cython binding over the C core (src/lstm_c/lstm.h): Model and Stream."""
import os

import numpy as np

cimport numpy as cnp
from libc.stdint cimport uintptr_t
from libc.string cimport memcpy

from lstm_embed.errors import (
    ClosedModelError,
    DTypeError,
    LstmError,
    LstmMemoryError,
    ModelFormatError,
    NonFiniteInputError,
    ShapeError,
    StateError,
    UnsupportedError,
)

cnp.import_array()

# Every status the C core can return, mapped to the exception a Python caller sees.
_STATUS_ERRORS = {
    LSTM_E_INVALID_ARGUMENT: LstmError,
    LSTM_E_BUFFER_TOO_SMALL: LstmError,
    LSTM_E_TRUNCATED: ModelFormatError,
    LSTM_E_BAD_MAGIC: ModelFormatError,
    LSTM_E_UNSUPPORTED_VERSION: ModelFormatError,
    LSTM_E_CHECKSUM: ModelFormatError,
    LSTM_E_BAD_HEADER: ModelFormatError,
    LSTM_E_BAD_TENSOR: ModelFormatError,
    LSTM_E_NONFINITE_WEIGHT: ModelFormatError,
    LSTM_E_MISALIGNED: ModelFormatError,
    LSTM_E_NONFINITE_INPUT: NonFiniteInputError,
    LSTM_E_WRONG_MODEL: StateError,
    LSTM_E_BAD_SNAPSHOT: StateError,
    LSTM_E_UNSUPPORTED: UnsupportedError,
    LSTM_E_BAD_STATE: StateError,
    LSTM_E_OUT_OF_MEMORY: LstmMemoryError,
}

ACTIVATIONS = ("none", "sigmoid", "tanh", "relu", "softmax")
# Names of lstm_layer_dtype values, in code order.
LAYER_DTYPES = ("float32", "int8", "int8-dynamic")
# Names of lstm_isa values, in code order ("auto" picks the best this CPU has).
ISAS = ("auto", "reference", "avx2", "avx512_vnni")

# Model-file layout constants, re-exported from lstm_format.h for the Python writer (format.py).
FORMAT = {
    "MAGIC": (<bytes>LSTM_FILE_MAGIC[:LSTM_FILE_MAGIC_LEN]),
    "VERSION": LSTM_FORMAT_VERSION,
    "TENSOR_ALIGN": LSTM_TENSOR_ALIGN,
    "HDR_MAGIC": LSTM_HDR_MAGIC,
    "HDR_VERSION": LSTM_HDR_VERSION,
    "HDR_HEADER_SIZE": LSTM_HDR_HEADER_SIZE,
    "HDR_FILE_SIZE": LSTM_HDR_FILE_SIZE,
    "HDR_CRC32": LSTM_HDR_CRC32,
    "HDR_FLAGS": LSTM_HDR_FLAGS,
    "HDR_FINGERPRINT": LSTM_HDR_FINGERPRINT,
    "HDR_INPUT_SIZE": LSTM_HDR_INPUT_SIZE,
    "HDR_HIDDEN_SIZE": LSTM_HDR_HIDDEN_SIZE,
    "HDR_PROJ_SIZE": LSTM_HDR_PROJ_SIZE,
    "HDR_NUM_LAYERS": LSTM_HDR_NUM_LAYERS,
    "HDR_NUM_DIRECTIONS": LSTM_HDR_NUM_DIRECTIONS,
    "HDR_HEAD_SIZE": LSTM_HDR_HEAD_SIZE,
    "HDR_HEAD_ACTIVATION": LSTM_HDR_HEAD_ACTIVATION,
    "HDR_TENSOR_COUNT": LSTM_HDR_TENSOR_COUNT,
    "HDR_LAYER_DTYPES": LSTM_HDR_LAYER_DTYPES,
    "HDR_SIZE": LSTM_HDR_SIZE,
    "TENSOR_ENTRY_SIZE": LSTM_TENSOR_ENTRY_SIZE,
    "TENSOR_ROLE": LSTM_TENSOR_ROLE,
    "TENSOR_INDEX": LSTM_TENSOR_INDEX,
    "TENSOR_DTYPE": LSTM_TENSOR_DTYPE,
    "TENSOR_ROWS": LSTM_TENSOR_ROWS,
    "TENSOR_COLS": LSTM_TENSOR_COLS,
    "TENSOR_OFFSET": LSTM_TENSOR_OFFSET,
    "MAX_TENSORS": LSTM_MAX_TENSORS,
    "MAX_LAYERS": LSTM_MAX_LAYERS,
    "MAX_DIM": LSTM_MAX_DIM,
    "ROLE_WEIGHT": LSTM_ROLE_WEIGHT,
    "ROLE_BIAS": LSTM_ROLE_BIAS,
    "ROLE_PROJ": LSTM_ROLE_PROJ,
    "ROLE_HEAD_W": LSTM_ROLE_HEAD_W,
    "ROLE_HEAD_B": LSTM_ROLE_HEAD_B,
    "ROLE_W_SCALE": LSTM_ROLE_W_SCALE,
    "ROLE_W_ROWSUM": LSTM_ROLE_W_ROWSUM,
    "ROLE_PROJ_SCALE": LSTM_ROLE_PROJ_SCALE,
    "DTYPE_F32": LSTM_DTYPE_F32,
    "DTYPE_I8_BLOCKED": LSTM_DTYPE_I8_BLOCKED,
    "DTYPE_I32": LSTM_DTYPE_I32,
    "Q8_BLOCK_ROWS": LSTM_Q8_BLOCK_ROWS,
    "Q8_BLOCK_COLS": LSTM_Q8_BLOCK_COLS,
}

# Steps per pass of Stream.run for a unidirectional model: big enough that the input projection is a
# real matrix product, small enough that the workspace stays in cache-friendly megabytes.
_RUN_CHUNK = 128


def status_message(int status):
    """The C library's description of a status code."""
    return lstm_status_str(<lstm_status>status).decode()


cdef int _check(lstm_status st, str context) except -1:
    if st == LSTM_OK:
        return 0
    cls = _STATUS_ERRORS.get(st, LstmError)
    raise cls(f"{context}: {lstm_status_str(st).decode()} [status {<int>st}]", int(st))


cdef cnp.ndarray _aligned_bytes(size_t n):
    """A zeroed uint8 array of n bytes whose data starts on a 64-byte boundary."""
    raw = np.zeros(n + 64, dtype=np.uint8)
    cdef uintptr_t addr = <uintptr_t>cnp.PyArray_DATA(raw)
    cdef size_t shift = (64 - addr % 64) % 64
    return raw[shift:shift + n]


cdef cnp.ndarray _as_float32(object x, str name):
    """x as a C-contiguous float32 ndarray (no copy when it already is one)."""
    if cnp.PyArray_CheckExact(x):
        arr = <cnp.ndarray>x
        if cnp.PyArray_TYPE(arr) == cnp.NPY_FLOAT32 and cnp.PyArray_IS_C_CONTIGUOUS(arr):
            return arr
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as e:
        raise DTypeError(f"{name} must be an array of real numbers: {e}") from None
    if arr.dtype.kind not in "fiu":
        raise DTypeError(f"{name} must hold real numbers (float or int), got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.float32)


cdef cnp.ndarray _output(object out, int nd, Py_ssize_t rows, Py_ssize_t cols, str name):
    """A new float32 array of shape (cols,) when nd == 1 or (rows, cols) when nd == 2, or `out` after
    checking it can receive the result in place. Runs on every step: C-level checks only."""
    cdef cnp.npy_intp dims[2]
    if nd == 1:
        dims[0] = cols
    else:
        dims[0] = rows
        dims[1] = cols
    if out is None:
        return cnp.PyArray_EMPTY(nd, dims, cnp.NPY_FLOAT32, 0)
    if not cnp.PyArray_CheckExact(out):
        raise DTypeError(f"{name} must be a numpy.ndarray, got {type(out).__name__}")
    arr = <cnp.ndarray>out
    if cnp.PyArray_TYPE(arr) != cnp.NPY_FLOAT32 or not cnp.PyArray_IS_C_CONTIGUOUS(arr):
        raise DTypeError(f"{name} must be a C-contiguous float32 array, got {arr.dtype}")
    if not cnp.PyArray_ISWRITEABLE(arr):
        raise ValueError(f"{name} is read-only")
    if (cnp.PyArray_NDIM(arr) != nd or cnp.PyArray_DIM(arr, 0) != dims[0]
            or (nd == 2 and cnp.PyArray_DIM(arr, 1) != cols)):
        want = f"({cols},)" if nd == 1 else f"({rows}, {cols})"
        raise ShapeError(f"{name} must have shape {want}, got {np.shape(arr)}")
    return arr


cdef class Model:
    """An LSTM model loaded from a model file, validated once, shared by any number of streams.

    Create one with ``Model.load(path)`` or ``Model.from_bytes(data)``; make a stream per independent
    sequence with ``model.stream()``. A model is immutable and may be used from many threads at once.
    """
    cdef lstm_model *_m
    cdef lstm_model_info _info
    cdef cnp.ndarray _data
    cdef bint _closed
    cdef object _many_work  # workspace of step_many, reused while no other thread holds it
    cdef bint _many_busy

    def __cinit__(self):
        self._m = NULL
        self._closed = True

    def __dealloc__(self):
        if self._m != NULL:
            lstm_model_close(self._m)
            self._m = NULL

    def __init__(self):
        raise TypeError("use Model.load(path) or Model.from_bytes(data) to create a Model")

    @classmethod
    def from_bytes(cls, data, *, isa=None):
        """Open a model from the bytes of a model file (bytes, bytearray, memoryview or uint8 array).

        The bytes are copied once into 64-byte-aligned memory and validated: header fields, tensor
        positions and shapes, CRC32, finite weights. Raises ``ModelFormatError`` on any defect.
        ``isa`` picks the int8 kernels: "auto" (default, or the LSTM_EMBED_ISA environment variable),
        "reference", "avx2" or "avx512_vnni"; ``UnsupportedError`` if this CPU lacks it.
        """
        try:
            view = memoryview(data).cast("B")
        except TypeError:
            raise DTypeError(f"model data must be bytes-like, got {type(data).__name__}") from None
        cdef Model self = cls.__new__(cls)
        self._data = _aligned_bytes(view.nbytes)
        self._data[:] = np.frombuffer(view, dtype=np.uint8)
        cdef lstm_model *m = NULL
        cdef lstm_status st
        with nogil:
            st = lstm_model_open(cnp.PyArray_DATA(self._data), <size_t>cnp.PyArray_SIZE(self._data), &m)
        _check(st, "cannot open model")
        self._m = m
        isa = isa or os.environ.get("LSTM_EMBED_ISA", "auto")
        if isa not in ISAS:
            raise ValueError(f"isa must be one of {ISAS}, got {isa!r}")
        _check(lstm_model_set_isa(m, <lstm_isa><int>ISAS.index(isa)), f"cannot use the {isa} kernels")
        lstm_model_get_info(m, &self._info)
        if self._info.file_size < <size_t>view.nbytes:
            self._data = self._data[:self._info.file_size]
        self._closed = False
        return self

    @classmethod
    def load(cls, path, *, isa=None):
        """Open a model file from disk (see ``from_bytes``). ``FileNotFoundError`` if it does not exist."""
        with open(os.fspath(path), "rb") as f:
            data = f.read()
        try:
            return cls.from_bytes(data, isa=isa)
        except ModelFormatError as e:
            raise type(e)(f"{os.fspath(path)}: {e}", *e.args[1:]) from None

    cdef int _usable(self) except -1:
        if self._closed:
            raise ClosedModelError("this Model was closed; load it again to use it")
        return 0

    def to_bytes(self):
        """The model file's bytes, exactly as loaded."""
        return self._data.tobytes()

    def save(self, path):
        """Write the model file to ``path``."""
        with open(os.fspath(path), "wb") as f:
            f.write(self._data.tobytes())

    def close(self):
        """Make this model and its streams unusable (memory is released when the last reference goes)."""
        self._closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def closed(self):
        return self._closed

    @property
    def input_size(self):
        """Floats per input step."""
        return self._info.input_size

    @property
    def hidden_size(self):
        """Units per layer (size of the cell state c)."""
        return self._info.hidden_size

    @property
    def proj_size(self):
        """LSTMP projection size (size of h), 0 when the model has no projection."""
        return self._info.proj_size

    @property
    def output_size(self):
        """Floats per output step: the head's size, else the top layer's h (times 2 if bidirectional)."""
        return self._info.output_size

    @property
    def num_layers(self):
        return self._info.num_layers

    @property
    def num_directions(self):
        """1, or 2 for a bidirectional model (whole-sequence ``Stream.run`` only)."""
        return self._info.num_directions

    @property
    def head_size(self):
        """Rows of the dense head, 0 when there is none."""
        return self._info.head_size

    @property
    def head_activation(self):
        return ACTIVATIONS[self._info.head_activation]

    @property
    def layer_dtypes(self):
        """Numeric format of each layer's weights."""
        return tuple(LAYER_DTYPES[self._info.layer_dtype[l]] for l in range(self._info.num_layers))

    @property
    def dtype(self):
        """The layers' weight format, or "mixed" when layers differ."""
        kinds = set(self.layer_dtypes)
        return kinds.pop() if len(kinds) == 1 else "mixed"

    @property
    def isa(self):
        """The instruction set the int8 kernels use on this machine."""
        return ISAS[self._info.isa]

    @property
    def fingerprint(self):
        """64-bit identifier of the weights; snapshots carry it."""
        return self._info.fingerprint

    @property
    def format_version(self):
        return self._info.format_version

    @property
    def file_size(self):
        return self._info.file_size

    @property
    def param_count(self):
        return self._info.param_count

    @property
    def state_size(self):
        """Bytes of state memory each stream of this model uses."""
        return lstm_state_size(self._m)

    def __repr__(self):
        if self._m == NULL:
            return "<lstm_embed.Model (not opened)>"
        head = f" head={self.head_size}:{self.head_activation}" if self.head_size else ""
        proj = f" proj={self.proj_size}" if self.proj_size else ""
        bi = " bidirectional" if self.num_directions == 2 else ""
        return (f"<lstm_embed.Model input={self.input_size} hidden={self.hidden_size}{proj} "
                f"layers={self.num_layers}{bi}{head} dtype={self.dtype}{' closed' if self._closed else ''}>")

    def stream(self):
        """A new stream (its own h and c, all zero) over this model."""
        self._usable()
        return Stream(self)

    def step_many(self, streams, xs, out=None):
        """One timestep for N streams of this model at once, as one matrix product per layer.

        ``streams`` is a sequence of N distinct ``Stream`` objects of this model, ``xs`` has shape
        (N, input_size); returns (N, output_size), row i for stream i. Each stream's state advances
        exactly as if ``streams[i].step(xs[i])`` had been called.
        """
        self._usable()
        cdef list group = list(streams)
        cdef Py_ssize_t n = len(group), i, marked = 0
        cdef cnp.ndarray x = _as_float32(xs, "xs")
        if x.ndim != 2 or x.shape[0] != n or x.shape[1] != self._info.input_size:
            raise ShapeError(f"xs must have shape ({n}, {self._info.input_size}) for {n} streams, "
                             f"got {np.shape(xs)}")
        cdef cnp.ndarray y = _output(out, 2, n, self._info.output_size, "out")
        if n == 0:
            return y
        cdef cnp.ndarray ptrs = np.empty(n, dtype=np.uintp)
        cdef lstm_state **states = <lstm_state **>cnp.PyArray_DATA(ptrs)
        cdef Stream s
        cdef lstm_status st
        cdef size_t wlen = lstm_step_many_workspace_size(self._m, n)
        cdef cnp.ndarray work
        cdef bint own_work = not self._many_busy
        try:
            for i in range(n):  # mark each stream busy: a second mark means a repeat or another thread
                if type(group[i]) is not Stream:
                    raise TypeError(f"streams[{i}] is a {type(group[i]).__name__}, not a Stream")
                s = <Stream>group[i]
                if s._model is not self:
                    raise StateError(f"streams[{i}] belongs to another Model")
                if s._busy:
                    if any(group[j] is s for j in range(i)):
                        raise ValueError(f"streams[{i}] appears twice: step_many needs distinct streams")
                    raise LstmError(f"streams[{i}] is in use by another thread")
                s._busy = True
                marked = i + 1
                states[i] = s._s
            if own_work:  # reuse the model's workspace unless another thread is using it
                self._many_busy = True
                if self._many_work is None or <size_t>cnp.PyArray_SIZE(self._many_work) < wlen:
                    self._many_work = np.empty(wlen, dtype=np.uint8)
                work = self._many_work
            else:
                work = np.empty(wlen, dtype=np.uint8)
            with nogil:
                st = lstm_step_many(self._m, states, n, <const float *>cnp.PyArray_DATA(x),
                                    <float *>cnp.PyArray_DATA(y), cnp.PyArray_DATA(work), wlen)
        finally:
            for i in range(marked):
                (<Stream>group[i])._busy = False
            if own_work:
                self._many_busy = False
        _check(st, "step_many")
        return y


cdef class Stream:
    """One sequence's state (h and c of every layer) over a shared Model.

    ``step(x)`` advances one timestep; ``run(xs)`` advances T timesteps with the same numbers.
    A stream must not be used from two threads at the same time (that raises ``LstmError``);
    different streams of one model may run in parallel threads, the GIL is released in the C calls.
    Non-finite inputs raise ``NonFiniteInputError`` and leave the state unchanged.
    """
    cdef Model _model
    cdef cnp.ndarray _buf
    cdef lstm_state *_s
    cdef cnp.ndarray _work
    cdef bint _busy
    cdef Py_ssize_t _in
    cdef Py_ssize_t _out

    def __cinit__(self, Model model):
        if model is None or model._m == NULL:
            raise TypeError("Stream needs an open Model; use model.stream()")
        model._usable()
        self._model = model
        cdef size_t size = lstm_state_size(model._m)
        self._buf = np.zeros(size, dtype=np.uint8)
        cdef lstm_state *s = NULL
        _check(lstm_state_init(model._m, cnp.PyArray_DATA(self._buf), size, &s), "cannot create stream")
        self._s = s
        self._work = None
        self._busy = False
        self._in = model._info.input_size
        self._out = model._info.output_size

    @property
    def model(self):
        return self._model

    cdef int _enter(self) except -1:
        if self._model._closed:
            raise ClosedModelError("the Model of this stream was closed")
        if self._busy:
            raise LstmError("this Stream is in use by another thread; use one stream per thread")
        self._busy = True
        return 0

    def step(self, x, out=None):
        """Advance one timestep. ``x``: input_size real numbers; returns (output_size,) float32.

        Pass ``out`` (a float32 array of shape (output_size,)) to write the result there instead of
        allocating. Raises ``ShapeError`` for a wrong length, ``DTypeError`` for non-numeric input,
        ``NonFiniteInputError`` for NaN/Inf (the state is then unchanged).
        """
        cdef cnp.ndarray xa = _as_float32(x, "x")
        if cnp.PyArray_NDIM(xa) != 1 or cnp.PyArray_DIM(xa, 0) != self._in:
            raise ShapeError(f"x must have shape ({self._in},), got {np.shape(x)}")
        cdef cnp.ndarray ya = _output(out, 1, 0, self._out, "out")
        cdef const float *xp = <const float *>cnp.PyArray_DATA(xa)
        cdef float *yp = <float *>cnp.PyArray_DATA(ya)
        cdef lstm_status st
        self._enter()
        with nogil:
            st = lstm_step(self._s, xp, yp)
        self._busy = False
        if st != LSTM_OK:
            if st == LSTM_E_UNSUPPORTED and self._model._info.num_directions == 2:
                raise UnsupportedError(
                    "step() streams one timestep at a time, which needs a unidirectional model: the backward "
                    "direction of a bidirectional LSTM reads the sequence from its end. Use run(xs) on the "
                    "whole sequence.", int(st))
            _check(st, "step")
        return ya

    def run(self, xs, out=None):
        """Advance T timesteps: ``xs`` of shape (T, input_size) -> (T, output_size) float32.

        Same results as T calls of ``step`` (to float rounding, ~1e-7), but the input projection of
        all steps is one matrix product. T may be 0. On a bidirectional model ``xs`` is one whole
        sequence, both directions start from zero and the stream's state is not used.
        """
        cdef cnp.ndarray xa = _as_float32(xs, "xs")
        if cnp.PyArray_NDIM(xa) != 2 or cnp.PyArray_DIM(xa, 1) != self._in:
            raise ShapeError(f"xs must have shape (T, {self._in}), got {np.shape(xs)}")
        cdef size_t T = <size_t>cnp.PyArray_DIM(xa, 0)
        cdef cnp.ndarray ya = _output(out, 2, <Py_ssize_t>T, self._out, "out")
        if T == 0:
            return ya
        chunk = T if self._model._info.num_directions == 2 else min(T, _RUN_CHUNK)
        cdef size_t wlen = lstm_run_workspace_size(self._model._m, chunk)
        if self._work is None or <size_t>cnp.PyArray_SIZE(self._work) < wlen:
            self._work = np.empty(wlen, dtype=np.uint8)
        cdef void *wp = cnp.PyArray_DATA(self._work)
        cdef const float *xp = <const float *>cnp.PyArray_DATA(xa)
        cdef float *yp = <float *>cnp.PyArray_DATA(ya)
        cdef lstm_status st
        self._enter()
        with nogil:
            st = lstm_run(self._s, xp, T, yp, wp, wlen)
        self._busy = False
        _check(st, "run")
        return ya

    def reset(self):
        """Set h and c of every layer back to zero."""
        self._enter()
        st = lstm_state_reset(self._s)
        self._busy = False
        _check(st, "reset")

    def snapshot(self):
        """The stream's h and c as bytes (with the model fingerprint and a CRC32), for ``restore``."""
        self._enter()
        cdef size_t n = lstm_snapshot_size(self._model._m)
        blob = bytearray(n)
        cdef unsigned char[::1] view = blob
        st = lstm_state_snapshot(self._s, &view[0], n)
        self._busy = False
        _check(st, "snapshot")
        return bytes(blob)

    def restore(self, blob):
        """Continue from a ``snapshot``. ``StateError`` if it is damaged or from another model's weights;
        the state is unchanged then."""
        cdef const unsigned char[::1] view
        try:
            view = memoryview(blob).cast("B")
        except TypeError:
            raise DTypeError(f"snapshot must be bytes-like, got {type(blob).__name__}") from None
        cdef unsigned char empty = 0
        self._enter()
        st = lstm_state_restore(self._s, &view[0] if view.shape[0] else &empty, view.shape[0])
        self._busy = False
        _check(st, "restore")
