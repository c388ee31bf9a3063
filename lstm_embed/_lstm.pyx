# cython: language_level=3, boundscheck=False, wraparound=False, embedsignature=True
"""Cython binding over the C core (src/lstm_c/lstm.h): Model and Stream."""
import operator
import os

import numpy as np

cimport cython
cimport numpy as cnp
from libc.stdint cimport int16_t, uintptr_t
from libc.string cimport memcpy
from cpython.mem cimport PyMem_Free, PyMem_Malloc

cdef extern from *:
    """
    /* step_many(threads=k) hand-offs: a flag spun on without the GIL before falling back to a lock. On a
       VM every wake-up of a sleeping thread costs tens of microseconds (the idle vCPU is halted). */
    #include <time.h>
    #if defined(__x86_64__) || defined(__i386__)
    #include <immintrin.h>
    #define LSTM_EMBED_PAUSE() _mm_pause()
    #elif defined(__aarch64__) || defined(__arm__)
    #define LSTM_EMBED_PAUSE() __asm__ __volatile__("yield")
    #else
    #define LSTM_EMBED_PAUSE() ((void)0)
    #endif
    static double lstm_embed_now(void) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
    }
    /* 1 once *flag == want, 0 if `seconds` pass first */
    static int lstm_embed_spin_until(const long *flag, long want, double seconds) {
        double end = lstm_embed_now() + seconds;
        for (;;) {
            for (int i = 0; i < 64; i++) {
                if (__atomic_load_n(flag, __ATOMIC_ACQUIRE) == want) return 1;
                LSTM_EMBED_PAUSE();
            }
            if (lstm_embed_now() > end) return __atomic_load_n(flag, __ATOMIC_ACQUIRE) == want;
        }
    }
    static void lstm_embed_flag_set(long *flag, long v) { __atomic_store_n(flag, v, __ATOMIC_RELEASE); }
    """
    int lstm_embed_spin_until(const long *flag, long want, double seconds) nogil
    void lstm_embed_flag_set(long *flag, long v) nogil


cdef class _Flag:
    """A counter one thread sets and another spins on without the GIL (step_many's workers)."""
    cdef long value

    def spin(self, long want, double seconds):
        """True once the counter equals `want`, False if `seconds` pass first (the GIL released meanwhile)."""
        cdef int seen
        with nogil:
            seen = lstm_embed_spin_until(&self.value, want, seconds)
        return bool(seen)

    def set_and_spin(self, long v, _Flag other, long want, double seconds):
        """set(v), then other.spin(want, seconds), the GIL released before the first: the thread spinning on
        this flag finds the GIL free when it sees v."""
        cdef int seen
        with nogil:
            lstm_embed_flag_set(&self.value, v)
            seen = lstm_embed_spin_until(&other.value, want, seconds)
        return bool(seen)


from lstm_embed.errors import (
    ArgumentTypeError,
    ClosedModelError,
    DTypeError,
    InputRangeError,
    InvalidArgumentError,
    LstmError,
    LstmMemoryError,
    ModelFormatError,
    NonFiniteInputError,
    ShapeError,
    StateError,
    StreamBusyError,
    UnsupportedError,
    model_file_error,
)

cnp.import_array()

# Every status the C core can return, mapped to the exception a Python caller sees.
_STATUS_ERRORS = {
    LSTM_E_INVALID_ARGUMENT: InvalidArgumentError,
    LSTM_E_BUFFER_TOO_SMALL: InvalidArgumentError,
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
    LSTM_E_INPUT_RANGE: InputRangeError,
    LSTM_E_ISA_UNAVAILABLE: UnsupportedError,
}

_FILE_HINT = ("it is not a valid lstm_embed model file (damaged, truncated, or written by another tool or "
              "version): re-create it with lstm_embed.convert_torch or `lstm-embed convert`")
def _version_message(data) -> str:
    """Why a file's format version is refused, and what to do (the version field is read raw)."""
    if data.size < FORMAT["HDR_VERSION"] + 4:
        return "cannot open model"
    version = int(np.frombuffer(data[FORMAT["HDR_VERSION"]:FORMAT["HDR_VERSION"] + 4].tobytes(), "<u4")[0])
    if version < LSTM_FORMAT_VERSION:
        return (f"cannot open model: it is format version {version} (written by lstm_embed 0.1-0.2, fp32 weights "
                f"row-major); this lstm_embed reads version {LSTM_FORMAT_VERSION} only (packed fp32 weights). "
                "Convert it again from its source with this version: lstm_embed.convert_torch(...) or "
                "`lstm-embed convert SOURCE -o MODEL.lstm`")
    return (f"cannot open model: it is format version {version}, newer than this lstm_embed reads "
            f"({LSTM_FORMAT_VERSION}): upgrade lstm_embed")


# What the user can do about each status, appended to the C library's description.
_STATUS_HINTS = {
    LSTM_E_INVALID_ARGUMENT: "this is a bug in lstm_embed's binding; please report it",
    LSTM_E_BUFFER_TOO_SMALL: "this is a bug in lstm_embed's binding; please report it",
    LSTM_E_TRUNCATED: _FILE_HINT,
    LSTM_E_BAD_MAGIC: _FILE_HINT,
    LSTM_E_UNSUPPORTED_VERSION: "convert the model again with this lstm_embed (or upgrade it for a newer file)",
    LSTM_E_CHECKSUM: _FILE_HINT,
    LSTM_E_BAD_HEADER: _FILE_HINT,
    LSTM_E_BAD_TENSOR: _FILE_HINT,
    LSTM_E_NONFINITE_WEIGHT: _FILE_HINT + "; check the PyTorch weights are finite and within +-2^20",
    LSTM_E_MISALIGNED: "this is a bug in lstm_embed's binding; please report it",
    LSTM_E_NONFINITE_INPUT: "replace NaN and infinite inputs (e.g. with np.nan_to_num) before stepping",
    LSTM_E_WRONG_MODEL: "use a stream or snapshot of this model (the same weights and shape)",
    LSTM_E_BAD_SNAPSHOT: "pass the bytes Stream.snapshot() returned, unchanged",
    LSTM_E_UNSUPPORTED: "see the model's properties (num_directions...) for what it supports",
    LSTM_E_BAD_STATE: "create a new stream with model.stream()",
    LSTM_E_OUT_OF_MEMORY: "free memory, or use smaller inputs",
    LSTM_E_INPUT_RANGE: "scale or clip the inputs to |x| <= 2^64 (normalise them as in training)",
    LSTM_E_ISA_UNAVAILABLE: "use isa=\"auto\" or one of lstm_embed.supported_isas()",
}

