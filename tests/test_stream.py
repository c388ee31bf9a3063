"""Stream behaviour: run == step, state carry-over, reset, snapshots, input checking and errors."""
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
    StreamBusyError,
    UnsupportedError,
)

# Snapshot layout (src/lstm_c/lstm_format.h): a 24-byte header, the floats, then a CRC32 of all before it.
SNAP_HEADER = 24


def inputs(rng, steps, size):
    return rng.standard_normal((steps, size)).astype(np.float32)


def step_loop(stream, xs):
    """Outputs of stream.step over xs, as a (T, output_size) array."""
    return np.stack([stream.step(x) for x in xs]) if len(xs) else np.zeros((0, stream.model.output_size), np.float32)


def continues_like(stream, twin, rng, steps=20):
    """True when stream and twin give bitwise equal outputs for the same next inputs (same state)."""
    xs = inputs(rng, steps, stream.model.input_size)
    return np.array_equal(step_loop(stream, xs), step_loop(twin, xs))


# ---- run and step --------------------------------------------------------------------------------------

@pytest.mark.parametrize("steps", [0, 1, 7, 127, 128, 129, 257])
def test_run_equals_step_loop(model, rng, steps):
    xs = inputs(rng, steps, model.input_size)
    got = model.stream().run(xs)
    assert got.shape == (steps, model.output_size) and got.dtype == np.float32
    np.testing.assert_allclose(got, step_loop(model.stream(), xs), rtol=0, atol=1e-6)


def test_run_then_step_continues_the_state(model, rng):
    xs = inputs(rng, 300, model.input_size)
    mixed = model.stream()
    parts = [mixed.run(xs[:131]), step_loop(mixed, xs[131:140]), mixed.run(xs[140:])]
    np.testing.assert_allclose(np.concatenate(parts), step_loop(model.stream(), xs), rtol=0, atol=1e-6)


def test_state_is_carried_between_steps(model, rng):
    """Outputs depend on the past: the same input after different histories gives different outputs."""
    x = inputs(rng, 1, model.input_size)[0]
    first = model.stream().step(x)
    seasoned = model.stream()
    seasoned.run(inputs(rng, 10, model.input_size))
    assert np.abs(seasoned.step(x) - first).max() > 1e-3


def test_reset_restores_the_zero_state(model, rng):
    stream = model.stream()
    stream.run(inputs(rng, 50, model.input_size))
    stream.reset()
    assert continues_like(stream, model.stream(), rng)


def test_streams_are_independent(model, rng):
    a, b, fresh = model.stream(), model.stream(), model.stream()
    a.run(inputs(rng, 30, model.input_size))
    assert continues_like(b, fresh, rng)


@settings(max_examples=25, deadline=None, database=None)
@given(inp=st.integers(1, 6), hidden=st.integers(1, 12), layers=st.integers(1, 3), use_proj=st.booleans(),
       steps=st.integers(0, 300), seed=st.integers(0, 2**16))
def test_run_equals_step_property(make_lstm, convert, inp, hidden, layers, use_proj, steps, seed):
    proj = hidden // 2 if use_proj else 0
    model = convert(make_lstm(inp, hidden, layers, proj_size=proj, seed=seed))
    xs = inputs(np.random.default_rng(seed), steps, inp)
    np.testing.assert_allclose(model.stream().run(xs), step_loop(model.stream(), xs), rtol=0, atol=1e-6)


# ---- snapshots -----------------------------------------------------------------------------------------

def test_snapshot_restore_resumes_exactly(model, rng):
    stream = model.stream()
    stream.run(inputs(rng, 40, model.input_size))
    blob = stream.snapshot()
    assert isinstance(blob, bytes)
    resumed = model.stream()
    resumed.restore(blob)
    assert continues_like(stream, resumed, rng)


def test_snapshot_restores_into_another_model_object_with_the_same_weights(model, rng):
    same = lstm_embed.Model.from_bytes(model.to_bytes())
    stream = model.stream()
    stream.run(inputs(rng, 40, model.input_size))
    resumed = same.stream()
    resumed.restore(stream.snapshot())
    assert continues_like(stream, resumed, rng)


