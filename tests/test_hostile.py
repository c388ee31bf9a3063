"""Hostile callers of the public Python API, property-based (hypothesis).

Every call either works (with the numbers a clean call gives) or raises an LstmError subclass that also
derives from the matching builtin; a rejected call leaves every stream it was given unchanged (snapshot
bytes before == after). Each test predicts which class is raised from the input alone, mirroring the
documented order of the checks: the input's dtype, then float32's range, then shapes, then ``out=``, then
the C core (NaN/infinity: NonFiniteInputError, |x| > 2^64: InputRangeError).
"""
import gc
import mmap
import os
import pickle
import struct
import tempfile
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import lstm_embed
from lstm_embed import (
    ArgumentTypeError,
    ClosedModelError,
    DTypeError,
    InputRangeError,
    InvalidArgumentError,
    LstmError,
    ModelFormatError,
    NonFiniteInputError,
    ShapeError,
    StateError,
    UnsupportedError,
)

WEIGHT_DTYPES = ["float32", "int8", "int8-dynamic", "int16x8"]
BUILTINS = (ValueError, TypeError, RuntimeError, MemoryError)
MAX_ABS_INPUT = 2.0**64
SNAP_HEADER = 24  # snapshot layout (lstm_format.h): 24-byte header, h and c floats, CRC32 of all before

# int16x8 (integer-only) models need calibration inputs: N(0, 1), as warmed() feeds
CALIBRATION = np.random.default_rng(50).standard_normal((4, 20, 3)).astype(np.float32)