ACTIVATIONS = ("none", "sigmoid", "tanh", "relu", "softmax")
# Names of lstm_layer_dtype values, in code order.
LAYER_DTYPES = ("float32", "int8", "int8-dynamic", "int8-a16", "int16x8")
# Names of lstm_isa values, in code order, as the C library spells them ("auto" picks the best this CPU
# has): ("auto", "reference", "avx2", "avx512_vnni", "neon", "neon_dot", "cortex_m_dsp", "blas",
# "amx_int8", "avx2_vnni").
ISAS = tuple(lstm_isa_name(<lstm_isa>i).decode() for i in range(LSTM_ISA_COUNT))
# Largest |value| of an input (2^64) and of a weight (2^20) the C library accepts.
MAX_ABS_INPUT = float(LSTM_MAX_ABS_INPUT)
MAX_ABS_WEIGHT = float(LSTM_MAX_ABS_WEIGHT)
_FLOAT32_MAX = float(np.finfo(np.float32).max)

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
    "ROLE_QPARAMS": LSTM_ROLE_QPARAMS,
    "ROLE_HEAD_QPARAMS": LSTM_ROLE_HEAD_QPARAMS,
    "ROLE_IO_SCALES": LSTM_ROLE_IO_SCALES,
    "QP_ROWS": LSTM_QP_ROWS,
    "HQP_ROWS": LSTM_HQP_ROWS,
    "IO_COLS": LSTM_IO_COLS,
    "INT_MAX_WIDTH": LSTM_INT_MAX_WIDTH,
    "DTYPE_F32": LSTM_DTYPE_F32,
    "DTYPE_I8_BLOCKED": LSTM_DTYPE_I8_BLOCKED,
    "DTYPE_F32_PANELS": LSTM_DTYPE_F32_PANELS,
    "DTYPE_I32": LSTM_DTYPE_I32,
    "Q8_BLOCK_ROWS": LSTM_Q8_BLOCK_ROWS,
    "Q8_BLOCK_COLS": LSTM_Q8_BLOCK_COLS,
}

# Steps per pass of Stream.run for a unidirectional model: big enough that the input projection is a
# real matrix product, small enough that the workspace stays in cache-friendly megabytes.
_RUN_CHUNK = 128


def status_message(status):
    """The C library's description of a status code ("unknown status" for values it does not define)."""
    try:
        code = operator.index(status)
    except TypeError:
        raise ArgumentTypeError(f"status must be an int, got {type(status).__name__}") from None
    if not -2**31 <= code < 2**31:
        code = -1
    return lstm_status_str(<lstm_status><int>code).decode()


def supported_isas():
    """Names of the instruction sets this CPU and this build can run ("auto" excluded), best last.

    Each is a valid ``isa=`` of ``Model.from_bytes`` and ``Model.load``; "reference" is always there.
    """
    return [ISAS[i] for i in range(1, LSTM_ISA_COUNT) if lstm_isa_supported(<lstm_isa>i)]


def best_isa():
    """The instruction set that ``isa="auto"`` picks on this CPU (one of ``supported_isas()``)."""
    return lstm_isa_name(lstm_isa_best()).decode()


def c_version():
    """The version of the linked C library, "MAJOR.MINOR.PATCH"."""
    return lstm_version().decode()


cdef int _check(lstm_status st, str context) except -1:
    if st == LSTM_OK:
        return 0
    cls = _STATUS_ERRORS.get(st, LstmError)
    hint = _STATUS_HINTS.get(st)
    if st == LSTM_E_ISA_UNAVAILABLE:
        hint = f"{hint}: {['auto'] + supported_isas()}"
    raise cls(f"{context}: {lstm_status_str(st).decode()} [status {<int>st}]" + (f"; {hint}" if hint else ""),
              int(st))


cdef cnp.ndarray _empty(cnp.npy_intp n, int typenum, str what):
    """A new 1-D array of n elements, LstmMemoryError if memory runs out."""
    try:
        return cnp.PyArray_EMPTY(1, &n, typenum, 0)
    except MemoryError:
        raise LstmMemoryError(f"out of memory allocating {what}") from None


cdef cnp.ndarray _aligned_bytes(size_t n):
    """A zeroed uint8 array of n bytes whose data starts on a 64-byte boundary."""
    try:
        raw = np.zeros(n + 64, dtype=np.uint8)
    except MemoryError:
        raise LstmMemoryError(f"out of memory copying {n} bytes of model data") from None
    cdef uintptr_t addr = <uintptr_t>cnp.PyArray_DATA(raw)
    cdef size_t shift = (64 - addr % 64) % 64
    return raw[shift:shift + n]


cdef object _byte_view(object data, str what, str hint):
    """A C-contiguous unsigned-byte memoryview of a bytes-like object (copied if it is not contiguous)."""
    try:
        view = memoryview(data)
    except TypeError:
        raise DTypeError(f"{what} must be bytes-like (bytes, bytearray, memoryview, mmap or a numpy array), "
                         f"got {type(data).__name__}{hint}") from None
    except (ValueError, BufferError) as e:  # a closed mmap, a released memoryview...
        raise InvalidArgumentError(f"cannot read {what}: {e}; pass an open buffer or the bytes themselves") from e
    try:
        if not view.c_contiguous:
            view = memoryview(view.tobytes())
        return view.cast("B") if view.ndim != 1 or view.format != "B" else view
    except (TypeError, ValueError, BufferError) as e:
        raise InvalidArgumentError(f"cannot read {what} as bytes: {e}") from e


cdef cnp.ndarray _as_float32(object x, str name):
    """x as a C-contiguous, aligned, native-order float32 ndarray (no copy when it already is one).

    Raises DTypeError for anything that is not real numbers, InputRangeError for values beyond float32's
    range (they would become infinity)."""
    cdef cnp.ndarray arr
    if cnp.PyArray_CheckExact(x):
        arr = <cnp.ndarray>x
        if cnp.PyArray_TYPE(arr) == cnp.NPY_FLOAT32 and cnp.PyArray_ISCARRAY_RO(arr):
            return arr
    else:
        try:
            arr = np.asarray(x)
        except MemoryError:
            raise LstmMemoryError(f"out of memory converting {name} to an array") from None
        except Exception as e:  # a ragged list, an __array__ that raises...
            raise DTypeError(f"{name} cannot be read as an array of real numbers ({type(e).__name__}: {e}); "
                             f"pass a numpy float32 array of the right shape") from e
    kind = arr.dtype.kind
    if kind not in "fiu":
        raise DTypeError(f"{name} must hold real numbers (float or int), got dtype {arr.dtype}; convert it "
                         f"with np.asarray({name}, dtype=np.float32) if its values are numbers")
    cdef cnp.ndarray res
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            res = arr.astype(np.float32, order="C", copy=False)
        if not cnp.PyArray_ISCARRAY_RO(res):  # misaligned or byte-swapped float32
            res = res.copy()
    except MemoryError:
        raise LstmMemoryError(f"out of memory converting {name} to float32") from None
    if kind == "f" and arr.dtype.itemsize > 4 and res.size and not np.isfinite(res).all():
        lost = np.flatnonzero((~np.isfinite(res) & np.isfinite(arr)).ravel())
        if lost.size:
            where = tuple(int(i) for i in np.unravel_index(lost[0], np.shape(arr)))
            raise InputRangeError(
                f"{name}[{', '.join(map(str, where))}] = {np.format_float_scientific(arr[where], precision=4)} "
                f"({arr.dtype}) exceeds float32's range (largest {_FLOAT32_MAX:.4g}), "
                f"and inputs beyond +-2^64 are rejected: scale or clip the inputs (normalise them as in "
                f"training); the stream's state was not changed", int(LSTM_E_INPUT_RANGE))
    return res