def test_restore_rewinds(model, rng):
    stream = model.stream()
    stream.run(inputs(rng, 10, model.input_size))
    blob = stream.snapshot()
    xs = inputs(rng, 15, model.input_size)
    first = stream.run(xs)
    stream.restore(blob)
    np.testing.assert_array_equal(stream.run(xs), first)


def test_snapshot_of_fresh_stream_acts_as_reset(model, rng):
    blob = model.stream().snapshot()
    stream = model.stream()
    stream.run(inputs(rng, 25, model.input_size))
    stream.restore(blob)
    assert continues_like(stream, model.stream(), rng)


def test_snapshot_from_other_weights_is_rejected(model, twin_model, rng):
    other = twin_model.stream()
    other.run(inputs(rng, 5, twin_model.input_size))
    stream, twin = model.stream(), model.stream()
    for s in (stream, twin):
        s.run(inputs(np.random.default_rng(1), 5, model.input_size))
    with pytest.raises(StateError) as info:
        stream.restore(other.snapshot())
    assert info.value.status == 12
    assert continues_like(stream, twin, rng)


def test_snapshot_from_another_shape_is_rejected(model, bidir_model):
    with pytest.raises(StateError):
        model.stream().restore(bidir_model.stream().snapshot())


def damaged_snapshots(blob):
    """Truncations at every length, one bit flipped in every byte, extra bytes, empty."""
    for n in range(len(blob)):
        yield blob[:n]
    for i in range(len(blob)):
        flipped = bytearray(blob)
        flipped[i] ^= 1 << (i % 8)
        yield bytes(flipped)
    yield blob + b"\0"
    yield b""


def test_damaged_snapshots_are_rejected_and_leave_the_state_unchanged(model, rng):
    source = model.stream()
    source.run(inputs(rng, 30, model.input_size))
    blob = source.snapshot()
    stream, twin = model.stream(), model.stream()
    warm = inputs(rng, 12, model.input_size)
    stream.run(warm)
    twin.run(warm)
    count = 0
    for bad in damaged_snapshots(blob):
        with pytest.raises(StateError) as info:
            stream.restore(bad)
        assert info.value.status == 13
        count += 1
    assert count == 2 * len(blob) + 2
    assert continues_like(stream, twin, rng)


def test_forged_snapshot_with_nan_is_rejected(model, rng):
    """A blob with a valid CRC whose state holds NaN (forged, or a broken state) must not be loaded."""
    blob = bytearray(model.stream().snapshot())
    struct.pack_into("<f", blob, SNAP_HEADER, float("nan"))
    struct.pack_into("<I", blob, len(blob) - 4, zlib.crc32(bytes(blob[:-4])))
    stream = model.stream()
    with pytest.raises(StateError) as info:
        stream.restore(bytes(blob))
    assert info.value.status == 13
    assert continues_like(stream, model.stream(), rng)


def test_restore_needs_bytes(model):
    with pytest.raises(DTypeError):
        model.stream().restore(12345)


# ---- inputs and outputs --------------------------------------------------------------------------------

def test_step_accepts_lists_float64_and_ints(model):
    x = np.arange(model.input_size) * 3 - 5
    want = model.stream().step(x.astype(np.float32))
    for form in (x.tolist(), tuple(x.tolist()), x.astype(np.float64), x.astype(np.int64), x.astype(np.int8),
                 x.astype(np.float16)):
        np.testing.assert_array_equal(model.stream().step(form), want)
    np.testing.assert_array_equal(model.stream().step(np.arange(model.input_size, dtype=np.uint16)),
                                  model.stream().step(np.arange(model.input_size, dtype=np.float32)))


def test_step_accepts_non_contiguous_input(model, rng):
    wide = inputs(rng, 1, 2 * model.input_size)[0]
    np.testing.assert_array_equal(model.stream().step(wide[::2]), model.stream().step(wide[::2].copy()))