FAST = settings(max_examples=120, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ---- models and helpers ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def models(make_lstm, make_head):
    """Small models in every weight format: input 3, 2 layers of 4 units, a tanh head of 3 (so input and
    output sizes agree, for out= aliasing x); "bidirectional" is fp32, run() only; "twin" has other
    weights of the same shape."""
    out = {}
    for dtype in WEIGHT_DTYPES:
        data = lstm_embed.convert_torch(make_lstm(3, 4, 2, seed=51), head=make_head(4, 3, seed=51),
                                        head_activation="tanh", dtype=dtype,
                                        calibration=CALIBRATION if dtype == "int16x8" else None)
        out[dtype] = lstm_embed.Model.from_bytes(data)
    out["twin"] = lstm_embed.Model.from_bytes(lstm_embed.convert_torch(make_lstm(3, 4, 2, seed=52),
                                                                       head=make_head(4, 3, seed=52)))
    out["bidirectional"] = lstm_embed.Model.from_bytes(lstm_embed.convert_torch(
        make_lstm(3, 3, 1, bidirectional=True, seed=53), head=make_head(6, 3, seed=53)))
    return out


def warmed(model, seed=0):
    """A stream with a non-zero state."""
    stream = model.stream()
    stream.run(np.random.default_rng(seed).standard_normal((5, model.input_size)).astype(np.float32))
    return stream


def twin_of(stream):
    """A new stream of the same model in the same state."""
    twin = stream.model.stream()
    twin.restore(stream.snapshot())
    return twin


def attempt(call, streams):
    """Run call(); return ("ok", result) or ("error", exception). An error must be an LstmError subclass
    that is also a builtin exception, and must leave every stream's snapshot as it was."""
    before = [s.snapshot() for s in streams]
    try:
        return "ok", call()
    except LstmError as e:
        assert type(e) is not LstmError and isinstance(e, BUILTINS), f"{type(e).__mro__}: {e}"
        assert str(e), "an error must say what went wrong"
        assert [s.snapshot() for s in streams] == before, f"rejected call changed the state: {e!r}"
        return "error", e


def check(outcome, expected, reference=None):
    """expected: None (must succeed, then equal reference() if given) or a set of exception classes."""
    kind, value = outcome
    if expected is None:
        assert kind == "ok", f"unexpected {value!r}"
        if reference is not None:
            np.testing.assert_array_equal(value, reference())
    else:
        assert kind == "error", f"expected one of {sorted(c.__name__ for c in expected)}, the call succeeded"
        assert type(value) in expected, f"expected one of {sorted(c.__name__ for c in expected)}, got {value!r}"


def input_errors(a, shape_ok):
    """The exception classes a model must raise for the input array ``a`` (None: none), in the binding's
    order of checks."""
    if a.dtype.kind not in "fiu":
        return {DTypeError}
    with np.errstate(all="ignore"):
        f = a.astype(np.float32)
    if a.dtype.kind == "f" and a.dtype.itemsize > 4 and (np.isfinite(a) & ~np.isfinite(f)).any():
        return {InputRangeError}  # beyond float32's range
    if not shape_ok(a.shape):
        return {ShapeError}
    finite = np.isfinite(f)
    nonfinite, huge = not finite.all(), bool((np.abs(f[finite]) > MAX_ABS_INPUT).any())
    if nonfinite and huge:
        return {NonFiniteInputError, InputRangeError}
    if nonfinite:
        return {NonFiniteInputError}
    if huge:
        return {InputRangeError}
    return None


def as_float32(a):
    with np.errstate(all="ignore"):
        return np.ascontiguousarray(a, dtype=np.float32)


# ---- input arrays --------------------------------------------------------------------------------------

SPECIALS = [0.0, -0.0, 1.0, -2.5, 1e-40, -1e-45, 5e-324, 1e-300, 1e19, -1e19, 2.0**64, 1.9e19, 1e20, 1e30,
            -1e30, 3.4e38, 3.5e38, 1e300, -1e300, float("nan"), float("inf"), float("-inf")]
FLOAT_VALUES = st.one_of(st.floats(-8, 8), st.sampled_from(SPECIALS))
REAL_DTYPES = ["float16", "float32", "float64", "longdouble", ">f4", ">f8", "int8", "int16", "int32", "int64",
               "uint8", "uint64"]
OTHER_DTYPES = ["bool", "complex64", "complex128", "U3", "S3", "datetime64[s]", "timedelta64[s]"]


@st.composite
def arrays(draw, shapes):
    """An array of any dtype, shape from ``shapes``, values with NaN/Inf/huge/tiny/denormals, in any
    layout (contiguous, strided view, Fortran order, misaligned, read-only)."""
    shape = draw(shapes)
    dtype = np.dtype(draw(st.sampled_from(REAL_DTYPES + OTHER_DTYPES + ["object"])))
    if dtype.kind == "f":
        with np.errstate(all="ignore"):
            a = draw(hnp.arrays(np.float64, shape, elements=FLOAT_VALUES)).astype(dtype)
    elif dtype.kind == "O":
        a = np.empty(shape, dtype=object)
        a[...] = draw(hnp.arrays(np.float64, shape, elements=FLOAT_VALUES))
    else:
        a = draw(hnp.arrays(dtype, shape))
    layout = draw(st.sampled_from(["c", "strided", "fortran", "misaligned", "readonly"]))
    if layout == "strided" and a.ndim:
        wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
        wide[..., ::2] = a
        a = wide[..., ::2]
    elif layout == "fortran":
        a = np.asfortranarray(a)
    elif layout == "misaligned" and a.dtype.kind in "fiucb" and a.dtype.itemsize > 1:
        raw = np.zeros(a.nbytes + 1, np.uint8)[1:]
        b = raw.view(a.dtype).reshape(a.shape)
        b[...] = a
        a = b
    elif layout == "readonly":
        a = a.copy()
        a.flags.writeable = False
    return a


SIZES = st.integers(0, 5)


@FAST
@given(which=st.sampled_from(WEIGHT_DTYPES), x=arrays(st.one_of(hnp.array_shapes(min_dims=0, max_dims=2,
                                                                                 max_side=5),
                                                              st.just((3,)))))
def test_step_any_array(models, which, x):
    model = models[which]
    stream = warmed(model)
    twin = twin_of(stream)
    check(attempt(lambda: stream.step(x), [stream]), input_errors(x, lambda s: s == (3,)),
          lambda: twin.step(as_float32(x)))


@FAST
@given(which=st.sampled_from(WEIGHT_DTYPES + ["bidirectional"]),
       xs=arrays(st.one_of(hnp.array_shapes(min_dims=1, max_dims=3, max_side=6), st.tuples(SIZES, st.just(3)))))
def test_run_any_array(models, which, xs):
    model = models[which]
    stream = warmed(model)
    twin = twin_of(stream)
    check(attempt(lambda: stream.run(xs), [stream]), input_errors(xs, lambda s: len(s) == 2 and s[1] == 3),
          lambda: twin.run(as_float32(xs)))


class RaisingArray:
    """An array-like whose conversion fails (a lazy array whose backing store is gone, say)."""

    def __init__(self, exc):
        self.exc = exc

    def __array__(self, dtype=None, copy=None):
        raise self.exc


class Weird:
    pass


NOT_ARRAYS = st.sampled_from([
    None, "abc", b"abc", "", 1j, [1, 2, "3"], [[1.0, 2.0], [3.0]], [None, None, None], {"a": 1}, {1, 2, 3},
    Weird(), [Weird()] * 3, RaisingArray(RuntimeError("backing store gone")), RaisingArray(ZeroDivisionError()),
    RaisingArray(KeyError("k")), RaisingArray(ValueError("bad")), memoryview(b"abc"), bytearray(12), range(3),
    [1.0, 2.0, 3.0], (1, 2, 3), [True, False, True], 3.0, np.float64(2.0), [[1.0, 2.0, 3.0]],
    [1e300, 0.0, 0.0], [float("nan"), 0, 0], [2**70, 0, 0], [10**400, 0, 0],
])


@FAST
@given(which=st.sampled_from(WEIGHT_DTYPES), x=NOT_ARRAYS, method=st.sampled_from(["step", "run", "step_many"]))
def test_anything_as_input(models, which, x, method):
    """Objects that are not arrays: each call works or raises an LstmError subclass (a raising __array__
    or a ragged list becomes DTypeError, chained to the original exception)."""
    model = models[which]
    stream = warmed(model)
    call = {"step": lambda: stream.step(x), "run": lambda: stream.run(x),
            "step_many": lambda: model.step_many([stream], x)}[method]
    kind, value = attempt(call, [stream])
    if isinstance(x, RaisingArray):
        assert kind == "error" and type(value) is DTypeError and value.__cause__ is x.exc
    if kind == "ok":
        assert value.dtype == np.float32 and np.isfinite(value).all()


# ---- out= ----------------------------------------------------------------------------------------------

OUT_KINDS = ["none", "good", "float64", "float16", "int32", "swapped", "longer", "extra_dim", "scalar",
             "readonly", "strided", "fortran", "misaligned", "list", "tuple", "memoryview", "bytearray",
             "matrix", "alias_x"]


def make_out(kind, shape, x):
    if kind == "none":
        return None
    if kind == "alias_x":
        return x
    if kind in ("list", "tuple"):
        return (list if kind == "list" else tuple)(np.zeros(shape).ravel().tolist())
    if kind == "memoryview":
        return memoryview(np.zeros(shape, np.float32))
    if kind == "bytearray":
        return bytearray(4 * int(np.prod(shape)))
    dtype = {"float64": np.float64, "float16": np.float16, "int32": np.int32, "swapped": ">f4"}.get(kind, np.float32)
    if kind == "longer":
        shape = (shape[0] + 1,) + shape[1:]
    elif kind == "extra_dim":
        shape = shape + (1,)
    elif kind == "scalar":
        shape = ()
    out = np.full(shape, 7.0, dtype)
    if kind == "readonly":
        out.flags.writeable = False
    elif kind == "strided":
        out = np.zeros(shape[:-1] + (2 * shape[-1],), np.float32)[..., ::2]
    elif kind == "fortran":
        out = np.asfortranarray(out)
    elif kind == "misaligned":
        out = np.zeros(out.nbytes + 1, np.uint8)[1:].view(np.float32).reshape(shape)
    elif kind == "matrix":
        out = np.asmatrix(np.zeros(shape, np.float32)) if len(shape) == 2 else np.asmatrix(out)
    return out


def out_errors(out, shape):
    """The exception classes an out= argument must raise (None: accepted), in the binding's order."""
    if out is None:
        return None
    if not isinstance(out, np.ndarray):
        return {DTypeError}
    if out.dtype != np.dtype(np.float32):  # float32 in native byte order
        return {DTypeError}
    if out.shape != shape:
        return {ShapeError}
    if not (out.flags.c_contiguous and out.flags.aligned):
        return {ShapeError}
    if not out.flags.writeable:
        return {InvalidArgumentError}
    return None


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
@FAST
@given(which=st.sampled_from(WEIGHT_DTYPES), method=st.sampled_from(["step", "run", "step_many"]),
       kind=st.sampled_from(OUT_KINDS), rows=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_out_argument(models, which, method, kind, rows, seed):
    model = models[which]
    streams = [warmed(model, seed + i) for i in range(rows if method == "step_many" else 1)]
    twins = [twin_of(s) for s in streams]
    x = np.random.default_rng(seed).standard_normal((rows, 3)).astype(np.float32)
    if method == "step":
        x = x[0]
    shape = (3,) if method == "step" else (rows, 3)
    out = make_out(kind, shape, x)
    clean = x.copy()
    calls = {"step": lambda: streams[0].step(x, out=out), "run": lambda: streams[0].run(x, out=out),
             "step_many": lambda: model.step_many(streams, x, out=out)}
    refs = {"step": lambda: twins[0].step(clean), "run": lambda: twins[0].run(clean),
            "step_many": lambda: np.stack([t.step(xi) for t, xi in zip(twins, clean)])}
    expected = out_errors(out, shape)
    outcome = attempt(calls[method], streams)
    if expected is None and method == "step_many":  # one GEMM for all streams: float rounding may differ
        assert outcome[0] == "ok", outcome[1]
        np.testing.assert_allclose(outcome[1], refs[method](), rtol=0, atol=1e-5)
    else:
        check(outcome, expected, refs[method])
    if expected is None and out is not None:
        assert outcome[1] is out


# ---- step_many groups ----------------------------------------------------------------------------------

ENTRY = st.one_of(st.tuples(st.just("own"), st.integers(0, 3)), st.tuples(st.just("twin"), st.integers(0, 1)),
                  st.tuples(st.just("junk"), st.sampled_from([None, "s", 1, 2.5, b"x", [], Weird()])),
                  st.tuples(st.just("model"), st.just(0)))


@FAST
@given(which=st.sampled_from(WEIGHT_DTYPES), entries=st.lists(ENTRY, max_size=6),
       container=st.sampled_from(["list", "tuple", "generator", "none", "int", "single", "str"]),
       rows_delta=st.sampled_from([0, 0, 0, 1, -1]), cols_delta=st.sampled_from([0, 0, 0, 1]),
       seed=st.integers(0, 2**16))
def test_step_many_groups(models, which, entries, container, rows_delta, cols_delta, seed):
    model, other = models[which], models["twin"] if which != "float32" else models["int8"]
    own = [warmed(model, seed + i) for i in range(4)]
    foreign = [warmed(other, seed + 10 + i) for i in range(2)]
    group = [own[k] if tag == "own" else foreign[k] if tag == "twin" else model if tag == "model" else k
             for tag, k in entries]
    n = len(group)
    assume(n + rows_delta >= 0)
    xs = np.random.default_rng(seed).standard_normal((n + rows_delta, 3 + cols_delta)).astype(np.float32)
    arg = {"list": group, "tuple": tuple(group), "generator": (g for g in group), "none": None, "int": 7,
           "single": own[0], "str": "abc"}[container]
    twins = [twin_of(s) for s in own]

    expected = None
    if container in ("none", "int", "single"):
        expected = {ArgumentTypeError}
    elif container == "str":  # a sequence, of strings
        expected = {ShapeError} if xs.shape != (3, 3) else {ArgumentTypeError}
    elif xs.shape != (n, 3):
        expected = {ShapeError}
    else:
        seen = set()
        for g in group:
            if not isinstance(g, lstm_embed.Stream):
                expected = {ArgumentTypeError}
            elif g.model is not model:
                expected = {StateError}
            elif id(g) in seen:
                expected = {InvalidArgumentError}
            if expected:
                break
            seen.add(id(g))

    outcome = attempt(lambda: model.step_many(arg, xs), own + foreign)
    if expected is not None or n == 0:
        check(outcome, expected)
        return
    assert outcome[0] == "ok", outcome[1]
    want = np.stack([twins[own.index(g)].step(x) for g, x in zip(group, xs)])
    np.testing.assert_allclose(outcome[1], want, rtol=0, atol=1e-5)
    for g in group:  # each stream advanced by one step, as step() would
        np.testing.assert_allclose(np.frombuffer(g.snapshot()[SNAP_HEADER:-4], np.float32),
                                   np.frombuffer(twins[own.index(g)].snapshot()[SNAP_HEADER:-4], np.float32),
                                   rtol=0, atol=1e-5)


# ---- snapshots -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny(make_lstm):
    """One layer of 3 units, input 2: snapshots of 52 bytes, small enough to damage exhaustively."""
    return {dtype: lstm_embed.Model.from_bytes(lstm_embed.convert_torch(
        make_lstm(2, 3, 1, seed=54), dtype=dtype, calibration=CALIBRATION[..., :2] if dtype == "int16x8" else None))
        for dtype in WEIGHT_DTYPES}


@pytest.mark.parametrize("dtype", WEIGHT_DTYPES)
def test_every_truncation_and_bit_flip_of_a_snapshot_is_refused(tiny, dtype):
    model = tiny[dtype]
    source = warmed(model, 1)
    blob = source.snapshot()
    target = warmed(model, 2)
    damaged = [blob[:n] for n in range(len(blob))] + [blob + b"\0", blob + blob]
    for bit in range(8 * len(blob)):
        flipped = bytearray(blob)
        flipped[bit // 8] ^= 1 << (bit % 8)
        damaged.append(bytes(flipped))
    for bad in damaged:
        kind, e = attempt(lambda: target.restore(bad), [target])
        assert kind == "error" and type(e) is StateError and e.status == 13, (len(bad), e)
    target.restore(blob)  # the clean one still works
    assert target.snapshot() == blob


# not int16x8: its state words are int32, and c may be any of them but -2^31 (docs/int16x8.md), so a float's
# bits are often a valid integer state; tests/c/test_int.c checks its ranges
@pytest.mark.parametrize("dtype", [d for d in WEIGHT_DTYPES if d != "int16x8"])
@pytest.mark.parametrize("value", [3e38, -3e38, 1e30, 1e20])
def test_forged_snapshot_with_out_of_range_state_is_refused(tiny, dtype, value):
    """A snapshot with a valid CRC whose h or c is far beyond anything a model can produce (|h| <= 1
    without projection; |c| grows by at most 1 per step) is refused with status 13, whichever value."""
    model = tiny[dtype]
    blob = model.stream().snapshot()
    floats = (len(blob) - SNAP_HEADER - 4) // 4
    for i in range(floats):
        forged = bytearray(blob)
        struct.pack_into("<f", forged, SNAP_HEADER + 4 * i, value)
        struct.pack_into("<I", forged, len(forged) - 4, zlib.crc32(bytes(forged[:-4])))
        target = warmed(model, 3)
        kind, e = attempt(lambda: target.restore(bytes(forged)), [target])
        assert kind == "error" and type(e) is StateError and e.status == 13, (i, value, e)


@FAST
@given(which=st.sampled_from(WEIGHT_DTYPES), blob=st.one_of(
    st.binary(max_size=120), st.text(max_size=10), st.integers(), st.none(), st.lists(st.integers(0, 255)),
    st.sampled_from([1.5, Weird(), np.zeros(13, np.float32), np.zeros((2, 26), np.uint8)[:, ::2]])))
def test_restore_anything(tiny, which, blob):
    target = warmed(tiny[which], 4)
    kind, e = attempt(lambda: target.restore(blob), [target])
    assert kind == "error"  # a random or foreign blob is never a valid snapshot (CRC32 + fingerprint)
    if isinstance(blob, (bytes, np.ndarray)):
        assert type(e) is StateError
    else:
        assert type(e) is DTypeError


def test_restore_from_closed_or_released_buffers(tiny):
    model = tiny["float32"]
    blob = warmed(model, 5).snapshot()
    target = warmed(model, 6)
    with tempfile.TemporaryFile() as f:
        f.write(blob)
        f.flush()
        m = mmap.mmap(f.fileno(), 0)
        target.restore(m)  # an open mmap is bytes-like
        assert target.snapshot() == blob
        m.close()
        target = warmed(model, 6)
        kind, e = attempt(lambda: target.restore(m), [target])
        assert kind == "error" and type(e) is InvalidArgumentError and "closed" in str(e)
    view = memoryview(blob)
    view.release()
    kind, e = attempt(lambda: target.restore(view), [target])
    assert kind == "error" and type(e) is InvalidArgumentError


# ---- model bytes ---------------------------------------------------------------------------------------

@FAST
@given(which=st.sampled_from(WEIGHT_DTYPES), cut=st.integers(0, 10**6), flip=st.integers(-1, 10**7),
       extra=st.binary(max_size=8), form=st.sampled_from(["bytes", "bytearray", "memoryview", "uint8", "strided"]))
def test_damaged_model_bytes(tiny, which, cut, flip, extra, form):
    data = tiny[which].to_bytes()
    bad = bytearray(data[:cut % (len(data) + 1)] + extra)
    flipped = 0 <= flip < 8 * len(bad)
    if flipped:
        bad[flip // 8] ^= 1 << (flip % 8)
    if form == "strided":  # a non-contiguous view of the bytes
        wide = np.zeros(2 * len(bad), np.uint8)
        wide[::2] = np.frombuffer(bytes(bad), np.uint8)
        arg = wide[::2]
    else:
        arg = {"bytes": bytes(bad), "bytearray": bad, "memoryview": memoryview(bytes(bad)),
               "uint8": np.frombuffer(bytes(bad), np.uint8)}[form]
    intact = bytes(bad[:len(data)]) == data
    kind, value = attempt(lambda: lstm_embed.Model.from_bytes(arg), [])
    if intact:  # bytes after the file are ignored
        assert kind == "ok", value
        assert value.to_bytes() == data
    else:
        assert kind == "error" and type(value) is ModelFormatError, value


@FAST
@given(data=st.sampled_from([None, 1, 2.5, "model.lstm", ["a"], Weird(), object(), {"x": 1}]))
def test_model_from_non_bytes(data):
    kind, e = attempt(lambda: lstm_embed.Model.from_bytes(data), [])
    assert kind == "error" and type(e) is DTypeError


def test_model_from_closed_mmap(tiny):
    data = tiny["int8"].to_bytes()
    with tempfile.TemporaryFile() as f:
        f.write(data)
        f.flush()
        m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        assert lstm_embed.Model.from_bytes(m).to_bytes() == data
        m.close()
        with pytest.raises(InvalidArgumentError, match="closed"):
            lstm_embed.Model.from_bytes(m)


@pytest.mark.parametrize("dtype", ["float32", "int8"])
def test_model_with_weights_beyond_2_20_is_refused(make_lstm, dtype):
    """A weight of 3e6 (> LSTM_MAX_ABS_WEIGHT, 2^20) is finite but refused when the file opens (status 9),
    not discovered later as an overflow."""
    import torch

    lstm = make_lstm(2, 3, 1, seed=55)
    with torch.no_grad():
        lstm.weight_ih_l0[0, 0] = 3e6
    data = lstm_embed.convert_torch(lstm, dtype=dtype)
    with pytest.raises(ModelFormatError) as info:
        lstm_embed.Model.from_bytes(data)
    assert info.value.status == 9


# ---- isa, unopened objects, misc -----------------------------------------------------------------------

@FAST
@given(isa=st.one_of(st.none(), st.sampled_from(lstm_embed.ISAS), st.text(max_size=12), st.integers(),
                     st.just(b"avx2"), st.just(["auto"]), st.just("AVX2"), st.just(" auto")))
def test_isa_argument(tiny, isa):
    data = tiny["float32"].to_bytes()
    kind, value = attempt(lambda: lstm_embed.Model.from_bytes(data, isa=isa), [])
    supported = ["auto"] + lstm_embed.supported_isas()
    if isa is None or isa in supported:
        assert kind == "ok", value
        assert value.isa == (lstm_embed.best_isa() if isa in (None, "auto") else isa)
    elif not isinstance(isa, str):
        assert kind == "error" and type(value) is ArgumentTypeError
    elif isa in lstm_embed.ISAS:  # a name of the C enum this machine cannot run
        assert kind == "error" and type(value) is UnsupportedError and value.status == 18
        assert "supported_isas" in str(value)
    else:
        assert kind == "error" and type(value) is InvalidArgumentError
        assert "auto" in str(value)


def test_isa_functions():
    assert lstm_embed.ISAS == ("auto", "reference", "avx2", "avx512_vnni", "neon", "neon_dot", "cortex_m_dsp",
                               "blas", "amx_int8", "avx2_vnni")
    supported = lstm_embed.supported_isas()
    assert "reference" in supported and "auto" not in supported and set(supported) <= set(lstm_embed.ISAS)
    assert lstm_embed.best_isa() in supported
    major, minor, patch = map(int, lstm_embed.c_version().split("."))
    assert (major, minor) >= (0, 2)
    for name in ("supported_isas", "best_isa", "c_version"):
        fn = getattr(lstm_embed, name)
        assert fn.__doc__ and fn.__annotations__["return"] in ("list[str]", "str", list[str], str)
        assert name in lstm_embed.__all__


def test_status_codes_map_to_typed_errors():
    """Every C status raises an LstmError subclass that is also a builtin; 17 and 18 have their own."""
    from lstm_embed import _lstm

    for status in range(1, 19):
        cls = _lstm._STATUS_ERRORS[status]
        assert issubclass(cls, LstmError) and cls is not LstmError and issubclass(cls, BUILTINS)
        assert _lstm._STATUS_HINTS[status]
    assert _lstm._STATUS_ERRORS[17] is InputRangeError and _lstm._STATUS_ERRORS[18] is UnsupportedError
    for status in (-1, 0, 19, 2**40, -2**40):
        assert isinstance(lstm_embed.status_message(status), str)
    with pytest.raises(ArgumentTypeError):
        lstm_embed.status_message("3")


def test_unopened_and_hand_made_objects(tmp_path):
    blank = lstm_embed.Model.__new__(lstm_embed.Model)
    assert "not opened" in repr(blank)
    for call in (blank.to_bytes, lambda: blank.save(tmp_path / "m.lstm"), blank.stream,
                 lambda: blank.step_many([], np.zeros((0, 1))), lambda: blank.input_size, lambda: blank.isa,
                 lambda: blank.dtype, lambda: blank.state_size, lambda: pickle.dumps(blank)):
        with pytest.raises(ClosedModelError, match="never opened"):
            call()
    with pytest.raises(ArgumentTypeError):
        lstm_embed.Model()
    for args, kwargs in (((), {}), ((None,), {}), (("model",), {}), ((blank,), {}), ((1, 2), {}),
                         ((), {"nope": 1})):
        with pytest.raises((ArgumentTypeError, ClosedModelError)):
            lstm_embed.Stream(*args, **kwargs)
    with pytest.raises(ArgumentTypeError):
        lstm_embed.Stream.__new__(lstm_embed.Stream)
    with pytest.raises(ArgumentTypeError):
        lstm_embed.Model.load(None)
    with pytest.raises(ArgumentTypeError):
        lstm_embed.Model.load(3.5)


def test_stream_from_constructor_and_keyword(tiny):
    model = tiny["float32"]
    for stream in (lstm_embed.Stream(model), lstm_embed.Stream(model=model)):
        assert stream.model is model and stream.snapshot() == model.stream().snapshot()


def test_streams_outlive_dropped_references(tiny):
    """A stream keeps its model (and the model its bytes) alive: no use after free when the caller drops
    every other reference."""
    data = tiny["int8-dynamic"].to_bytes()
    stream = lstm_embed.Model.from_bytes(bytearray(data)).stream()
    gc.collect()
    x = np.ones((4, 2), np.float32)
    want = lstm_embed.Model.from_bytes(data).stream().run(x)
    np.testing.assert_array_equal(stream.run(x), want)


def test_file_errors_are_lstm_errors_and_os_errors(tiny, tmp_path):
    """Model.load / Model.save: the operating system's error, as an LstmError that is also the matching
    OSError subclass (so ``except FileNotFoundError`` keeps working); it pickles, for multiprocessing."""
    model = tiny["float32"]
    cases = [(lambda: lstm_embed.Model.load(tmp_path / "missing.lstm"), FileNotFoundError),
             (lambda: lstm_embed.Model.load(tmp_path), IsADirectoryError),
             (lambda: model.save(tmp_path / "no" / "such" / "dir.lstm"), FileNotFoundError),
             (lambda: model.save(tmp_path), IsADirectoryError)]
    for call, builtin in cases:
        with pytest.raises(lstm_embed.ModelFileError) as info:
            call()
        e = info.value
        assert isinstance(e, builtin) and isinstance(e, LstmError) and e.status is None
        assert e.errno is not None and str(tmp_path) in str(e) and str(e).startswith("[Errno")
        again = pickle.loads(pickle.dumps(e))
        assert type(again) is type(e) and str(again) == str(e)
    model.save(tmp_path / "ok.lstm")
    assert lstm_embed.Model.load(tmp_path / "ok.lstm").to_bytes() == model.to_bytes()


def test_isa_from_the_environment(tiny, monkeypatch):
    data = tiny["float32"].to_bytes()
    monkeypatch.setenv("LSTM_EMBED_ISA", "bogus")
    with pytest.raises(InvalidArgumentError, match="LSTM_EMBED_ISA"):
        lstm_embed.Model.from_bytes(data)
    assert lstm_embed.Model.from_bytes(data, isa="reference").isa == "reference"  # an explicit isa wins
    missing = [name for name in lstm_embed.ISAS[1:] if name not in lstm_embed.supported_isas()]
    if missing:
        monkeypatch.setenv("LSTM_EMBED_ISA", missing[0])
        with pytest.raises(UnsupportedError):
            lstm_embed.Model.from_bytes(data)
    monkeypatch.setenv("LSTM_EMBED_ISA", "reference")
    assert lstm_embed.Model.from_bytes(data).isa == "reference"