cdef cnp.ndarray _output(object out, int nd, Py_ssize_t rows, Py_ssize_t cols, str name):
    """A new float32 array of shape (cols,) when nd == 1 or (rows, cols) when nd == 2, or `out` after
    checking it can receive the result in place. Runs on every step: C-level checks first."""
    cdef cnp.npy_intp dims[2]
    if nd == 1:
        dims[0] = cols
    else:
        dims[0] = rows
        dims[1] = cols
    if out is None:
        try:
            return cnp.PyArray_EMPTY(nd, dims, cnp.NPY_FLOAT32, 0)
        except MemoryError:
            raise LstmMemoryError(f"out of memory allocating the output") from None
    want = f"({cols},)" if nd == 1 else f"({rows}, {cols})"
    if not cnp.PyArray_Check(out):
        raise DTypeError(f"{name} must be a numpy.ndarray of float32 and shape {want} "
                         f"(e.g. np.empty({want}, np.float32)), got {type(out).__name__}")
    cdef cnp.ndarray arr = <cnp.ndarray>out
    if cnp.PyArray_TYPE(arr) != cnp.NPY_FLOAT32 or not cnp.PyArray_ISNOTSWAPPED(arr):
        raise DTypeError(f"{name} must be a float32 array in native byte order, got {arr.dtype!r}; "
                         f"allocate it with np.empty({want}, np.float32)")
    if (cnp.PyArray_NDIM(arr) != nd or cnp.PyArray_DIM(arr, 0) != dims[0]
            or (nd == 2 and cnp.PyArray_DIM(arr, 1) != cols)):
        raise ShapeError(f"{name} must have shape {want}, got {np.shape(arr)}")
    if not cnp.PyArray_IS_C_CONTIGUOUS(arr) or not cnp.PyArray_ISALIGNED(arr):
        raise ShapeError(f"{name} must be C-contiguous and aligned (the result is written straight into its "
                         f"memory), got strides {(<object>arr).strides}; pass a fresh np.empty({want}, np.float32), "
                         f"or omit {name} and copy the result into your view")
    if not cnp.PyArray_ISWRITEABLE(arr):
        raise InvalidArgumentError(f"{name} is read-only; pass a writeable float32 array, or omit {name}")
    return arr


cdef cnp.ndarray _unshared(cnp.ndarray x, object out):
    """x, or a copy of it when the caller's `out` array overlaps it (the C calls need them apart). Both are
    C-contiguous here (checked by _as_float32 and _output), so overlap is a comparison of two byte ranges:
    runs on every step, so no Python-level call."""
    if out is None:
        return x
    cdef cnp.ndarray o = <cnp.ndarray>out
    cdef const char *a = <const char *>cnp.PyArray_DATA(x)
    cdef const char *b = <const char *>cnp.PyArray_DATA(o)
    if a < b + cnp.PyArray_NBYTES(o) and b < a + cnp.PyArray_NBYTES(x):
        return x.copy()
    return x


cdef int _isa_code(object isa) except -1:
    """The lstm_isa of an ``isa=`` argument (None: the LSTM_EMBED_ISA environment variable, else auto)."""
    source = "isa"
    if isa is None:
        isa = os.environ.get("LSTM_EMBED_ISA") or "auto"
        source = "the LSTM_EMBED_ISA environment variable"
    if not isinstance(isa, str):
        raise ArgumentTypeError(f"isa must be a str, one of {ISAS}, got {type(isa).__name__}")
    if isa not in ISAS:
        raise InvalidArgumentError(f"{source} must be one of {ISAS}, got {isa!r}; this machine can run "
                                   f"{['auto'] + supported_isas()}")
    return ISAS.index(isa)


def _model_from_pickle(data, isa=None):
    """Rebuild a pickled Model: its bytes, and the isa asked for when it was opened (ignored when this
    machine cannot run it: the kernels differ only in fp32 rounding)."""
    if isa is not None and (isa not in ISAS or not lstm_isa_supported(<lstm_isa><int>ISAS.index(isa))):
        isa = None
    return Model.from_bytes(data, isa=isa)


def _stream_from_pickle(model, snapshot, compact=False):
    """Rebuild a pickled Stream: a new stream of ``model`` (compact or not) restored from ``snapshot``."""
    if not isinstance(model, Model):
        raise ArgumentTypeError(f"a pickled Stream needs a Model, got {type(model).__name__}")
    stream = (<Model>model).stream(compact=bool(compact))
    stream.restore(snapshot)
    return stream