def test_run_accepts_fortran_order_and_float64(model, rng):
    xs = inputs(rng, 20, model.input_size)
    want = model.stream().run(xs)
    np.testing.assert_array_equal(model.stream().run(np.asfortranarray(xs)), want)
    np.testing.assert_array_equal(model.stream().run(xs.astype(np.float64)), want)


def test_out_parameter_receives_the_result(model, rng):
    xs = inputs(rng, 9, model.input_size)
    out = np.full(model.output_size, 7.0, np.float32)
    stream, twin = model.stream(), model.stream()
    assert stream.step(xs[0], out=out) is out
    np.testing.assert_array_equal(out, twin.step(xs[0]))
    outs = np.full((8, model.output_size), 7.0, np.float32)
    assert stream.run(xs[1:], out=outs) is outs
    np.testing.assert_array_equal(outs, twin.run(xs[1:]))


@pytest.mark.parametrize("call", ["step", "run", "step_many"])
def test_wrong_out_is_rejected(model, call):
    stream = model.stream()
    o, i = model.output_size, model.input_size
    shapes = {"step": (o,), "run": (3, o), "step_many": (1, o)}
    xs = {"step": np.zeros(i), "run": np.zeros((3, i)), "step_many": np.zeros((1, i))}[call]

    def go(out):
        if call == "step_many":
            return model.step_many([stream], xs, out=out)
        return getattr(stream, call)(xs, out=out)

    good = shapes[call]
    with pytest.raises(ShapeError):
        go(np.zeros((good[0] + 1,) + good[1:], np.float32))
    with pytest.raises(ShapeError):
        go(np.zeros(good + (1,), np.float32))
    with pytest.raises(DTypeError):
        go(np.zeros(good, np.float64))
    with pytest.raises(DTypeError):  # float32, but big-endian: the C core writes native floats
        go(np.zeros(good, ">f4"))
    with pytest.raises(ShapeError, match="C-contiguous"):  # a layout problem, not a dtype problem
        go(np.zeros(good[:-1] + (2 * good[-1],), np.float32)[..., ::2])
    with pytest.raises(DTypeError):
        go([0.0] * good[0])
    readonly = np.zeros(good, np.float32)
    readonly.flags.writeable = False
    with pytest.raises(InvalidArgumentError, match="read-only") as info:
        go(readonly)
    assert not isinstance(info.value, TypeError)


@pytest.mark.parametrize("bad", [[1.0, 2.0], np.zeros(6), np.zeros((1, 5)), np.float32(1.0), []])
def test_step_wrong_length_is_a_shape_error(model, bad):
    with pytest.raises(ShapeError) as info:
        model.stream().step(bad)
    assert info.value.status is None


@pytest.mark.parametrize("bad", [np.zeros(5), np.zeros((3, 4)), np.zeros((2, 3, 5))])
def test_run_wrong_shape_is_a_shape_error(model, bad):
    with pytest.raises(ShapeError):
        model.stream().run(bad)


@pytest.mark.parametrize("bad", [["a"] * 5, "hello", np.zeros(5, complex), [None] * 5, [1j, 0, 0, 0, 0],
                                 np.zeros(5, dtype="datetime64[s]")])
def test_non_real_input_is_a_dtype_error(model, bad):
    with pytest.raises(DTypeError):
        model.stream().step(bad)
    with pytest.raises(DTypeError):
        model.stream().run([bad])


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_input_leaves_the_state_unchanged(model, rng, value):
    stream, twin = model.stream(), model.stream()
    warm = inputs(rng, 10, model.input_size)
    stream.run(warm)
    twin.run(warm)
    x = inputs(rng, 1, model.input_size)[0]
    x[2] = value
    with pytest.raises(NonFiniteInputError) as info:
        stream.step(x)
    assert info.value.status == 11
    xs = inputs(rng, 200, model.input_size)
    xs[150, 0] = value  # late in the second chunk of run(): nothing of the first chunk may stick
    with pytest.raises(NonFiniteInputError):
        stream.run(xs)
    with pytest.raises(NonFiniteInputError):
        model.step_many([stream, model.stream()], np.stack([xs[0], x]))
    assert continues_like(stream, twin, rng)