@cython.no_gc_clear
cdef class Model:
    """An LSTM model loaded from a model file, validated once, shared by any number of streams.

    Create one with ``Model.load(path)`` or ``Model.from_bytes(data)``; make a stream per independent
    sequence with ``model.stream()``. A model is immutable and may be used from many threads at once.
    Pickling, copy and deepcopy carry the model's bytes.
    """
    cdef lstm_model *_m
    cdef lstm_model_info _info
    cdef cnp.ndarray _data
    cdef bint _closed
    cdef object _isa_request  # the isa= it was opened with (None: default), for pickling
    cdef object _many_work  # workspace of step_many, reused while no other thread holds it
    cdef bint _many_busy
    cdef object _step_work  # workspace of compact streams' step, reused while no other thread holds it
    cdef bint _step_busy

    def __cinit__(self):
        self._m = NULL
        self._closed = True

    def __dealloc__(self):
        if self._m != NULL:
            lstm_model_close(self._m)
            self._m = NULL

    def __init__(self, *args, **kwargs):
        raise ArgumentTypeError("use Model.load(path) or Model.from_bytes(data) to create a Model")

    @classmethod
    def from_bytes(cls, data, *, isa=None):
        """Open a model from the bytes of a model file (bytes, bytearray, memoryview, mmap or uint8 array).

        The bytes are copied once into 64-byte-aligned memory and validated: header fields, tensor
        positions and shapes, CRC32, finite weights. Raises ``ModelFormatError`` on any defect.
        ``isa`` picks the kernels: "auto" (default, or the LSTM_EMBED_ISA environment variable) or one of
        ``lstm_embed.supported_isas()``; ``UnsupportedError`` if this CPU or build lacks it,
        ``InvalidArgumentError`` for a name that is not in ``ISAS``.
        """
        cdef int code = _isa_code(isa)
        view = _byte_view(data, "model data", "; to open a file use Model.load(path)")
        cdef Model self = cls.__new__(cls)
        self._data = _aligned_bytes(view.nbytes)
        if view.nbytes:
            self._data[:] = np.frombuffer(view, dtype=np.uint8)
        cdef lstm_model *m = NULL
        cdef lstm_status st = LSTM_OK
        with nogil:
            st = lstm_model_open(cnp.PyArray_DATA(self._data), <size_t>cnp.PyArray_SIZE(self._data), &m)
        if st == LSTM_E_UNSUPPORTED_VERSION:
            st_msg = _version_message(self._data)
            _check(st, st_msg)
        _check(st, "cannot open model")
        self._m = m
        _check(lstm_model_set_isa(m, <lstm_isa>code), f"cannot use the {ISAS[code]} kernels")
        lstm_model_get_info(m, &self._info)
        if self._info.file_size < <size_t>view.nbytes:
            self._data = self._data[:self._info.file_size]
        self._isa_request = isa
        self._closed = False
        return self

    @classmethod
    def load(cls, path, *, isa=None):
        """Open a model file from disk (see ``from_bytes``). ``ModelFileError`` (an OSError; a
        ``FileNotFoundError`` if it does not exist) if it cannot be read, ``ModelFormatError`` if it is not
        a valid model file."""
        try:
            name = os.fspath(path)
        except TypeError:
            raise ArgumentTypeError(f"path must be a str or os.PathLike, got {type(path).__name__}") from None
        try:
            with open(name, "rb") as f:
                data = f.read()
        except OSError as e:
            raise model_file_error(e) from e
        try:
            return cls.from_bytes(data, isa=isa)
        except ModelFormatError as e:
            raise type(e)(f"{name}: {e}", *e.args[1:]) from None

    cdef int _opened(self) except -1:
        if self._m == NULL:
            raise ClosedModelError("this Model was never opened: create one with Model.load(path) or "
                                   "Model.from_bytes(data)")
        return 0

    cdef object _claim_many_work(self, size_t wlen):
        """The model's step_many workspace (grown to wlen bytes), marked busy, or None when another call
        holds it; the caller sets _many_busy back to False when done."""
        if self._many_busy:
            return None
        self._many_busy = True
        if self._many_work is None or <size_t>cnp.PyArray_SIZE(self._many_work) < wlen:
            self._many_work = None  # release the smaller one before allocating
            self._many_work = _empty(wlen, cnp.NPY_UINT8, "step_many's workspace")
        return self._many_work

    cdef int _usable(self) except -1:
        self._opened()
        if self._closed:
            raise ClosedModelError("this Model was closed; load it again to use it")
        return 0

    def to_bytes(self):
        """The model file's bytes, exactly as loaded."""
        self._opened()
        return self._data.tobytes()

    def save(self, path):
        """Write the model file to ``path``. ``ModelFileError`` (an OSError) if it cannot be written."""
        self._opened()
        try:
            name = os.fspath(path)
        except TypeError:
            raise ArgumentTypeError(f"path must be a str or os.PathLike, got {type(path).__name__}") from None
        try:
            with open(name, "wb") as f:
                f.write(self._data.tobytes())
        except OSError as e:
            raise model_file_error(e) from e

    def close(self):
        """Make this model and its streams unusable (memory is released when the last reference goes)."""
        self._closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __reduce__(self):
        """Pickle, copy and deepcopy as the model file's bytes (``Model.from_bytes`` when loaded)."""
        self._usable()
        return (_model_from_pickle, (self._data.tobytes(), self._isa_request))

    @property
    def closed(self):
        return self._closed

    @property
    def input_size(self):
        """Floats per input step."""
        self._opened()
        return self._info.input_size

    @property
    def hidden_size(self):
        """Units per layer (size of the cell state c)."""
        self._opened()
        return self._info.hidden_size

    @property
    def proj_size(self):
        """LSTMP projection size (size of h), 0 when the model has no projection."""
        self._opened()
        return self._info.proj_size

    @property
    def output_size(self):
        """Floats per output step: the head's size, else the top layer's h (times 2 if bidirectional)."""
        self._opened()
        return self._info.output_size

    @property
    def num_layers(self):
        self._opened()
        return self._info.num_layers

    @property
    def num_directions(self):
        """1, or 2 for a bidirectional model (whole-sequence ``Stream.run`` only)."""
        self._opened()
        return self._info.num_directions

    @property
    def head_size(self):
        """Rows of the dense head, 0 when there is none."""
        self._opened()
        return self._info.head_size

    @property
    def head_activation(self):
        self._opened()
        return ACTIVATIONS[self._info.head_activation]

    @property
    def layer_dtypes(self):
        """Numeric format of each layer's weights."""
        self._opened()
        return tuple(LAYER_DTYPES[self._info.layer_dtype[l]] for l in range(self._info.num_layers))

    @property
    def dtype(self):
        """The layers' weight format, or "mixed" when layers differ."""
        kinds = set(self.layer_dtypes)
        return kinds.pop() if len(kinds) == 1 else "mixed"

    @property
    def is_integer(self):
        """True for an integer-only model (every layer int16x8, docs/int16x8.md): ``Stream.step_int``
        steps it with int16 inputs and outputs and no floating point."""
        self._opened()
        return self._info.num_layers > 0 and all(
            self._info.layer_dtype[l] == LSTM_LAYER_INT16X8 for l in range(self._info.num_layers))

    cdef tuple _int_scales(self, str what):
        self._opened()
        cdef float in_scale = 0.0, out_scale = 0.0
        cdef lstm_status st = lstm_model_int_scales(self._m, &in_scale, &out_scale)
        if st == LSTM_E_UNSUPPORTED:
            raise UnsupportedError(
                f"{what} exists only for integer-only models (dtype 'int16x8'); this model's layers are "
                f"{self.layer_dtypes}: convert it with dtype='int16x8' and calibration data", int(st))
        _check(st, what)
        return in_scale, out_scale

    @property
    def input_scale(self):
        """Integer-only models: the real value of one input step, x = xq * input_scale (``step_int``
        takes xq = round(x / input_scale)). ``UnsupportedError`` for other models."""
        return float(self._int_scales("input_scale")[0])

    @property
    def output_scale(self):
        """Integer-only models: the real value of one output step, y = yq * output_scale (2^-15 for
        sigmoid, tanh and softmax heads and for a model without a head). ``UnsupportedError`` for other
        models."""
        return float(self._int_scales("output_scale")[1])

    @property
    def isa(self):
        """The instruction set of the kernels in use (one of ``lstm_embed.supported_isas()``)."""
        self._opened()
        return lstm_isa_name(<lstm_isa>self._info.isa).decode()

    @property
    def fingerprint(self):
        """64-bit identifier of the weights; snapshots carry it."""
        self._opened()
        return self._info.fingerprint

    @property
    def format_version(self):
        self._opened()
        return self._info.format_version

    @property
    def file_size(self):
        self._opened()
        return self._info.file_size

    @property
    def param_count(self):
        self._opened()
        return self._info.param_count

    @property
    def state_size(self):
        """Bytes of C state memory a stream of this model uses (h and c plus a step's scratch)."""
        self._opened()
        return lstm_state_size(self._m)

    @property
    def compact_state_size(self):
        """Bytes of C state memory a compact stream uses (``stream(compact=True)``): h and c of every
        layer after a 32-byte header; the scratch of a step is shared through the model's workspace."""
        self._opened()
        return lstm_compact_state_size(self._m)

    def run_workspace_size(self, steps):
        """Bytes of workspace the C ``lstm_run`` needs to process ``steps`` timesteps per pass."""
        self._opened()
        if steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")
        return lstm_run_workspace_size(self._m, <size_t>steps)

    def step_many_workspace_size(self, n):
        """Bytes of workspace the C ``lstm_step_many`` needs for ``n`` streams."""
        self._opened()
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        return lstm_step_many_workspace_size(self._m, <size_t>n)

    def __repr__(self):
        if self._m == NULL:
            return "<lstm_embed.Model (not opened)>"
        head = f" head={self.head_size}:{self.head_activation}" if self.head_size else ""
        proj = f" proj={self.proj_size}" if self.proj_size else ""
        bi = " bidirectional" if self.num_directions == 2 else ""
        return (f"<lstm_embed.Model input={self.input_size} hidden={self.hidden_size}{proj} "
                f"layers={self.num_layers}{bi}{head} dtype={self.dtype}{' closed' if self._closed else ''}>")

    def stream(self, *, compact=False):
        """A new stream (its own h and c, all zero) over this model.

        ``compact=True`` keeps only h and c per stream (``compact_state_size`` bytes, against
        ``state_size``): for servers holding thousands of streams, stepped together with ``step_many``.
        A compact stream's ``step`` borrows the model's shared workspace (a fresh one when another thread
        holds it); results are the same bits either way.
        """
        self._usable()
        return Stream(self, compact=compact)

    def step_many(self, streams, xs, out=None, *, threads=1):
        """One timestep for N streams of this model at once, as one matrix product per layer.

        ``streams`` is a sequence of N distinct ``Stream`` objects of this model (full or compact),
        ``xs`` has shape (N, input_size); returns (N, output_size), row i for stream i. Each stream's
        state advances exactly as if ``streams[i].step(xs[i])`` had been called (the same bits). On any
        error no stream changes.

        ``threads=k`` splits the streams into k groups stepped in parallel on k threads (the calling one
        and k - 1 from a pool kept by the module), each with its own workspace; the same bits as
        ``threads=1``. Worth it from a few hundred streams of a large model (each group should still
        hold tens of streams). After each call the workers spin for up to 1 ms waiting for the next one
        (a thread woken from sleep costs tens of microseconds on a VM), then sleep.
        """
        self._usable()
        if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
            raise InvalidArgumentError(f"threads must be a positive int, got {threads!r}")
        if isinstance(streams, Stream):
            raise ArgumentTypeError("streams must be a sequence of Streams; for one stream pass [stream]")
        cdef list group
        try:
            group = streams if type(streams) is list else list(streams)
        except Exception as e:
            raise ArgumentTypeError(f"streams must be a sequence (e.g. a list) of Stream objects of this model, "
                                    f"got {type(streams).__name__}") from e
        cdef Py_ssize_t n = len(group), i, marked = 0
        cdef cnp.ndarray x = _as_float32(xs, "xs")  # may run Python code (__array__): before any marking
        if x.ndim != 2 or x.shape[0] != n or x.shape[1] != self._info.input_size:
            raise ShapeError(f"xs must have shape ({n}, {self._info.input_size}) for {n} streams, "
                             f"got {np.shape(xs)}")
        cdef cnp.ndarray y = _output(out, 2, n, self._info.output_size, "out")
        x = _unshared(x, out)
        for i in range(n):
            if not isinstance(group[i], Stream) or (<Stream>group[i])._model is not self:
                _duplicate_before(group, i)  # the first offending index is the one reported
                if not isinstance(group[i], Stream):
                    raise ArgumentTypeError(f"streams[{i}] is a {type(group[i]).__name__}, not a Stream; pass "
                                            f"streams made by this model's stream()")
                raise StateError(f"streams[{i}] belongs to another Model; step_many steps streams of one "
                                 f"model together: group the streams by model")
        # distinctness is checked while marking the streams busy below (a stream found busy that is also
        # earlier in this call appears twice): no set of ids per call, which cost ~0.2 us per stream
        if n == 0:
            return y
        cdef Py_ssize_t groups = min(<Py_ssize_t>threads, n)
        if groups > 1:
            # every input checked before any group runs: a group cannot fail alone (no stream changes on error).
            # min and max (NaN propagates) without temporaries: 8.7 us at 256 x 256, np.isfinite + abs().max 19
            lo, hi = x.min(), x.max()
            if not (-2.0 ** 64 <= lo and hi <= 2.0 ** 64):
                finite = np.isfinite(x)
                if not finite.all():
                    raise NonFiniteInputError(f"step_many: xs holds NaN or infinity (first at row "
                                              f"{int(np.argwhere(~finite)[0][0])}); no stream changed",
                                              int(LSTM_E_NONFINITE_INPUT))
                raise InputRangeError("step_many: |xs| exceeds 2^64; scale or clip the inputs (normalise them "
                                      "as in training); no stream changed", int(LSTM_E_INPUT_RANGE))
        cdef cnp.ndarray ptrs = _empty(n, cnp.NPY_UINTP, "step_many's stream table")
        cdef lstm_state **states = <lstm_state **>cnp.PyArray_DATA(ptrs)
        cdef Stream s
        cdef lstm_status st = LSTM_OK
        cdef size_t wlen = lstm_step_many_workspace_size(self._m, n)
        cdef cnp.ndarray work
        cdef bint own_work = False
        # From here to the C call no Python code runs (so no other thread either): marking the streams
        # busy and taking the model's workspace are atomic under the GIL, and a buffer in use is never
        # replaced (each C call holds a reference to its workspace and only the owner replaces it).
        try:
            for i in range(n):
                s = <Stream>group[i]
                if s._busy:
                    _duplicate_before(group, i + 1)
                    raise StreamBusyError(f"streams[{i}] is in use by another thread; a stream may be used "
                                          f"by one thread at a time (give each thread its own streams)")
                s._busy = True
                marked = i + 1
                states[i] = s._s
            if groups > 1:
                st = _step_many_threaded(self, states, n, x, y, groups)
            else:  # the model's workspace unless another thread is using it
                work = self._claim_many_work(wlen)
                own_work = work is not None
                if not own_work:
                    work = _empty(wlen, cnp.NPY_UINT8, "step_many's workspace")
            if groups == 1:
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