@pytest.mark.parametrize("value", [1e19, -1e19, 2.0**64, -(2.0**64)])
def test_large_inputs_up_to_2_64_are_accepted(model, value):
    """Large inputs up to LSTM_MAX_ABS_INPUT (2^64) are not errors; the gates saturate and the outputs
    stay finite."""
    assert lstm_embed._lstm.MAX_ABS_INPUT == 2.0**64
    y = model.stream().step(np.full(model.input_size, value, np.float32))
    assert np.isfinite(y).all()


@pytest.mark.parametrize("value", [1e30, -1e30, 3e38, np.nextafter(np.float32(2.0**64), np.float32(np.inf))])
def test_inputs_beyond_2_64_are_rejected_and_leave_the_state_unchanged(model, rng, value):
    """|x| > 2^64 is refused by the C core with status 17 (InputRangeError), whatever the entry point."""
    stream, twin = model.stream(), model.stream()
    warm = inputs(rng, 7, model.input_size)
    stream.run(warm)
    twin.run(warm)
    x = inputs(rng, 1, model.input_size)[0]
    x[1] = value
    with pytest.raises(InputRangeError) as info:
        stream.step(x)
    assert info.value.status == 17 and "2^64" in str(info.value)
    xs = inputs(rng, 200, model.input_size)
    xs[170, 3] = value
    with pytest.raises(InputRangeError):
        stream.run(xs)
    with pytest.raises(InputRangeError):
        model.step_many([stream, model.stream()], np.stack([xs[0], x]))
    assert continues_like(stream, twin, rng)


@pytest.mark.parametrize("value", [1e300, -1e39, np.finfo(np.float64).max])
def test_float64_beyond_float32_range_says_so(model, value):
    """A float64 input that float32 cannot hold is not reported as NaN or infinity: the message says
    the value exceeds float32's range."""
    x = np.zeros(model.input_size)
    x[3] = value
    stream = model.stream()
    before = stream.snapshot()
    for call in (lambda: stream.step(x), lambda: stream.run(x[None, :]), lambda: model.step_many([stream], [x])):
        with pytest.raises(InputRangeError, match="float32's range") as info:
            call()
        assert "NaN" not in str(info.value) and info.value.status == 17
    assert stream.snapshot() == before


# ---- bidirectional models ------------------------------------------------------------------------------

def test_bidirectional_step_is_unsupported(bidir_model):
    stream = bidir_model.stream()
    with pytest.raises(UnsupportedError) as info:
        stream.step(np.zeros(bidir_model.input_size))
    assert info.value.status == 14
    with pytest.raises(UnsupportedError):
        bidir_model.step_many([stream], np.zeros((1, bidir_model.input_size)))


def test_bidirectional_run_uses_no_state(bidir_model, rng):
    stream = bidir_model.stream()
    xs = inputs(rng, 33, bidir_model.input_size)
    first = stream.run(xs)
    stream.run(inputs(rng, 10, bidir_model.input_size))
    np.testing.assert_array_equal(stream.run(xs), first)
    assert stream.run(xs[:0]).shape == (0, bidir_model.output_size)


def test_bidirectional_output_depends_on_the_future(bidir_model, rng):
    xs = inputs(rng, 20, bidir_model.input_size)
    full = bidir_model.stream().run(xs)
    prefix = bidir_model.stream().run(xs[:10])
    assert np.abs(full[:10] - prefix).max() > 1e-4


# ---- closed models, step_many, exceptions --------------------------------------------------------------