def _duplicate_before(list group, Py_ssize_t end):
    """Raise InvalidArgumentError for the first of group[:end] that repeats an earlier item (error paths
    only: quadratic)."""
    cdef Py_ssize_t i, j
    for i in range(1, end):
        for j in range(i):
            if group[j] is group[i]:
                raise InvalidArgumentError(f"streams[{i}] appears twice: step_many needs distinct streams "
                                           f"(step a stream once per timestep)")


class _Worker:
    """A persistent thread for step_many(threads=k) that runs one group of streams per hand-off. The
    hand-off is a lock pair, not a ThreadPoolExecutor (55-59 us for submit + wait), and each side first
    spins on a flag without the GIL (_Flag) before it sleeps on its lock: on this project's 2-vCPU KVM
    guest every wake-up of a sleeping thread costs about 37 us (a lock round trip 75-85 us), which cost
    the two-thread step_many 130-180 us per call at N = 256, H = 256 (C: 1.86-2.3x with two threads,
    Python 1.2-1.55x). A worker spins up to SPIN_IDLE seconds for its next job after each one (a core busy
    that long after every threaded call), the caller up to SPIN_WAIT for a result; past those they sleep,
    so the locks alone decide correctness. The worker keeps its own workspace between calls."""

    SPIN_IDLE = 0.001
    SPIN_WAIT = 0.02

    def __init__(self):
        import threading
        self.start = threading.Lock()
        self.start.acquire()
        self.done = threading.Lock()
        self.done.acquire()
        self.posted = _Flag()    # the number of the last job handed over (set by _run_group)
        self.finished = _Flag()  # the number of the last job finished
        self.seq = 0
        self.job = None
        self.result = None
        self.work = None
        threading.Thread(target=self._loop, name="lstm_embed.step_many", daemon=True).start()

    def _loop(self):
        seq = 1
        self.posted.spin(seq, _Worker.SPIN_IDLE)
        while True:
            self.start.acquire()  # at once when the job was posted: submit() released it before
            try:
                m, states, n, x, y = self.job
                self.result = _step_many_group(m, states, n, x, y, self)
            except BaseException as e:  # handed to the caller, which raises it; the worker lives on
                self.result = e
            self.job = None
            self.done.release()
            self.finished.set_and_spin(seq, self.posted, seq + 1, _Worker.SPIN_IDLE)
            seq += 1

    def submit(self, job):
        """Hand over a job: a sleeping worker starts at once, a spinning one when _run_group sets its
        `posted` flag."""
        self.seq += 1
        self.job = job
        self.start.release()

    def wait(self):
        self.finished.spin(self.seq, _Worker.SPIN_WAIT)
        self.done.acquire()
        return self.result