def test_closed_model_refuses_work(model):
    closed = lstm_embed.Model.from_bytes(model.to_bytes())
    stream = closed.stream()
    with closed:
        assert not closed.closed
    assert closed.closed
    size = model.input_size
    for call in (closed.stream, lambda: stream.step(np.zeros(size)), lambda: stream.run(np.zeros((2, size))),
                 stream.reset, stream.snapshot, lambda: stream.restore(model.stream().snapshot()),
                 lambda: closed.step_many([stream], np.zeros((1, size)))):
        with pytest.raises(ClosedModelError):
            call()
    assert model.stream().step(np.zeros(size)).shape == (model.output_size,)  # the original stays usable


def test_step_many_rejects_bad_groups(model, twin_model):
    a, b = model.stream(), model.stream()
    xs = np.zeros((2, model.input_size))
    with pytest.raises(StateError):
        model.step_many([a, twin_model.stream()], xs)
    with pytest.raises(ValueError) as dup:
        model.step_many([a, a], xs)
    assert not isinstance(dup.value, StateError)
    with pytest.raises(TypeError):
        model.step_many([a, "b"], xs)
    for bad in (np.zeros((3, model.input_size)), np.zeros((2, model.input_size + 1)), np.zeros(model.input_size)):
        with pytest.raises(ShapeError):
            model.step_many([a, b], bad)
    assert model.step_many([], np.zeros((0, model.input_size))).shape == (0, model.output_size)


def test_step_many_duplicate_found_late_releases_every_stream(model, twin_model, rng):
    """A stream repeated after others is refused and every stream marked before it is released: each one
    steps again at once (the distinctness check rides on the busy flags)."""
    a, b, c = model.stream(), model.stream(), model.stream()
    with pytest.raises(InvalidArgumentError, match=r"streams\[3\] appears twice"):
        model.step_many([a, b, c, b], inputs(rng, 4, model.input_size))
    # the first offending index decides the error, whichever check finds it
    with pytest.raises(InvalidArgumentError, match=r"streams\[1\] appears twice"):
        model.step_many([a, a, twin_model.stream()], inputs(rng, 3, model.input_size))
    with pytest.raises(StateError):
        model.step_many([a, twin_model.stream(), a], inputs(rng, 3, model.input_size))
    with pytest.raises(InvalidArgumentError, match=r"streams\[1\] appears twice"):
        model.step_many([a, a, "b"], inputs(rng, 3, model.input_size))
    xs = inputs(rng, 3, model.input_size)
    for group in ([a, b, c], (a, b, c), iter([a, b, c])):  # any sequence, a list taken as it is
        assert model.step_many(group, xs).shape == (3, model.output_size)


def test_failed_step_many_leaves_states_unchanged(model, twin_model, rng):
    a, twin = model.stream(), model.stream()
    with pytest.raises(StateError):
        model.step_many([a, twin_model.stream()], inputs(rng, 2, model.input_size))
    with pytest.raises(ValueError):
        model.step_many([a, a], inputs(rng, 2, model.input_size))
    assert continues_like(a, twin, rng)


@pytest.mark.parametrize("cls,builtin", [
    (ModelFormatError, ValueError), (ShapeError, ValueError), (DTypeError, TypeError),
    (NonFiniteInputError, ValueError), (StateError, ValueError), (UnsupportedError, ValueError),
    (ClosedModelError, ValueError), (lstm_embed.ConversionError, ValueError), (InputRangeError, ValueError),
    (InvalidArgumentError, ValueError), (ArgumentTypeError, TypeError), (StreamBusyError, RuntimeError),
    (lstm_embed.LstmMemoryError, MemoryError), (lstm_embed.ModelFileError, OSError),
    (lstm_embed.ModelFileNotFoundError, FileNotFoundError),
])
def test_exception_hierarchy(cls, builtin):
    assert issubclass(cls, LstmError) and issubclass(cls, builtin)
    assert cls is getattr(lstm_embed, cls.__name__)


def test_errors_carry_a_message(model):
    with pytest.raises(ShapeError, match=str(model.input_size)):
        model.stream().step([1.0])
    with pytest.raises(NonFiniteInputError, match="status 11"):
        model.stream().step([np.nan] * model.input_size)