_idle_workers = []
_workers_lock = None


def _take_workers(k: int) -> list:
    """k workers for one threaded step_many, each used by one call at a time: idle ones first, new ones
    for the rest (so concurrent calls from several threads never share a worker)."""
    global _workers_lock
    import threading
    if _workers_lock is None:
        _workers_lock = threading.Lock()
    with _workers_lock:
        taken = _idle_workers[-k:] if k else []
        del _idle_workers[len(_idle_workers) - len(taken):]
    return taken + [_Worker() for _ in range(k - len(taken))]


def _return_workers(workers: list):
    with _workers_lock:
        _idle_workers.extend(workers)


def _forget_workers():
    """After fork the child has none of the parent's threads: its idle list must not hand out dead ones."""
    global _workers_lock
    _idle_workers.clear()
    _workers_lock = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_workers)


cdef int _run_group(Model m, uintptr_t states, size_t n, uintptr_t x, uintptr_t y, cnp.ndarray work,
                    list post=None) except? -1:
    """lstm_step_many on one group of n streams, with `work` (at least the workspace size for n). The
    workers in `post` (jobs submitted) are let go inside the GIL-free section, right before the C call: a
    spinning worker that sees its flag then finds the GIL free instead of sleeping until this thread
    drops it (a wake-up costs tens of microseconds on a VM)."""
    cdef void *wp = cnp.PyArray_DATA(work)
    cdef size_t wlen = <size_t>cnp.PyArray_SIZE(work)
    cdef lstm_status st
    cdef Py_ssize_t k = len(post) if post else 0, i
    cdef long **flags = NULL
    cdef long *seqs = NULL
    if k:
        flags = <long **>PyMem_Malloc(k * sizeof(long *))
        seqs = <long *>PyMem_Malloc(k * sizeof(long))
        if flags == NULL or seqs == NULL:
            PyMem_Free(flags)
            PyMem_Free(seqs)
            raise MemoryError("step_many: no memory for the workers' flags")
        for i in range(k):
            flags[i] = &(<_Flag>post[i].posted).value
            seqs[i] = post[i].seq
    with nogil:
        for i in range(k):
            lstm_embed_flag_set(flags[i], seqs[i])
        st = lstm_step_many(m._m, <lstm_state *const *>states, n, <const float *>x, <float *>y, wp, wlen)
    PyMem_Free(flags)
    PyMem_Free(seqs)
    return <int>st


def _step_many_group(Model m, uintptr_t states, size_t n, uintptr_t x, uintptr_t y, holder):
    """One group of a threaded step_many, with `holder.work` (holder: the worker running it; the buffer is
    grown when too small and kept for the next call)."""
    cdef size_t wlen = lstm_step_many_workspace_size(m._m, n)
    if holder.work is None or <size_t>cnp.PyArray_SIZE(holder.work) < wlen:
        holder.work = None
        holder.work = _empty(wlen, cnp.NPY_UINT8, "step_many's workspace")
    return _run_group(m, states, n, x, y, holder.work)


cdef lstm_status _step_many_threaded(Model m, lstm_state **states, Py_ssize_t n, cnp.ndarray x, cnp.ndarray y,
                                     Py_ssize_t groups) except? LSTM_E_INVALID_ARGUMENT:
    """Streams [0, n) in `groups` contiguous groups, groups 1.. on workers, group 0 on this thread (with the
    model's workspace when no other call holds it)."""
    cdef size_t inp = m._info.input_size, outp = m._info.output_size
    cdef uintptr_t xs = <uintptr_t>cnp.PyArray_DATA(x), ys = <uintptr_t>cnp.PyArray_DATA(y)
    cdef uintptr_t sp = <uintptr_t>states
    bounds = [n * g // groups for g in range(groups + 1)]
    workers = _take_workers(groups - 1)
    started = []
    codes = []
    own = False
    try:
        for g in range(1, groups):
            workers[g - 1].submit((m, sp + bounds[g] * sizeof(lstm_state *), bounds[g + 1] - bounds[g],
                                   xs + bounds[g] * inp * sizeof(float), ys + bounds[g] * outp * sizeof(float)))
            started.append(workers[g - 1])
        wlen = lstm_step_many_workspace_size(m._m, bounds[1])
        work = m._claim_many_work(wlen)  # group 0: the model's workspace unless another call holds it
        own = work is not None
        if not own:
            work = _empty(wlen, cnp.NPY_UINT8, "step_many's workspace")
        codes.append(_run_group(m, sp, bounds[1], xs, ys, work, started))
    finally:  # every group has finished before the caller releases the streams, whatever happened here
        results = [w.wait() for w in started]
        if own:
            m._many_busy = False
        _return_workers(workers)
    for r in results:
        if isinstance(r, BaseException):
            raise r
    codes += results
    for code in codes:
        if code != LSTM_OK:
            return <lstm_status>code
    return LSTM_OK


@cython.no_gc_clear
cdef class Stream:
    """One sequence's state (h and c of every layer) over a shared Model.

    ``step(x)`` advances one timestep; ``run(xs)`` advances T timesteps with the same numbers.
    A stream must not be used from two threads at the same time (that raises ``StreamBusyError``);
    different streams of one model may run in parallel threads, the GIL is released in the C calls.
    Non-finite inputs raise ``NonFiniteInputError`` and leave the state unchanged. Pickling, copy and
    deepcopy carry the model and a snapshot: the copy continues exactly where this stream is.
    """
    cdef Model _model
    cdef cnp.ndarray _buf   # a full state's memory (None for a compact stream)
    cdef void *_mem         # a compact state's memory (PyMem_Malloc: no array object per stream)
    cdef bint _compact
    cdef lstm_state *_s
    cdef cnp.ndarray _work  # run()'s workspace; only the thread that marked the stream busy touches it
    cdef bint _busy
    cdef Py_ssize_t _in
    cdef Py_ssize_t _out

    def __cinit__(self, *args, **kwargs):
        self._mem = NULL
        compact = kwargs.pop("compact", False)
        model = args[0] if len(args) == 1 and not kwargs else kwargs.get("model") if not args else None
        if not isinstance(model, Model) or len(args) + len(kwargs) != 1:
            raise ArgumentTypeError("Stream needs one argument, an open Model; use model.stream()")
        cdef Model m = <Model>model
        m._usable()
        self._model = m
        self._compact = bool(compact)
        cdef size_t size
        cdef lstm_state *s = NULL
        if self._compact:
            size = lstm_compact_state_size(m._m)
            self._mem = PyMem_Malloc(size)  # 8-byte aligned (Python's allocators align to 16 on 64-bit)
            if self._mem == NULL:
                raise LstmMemoryError(f"no memory for a compact stream ({size} bytes)")
            _check(lstm_compact_state_init(m._m, self._mem, size, &s), "cannot create stream")
        else:
            size = lstm_state_size(m._m)
            self._buf = _aligned_bytes(size)
            _check(lstm_state_init(m._m, cnp.PyArray_DATA(self._buf), size, &s), "cannot create stream")
        self._s = s
        self._work = None
        self._busy = False
        self._in = m._info.input_size
        self._out = m._info.output_size

    def __dealloc__(self):
        if self._mem != NULL:
            PyMem_Free(self._mem)
            self._mem = NULL

    @property
    def model(self):
        return self._model

    @property
    def compact(self):
        """True for a stream made with ``model.stream(compact=True)`` (h and c only)."""
        return self._compact

    def __reduce__(self):
        """Pickle, copy and deepcopy as (model, snapshot, compact): the copy continues bit for bit."""
        return (_stream_from_pickle, (self._model, self.snapshot(), self._compact))

    def __repr__(self):
        return f"<lstm_embed.Stream of {self._model!r}>"

    cdef int _enter(self) except -1:
        """Mark the stream busy (every method does this before touching the state or the workspace)."""
        if self._model._closed:
            raise ClosedModelError("the Model of this stream was closed; load the model again and restore "
                                   "a snapshot into one of its streams")
        if self._busy:
            raise StreamBusyError("this Stream is in use by another thread; a stream may be used by one "
                                  "thread at a time: give each thread its own stream (model.stream()), or "
                                  "serialise the calls with a lock")
        self._busy = True
        return 0

    def step(self, x, out=None):
        """Advance one timestep. ``x``: input_size real numbers; returns (output_size,) float32.

        Pass ``out`` (a float32 array of shape (output_size,)) to write the result there instead of
        allocating. Raises ``ShapeError`` for a wrong length, ``DTypeError`` for non-numeric input,
        ``NonFiniteInputError`` for NaN/Inf and ``InputRangeError`` for |x| > 2^64 (the state is then
        unchanged).
        """
        cdef cnp.ndarray xa = _as_float32(x, "x")
        if cnp.PyArray_NDIM(xa) != 1 or cnp.PyArray_DIM(xa, 0) != self._in:
            raise ShapeError(f"x must have shape ({self._in},), got {np.shape(x)}")
        cdef cnp.ndarray ya = _output(out, 1, 0, self._out, "out")
        xa = _unshared(xa, out)
        cdef const float *xp = <const float *>cnp.PyArray_DATA(xa)
        cdef float *yp = <float *>cnp.PyArray_DATA(ya)
        cdef lstm_status st = LSTM_OK
        cdef Model model = self._model
        cdef bint own_work = False
        cdef cnp.ndarray work
        cdef size_t wlen
        self._enter()
        try:
            if not self._compact:
                with nogil:
                    st = lstm_step(self._s, xp, yp)
            else:  # the scratch from the model's workspace, or a fresh one if another thread holds it
                wlen = lstm_step_workspace_size(model._m)
                if not model._step_busy:
                    model._step_busy = True
                    own_work = True
                    if model._step_work is None:
                        model._step_work = _empty(wlen, cnp.NPY_UINT8, "step's workspace")
                    work = model._step_work
                else:
                    work = _empty(wlen, cnp.NPY_UINT8, "step's workspace")
                with nogil:
                    st = lstm_step_ws(self._s, xp, yp, cnp.PyArray_DATA(work), wlen)
        finally:
            self._busy = False
            if own_work:
                model._step_busy = False
        if st != LSTM_OK:
            if st == LSTM_E_UNSUPPORTED and self._model._info.num_directions == 2:
                raise UnsupportedError(
                    "step() streams one timestep at a time, which needs a unidirectional model: the backward "
                    "direction of a bidirectional LSTM reads the sequence from its end. Use run(xs) on the "
                    "whole sequence.", int(st))
            _check(st, "step")
        return ya

    def step_int(self, x, out=None):
        """Advance one timestep of an integer-only (int16x8) model with no floating point at all:
        ``x`` an int16 numpy array of input_size values (the real input is x * model.input_scale);
        returns (output_size,) int16 (the real output is y * model.output_scale). The same step as
        ``step`` on float inputs that quantise to x: the same state afterwards, bit for bit.

        Pass ``out`` (an int16 array of shape (output_size,)) to write the result there. Raises
        ``DTypeError`` for an array that is not int16 (nothing is converted: pass np.int16 values),
        ``ShapeError`` for a wrong length, ``UnsupportedError`` for a model that is not integer-only or a
        compact stream (the integer step uses the scratch of a full stream: ``model.stream()``).
        """
        if not cnp.PyArray_Check(x) or cnp.PyArray_TYPE(<cnp.ndarray>x) != cnp.NPY_INT16:
            got = f"dtype {x.dtype}" if isinstance(x, np.ndarray) else type(x).__name__
            raise DTypeError(f"step_int takes x as a numpy int16 array (the quantised input, "
                             f"np.asarray(xq, dtype=np.int16)), got {got}; for real-valued input use step(x)")
        cdef cnp.ndarray xa = <cnp.ndarray>x
        if cnp.PyArray_NDIM(xa) != 1 or cnp.PyArray_DIM(xa, 0) != self._in:
            raise ShapeError(f"x must have shape ({self._in},), got {np.shape(x)}")
        if not cnp.PyArray_ISCARRAY_RO(xa):  # strided, misaligned or byte-swapped int16
            xa = np.ascontiguousarray(xa, dtype=np.dtype(np.int16).newbyteorder("="))
        cdef cnp.npy_intp n = self._out
        cdef cnp.ndarray ya
        if out is None:
            ya = _empty(n, cnp.NPY_INT16, "the output")
        else:
            if not cnp.PyArray_Check(out) or cnp.PyArray_TYPE(<cnp.ndarray>out) != cnp.NPY_INT16 \
                    or not cnp.PyArray_ISNOTSWAPPED(<cnp.ndarray>out):
                raise DTypeError(f"out must be a native int16 numpy array of shape ({self._out},) "
                                 f"(np.empty({self._out}, np.int16)), got "
                                 f"{out.dtype if isinstance(out, np.ndarray) else type(out).__name__}")
            ya = <cnp.ndarray>out
            if cnp.PyArray_NDIM(ya) != 1 or cnp.PyArray_DIM(ya, 0) != n:
                raise ShapeError(f"out must have shape ({self._out},), got {np.shape(out)}")
            if not cnp.PyArray_IS_C_CONTIGUOUS(ya) or not cnp.PyArray_ISALIGNED(ya):
                raise ShapeError("out must be C-contiguous and aligned; pass a fresh "
                                 f"np.empty(({self._out},), np.int16)")
            if not cnp.PyArray_ISWRITEABLE(ya):
                raise InvalidArgumentError("out is read-only; pass a writeable int16 array, or omit out")
            xa = _unshared(xa, out)
        if self._compact and self._model.is_integer:
            raise UnsupportedError("step_int needs a full stream (model.stream()): the integer step uses the "
                                   "stream's own scratch, which a compact stream does not have",
                                   int(LSTM_E_UNSUPPORTED))
        cdef const int16_t *xp = <const int16_t *>cnp.PyArray_DATA(xa)
        cdef int16_t *yp = <int16_t *>cnp.PyArray_DATA(ya)
        cdef lstm_status st = LSTM_OK
        self._enter()
        try:
            with nogil:
                st = lstm_step_int(self._s, xp, yp)
        finally:
            self._busy = False
        if st == LSTM_E_UNSUPPORTED:
            raise UnsupportedError(
                f"step_int steps integer-only models (dtype 'int16x8'); this model's layers are "
                f"{self._model.layer_dtypes}: use step(x) with float input", int(st))
        _check(st, "step_int")
        return ya

    def run(self, xs, out=None):
        """Advance T timesteps: ``xs`` of shape (T, input_size) -> (T, output_size) float32.

        The same bits as T calls of ``step``, but the input projection of all steps is one matrix
        product. T may be 0. On a bidirectional model ``xs`` is one whole
        sequence, both directions start from zero and the stream's state is not used.
        """
        cdef cnp.ndarray xa = _as_float32(xs, "xs")
        if cnp.PyArray_NDIM(xa) != 2 or cnp.PyArray_DIM(xa, 1) != self._in:
            raise ShapeError(f"xs must have shape (T, {self._in}), got {np.shape(xs)}")
        cdef size_t T = <size_t>cnp.PyArray_DIM(xa, 0)
        cdef cnp.ndarray ya = _output(out, 2, <Py_ssize_t>T, self._out, "out")
        xa = _unshared(xa, out)
        cdef const float *xp = <const float *>cnp.PyArray_DATA(xa)
        cdef float *yp = <float *>cnp.PyArray_DATA(ya)
        cdef size_t wlen
        cdef cnp.ndarray work
        cdef lstm_status st = LSTM_OK
        # Busy first: the workspace belongs to the thread that holds the stream. (Replacing it before
        # marking the stream busy freed the buffer another thread's lstm_run was writing into.)
        self._enter()
        try:
            if T:
                chunk = T if self._model._info.num_directions == 2 else min(T, _RUN_CHUNK)
                wlen = lstm_run_workspace_size(self._model._m, chunk)
                if wlen == <size_t>-1:
                    raise LstmMemoryError(f"a sequence of {T} steps needs more workspace than memory can "
                                          f"address; split it")
                if self._work is None or <size_t>cnp.PyArray_SIZE(self._work) < wlen:
                    self._work = None  # release the smaller one before allocating
                    self._work = _empty(<cnp.npy_intp>wlen, cnp.NPY_UINT8, f"run's workspace for {T} steps")
                work = self._work
                with nogil:
                    st = lstm_run(self._s, xp, T, yp, cnp.PyArray_DATA(work), wlen)
        finally:
            self._busy = False
        _check(st, "run")
        return ya

    def trace(self, xs):
        """Advance T timesteps like ``run`` and return what every layer did: a ``lstm_embed.trace.Trace``
        with the gate activations (T, layers, 4, hidden) in the order i, f, g, o, the cell state c
        (T, layers, hidden) and h (T, layers, proj or hidden) after each step, and the outputs y
        (T, output_size). Computed by the C step itself (lstm_step_trace), so y and the state are the
        same bits as ``step``. Every input is checked first: on an error the stream is unchanged.
        """
        from lstm_embed.trace import Trace

        cdef Model model = self._model
        if model._info.num_directions == 2:
            raise UnsupportedError("trace() steps the model one timestep at a time, which needs a unidirectional "
                                   "model (the backward direction reads the sequence from its end)")
        cdef cnp.ndarray xa = _as_float32(xs, "xs")
        if cnp.PyArray_NDIM(xa) != 2 or cnp.PyArray_DIM(xa, 1) != self._in:
            raise ShapeError(f"xs must have shape (T, {self._in}), got {np.shape(xs)}")
        if xa.size and not np.isfinite(xa).all():
            raise NonFiniteInputError("trace: xs holds NaN or infinity; the stream is unchanged",
                                      int(LSTM_E_NONFINITE_INPUT))
        if xa.size and np.abs(xa).max() > 2.0 ** 64:
            raise InputRangeError("trace: |xs| exceeds 2^64; scale or clip the inputs; the stream is unchanged",
                                  int(LSTM_E_INPUT_RANGE))
        xa = np.ascontiguousarray(xa)
        cdef Py_ssize_t T = cnp.PyArray_DIM(xa, 0), t
        cdef size_t nf = lstm_trace_floats(model._m)
        cdef cnp.ndarray tr = np.zeros((T, nf), np.float32), ya = np.zeros((T, self._out), np.float32)
        cdef lstm_status st = LSTM_OK
        cdef Stream full = self
        if self._compact:  # a compact state has no scratch: trace a full copy, then copy the state back
            full = model.stream()
            full.restore(self.snapshot())
        full._enter()
        try:
            for t in range(T):
                with nogil:
                    st = lstm_step_trace(full._s, <const float *>cnp.PyArray_DATA(xa) + t * self._in,
                                         <float *>cnp.PyArray_DATA(ya) + t * self._out,
                                         <float *>cnp.PyArray_DATA(tr) + t * nf)
                if st != LSTM_OK:
                    break
        finally:
            full._busy = False
        _check(st, "trace")
        if self._compact:
            self.restore(full.snapshot())
        H, hr, L = model._info.hidden_size, model._info.proj_size or model._info.hidden_size, model._info.num_layers
        per = tr.reshape(T, L, 5 * H + hr)
        return Trace(gates=per[:, :, :4 * H].reshape(T, L, 4, H).copy(), c=per[:, :, 4 * H:5 * H].copy(),
                     h=per[:, :, 5 * H:].copy(), y=ya)

    def reset(self):
        """Set h and c of every layer back to zero."""
        self._enter()
        try:
            st = lstm_state_reset(self._s)
        finally:
            self._busy = False
        _check(st, "reset")

    def snapshot(self):
        """The stream's h and c as bytes (with the model fingerprint and a CRC32), for ``restore``."""
        cdef size_t n
        cdef unsigned char[::1] view
        self._enter()
        try:
            n = lstm_snapshot_size(self._model._m)
            blob = bytearray(n)
            view = blob
            st = lstm_state_snapshot(self._s, &view[0], n)
        finally:
            self._busy = False
        _check(st, "snapshot")
        return bytes(blob)

    def restore(self, blob):
        """Continue from a ``snapshot``. ``StateError`` if it is damaged or from another model's weights;
        the state is unchanged then."""
        cdef const unsigned char[::1] view = _byte_view(blob, "snapshot", "; pass the bytes snapshot() returned")
        cdef unsigned char empty = 0
        self._enter()
        try:
            st = lstm_state_restore(self._s, &view[0] if view.shape[0] else &empty, view.shape[0])
        finally:
            self._busy = False
        _check(st, "restore")
