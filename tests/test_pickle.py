"""Pickling, copy and deepcopy: a Model travels as its bytes, a Stream as its model plus a snapshot, and
the copy continues bit for bit, in this process or another one."""
import copy
import os
import pickle
import subprocess
import tempfile
import sys
import textwrap

import numpy as np
import pytest

import lstm_embed
from lstm_embed import ClosedModelError, StateError

# The child imports the lstm_embed this process imported (the installed one in CI, the source tree in a
# development checkout), never whatever sits in its working directory.
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(lstm_embed.__file__)))
DTYPES = ["float32", "int8", "int8-dynamic"]


@pytest.fixture(scope="module", params=DTYPES)
def model(request, make_lstm, make_head):
    """2 layers with projection and a head, in each weight format."""
    lstm = make_lstm(5, 12, 2, proj_size=6, seed=41)
    data = lstm_embed.convert_torch(lstm, head=make_head(6, 3, seed=41), head_activation="tanh",
                                    dtype=request.param)
    return lstm_embed.Model.from_bytes(data)


def inputs(steps, size, seed):
    return np.random.default_rng(seed).standard_normal((steps, size)).astype(np.float32)


def warmed(model, seed=0, steps=23):
    """A stream of ``model`` with some history (a non-zero state)."""
    stream = model.stream()
    stream.run(inputs(steps, model.input_size, seed))
    return stream


def step_outputs(stream, xs):
    return np.stack([stream.step(x) for x in xs])


def test_model_travels_as_its_bytes(model):
    fn, args = model.__reduce__()
    assert args[0] == model.to_bytes()
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        clone = pickle.loads(pickle.dumps(model, protocol=protocol))
        assert type(clone) is lstm_embed.Model and clone is not model
        assert clone.to_bytes() == model.to_bytes() and clone.fingerprint == model.fingerprint
        assert clone.layer_dtypes == model.layer_dtypes
        xs = inputs(9, model.input_size, 1)
        np.testing.assert_array_equal(clone.stream().run(xs), model.stream().run(xs))


def test_model_keeps_the_isa_it_was_opened_with(model):
    pinned = lstm_embed.Model.from_bytes(model.to_bytes(), isa="reference")
    assert pickle.loads(pickle.dumps(pinned)).isa == "reference"
    assert copy.deepcopy(pinned).isa == "reference"


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_stream_continues_bit_for_bit_after_pickling(model, protocol):
    stream = warmed(model)
    clone = pickle.loads(pickle.dumps(stream, protocol=protocol))
    assert clone.snapshot() == stream.snapshot()
    xs = inputs(40, model.input_size, 2)
    np.testing.assert_array_equal(step_outputs(clone, xs), step_outputs(stream, xs))


def test_copy_gives_an_independent_stream_with_the_same_state(model):
    stream = warmed(model)
    twin = warmed(model)  # the same history, to tell what stream's state should be
    clone = copy.copy(stream)
    assert clone is not stream and clone.model is stream.model
    assert clone.snapshot() == stream.snapshot()
    xs = inputs(15, model.input_size, 3)
    moved = step_outputs(clone, xs)  # advancing the copy leaves the original where it was
    assert stream.snapshot() == twin.snapshot()
    np.testing.assert_array_equal(step_outputs(stream, xs), moved)
    np.testing.assert_array_equal(step_outputs(twin, xs), moved)


def test_deepcopy_copies_the_model_too(model):
    stream = warmed(model)
    clone = copy.deepcopy(stream)
    assert clone.model is not stream.model and clone.model.to_bytes() == model.to_bytes()
    xs = inputs(15, model.input_size, 4)
    np.testing.assert_array_equal(step_outputs(clone, xs), step_outputs(stream, xs))
    twins = copy.deepcopy([stream, stream.model])  # deepcopy's memo: one new model for both
    assert twins[0].model is twins[1]
    assert copy.copy(model).to_bytes() == model.to_bytes()


def test_streams_pickled_together_share_one_model(model):
    streams = [warmed(model, seed) for seed in range(4)]
    clones = pickle.loads(pickle.dumps(streams))
    assert len({id(s.model) for s in clones}) == 1 and clones[0].model is not model
    xs = inputs(4, model.input_size, 5)
    np.testing.assert_array_equal(clones[0].model.step_many(clones, xs), model.step_many(streams, xs))


def test_bidirectional_stream_pickles(bidir_model):
    stream = bidir_model.stream()
    clone = pickle.loads(pickle.dumps(stream))
    xs = inputs(12, bidir_model.input_size, 6)
    np.testing.assert_array_equal(clone.run(xs), stream.run(xs))


def test_closed_model_does_not_pickle(model):
    closed = lstm_embed.Model.from_bytes(model.to_bytes())
    stream = closed.stream()
    closed.close()
    with pytest.raises(ClosedModelError):
        pickle.dumps(closed)
    with pytest.raises(ClosedModelError):
        pickle.dumps(stream)
    with pytest.raises(ClosedModelError):
        copy.copy(stream)


def test_a_forged_stream_pickle_is_refused(model, twin_model):
    """Unpickling restores the snapshot through the validating restore(): a snapshot of other weights
    or damaged bytes raise StateError."""
    rebuild, (owner, blob, compact) = warmed(model).__reduce__()
    assert owner is model and compact is False
    with pytest.raises(StateError):
        rebuild(twin_model, blob)
    with pytest.raises(StateError):
        rebuild(model, blob[:-1])
    with pytest.raises(lstm_embed.ArgumentTypeError):
        rebuild("not a model", blob)


CHILD = textwrap.dedent("""
    import pickle, sys
    import numpy as np
    streams, xs = pickle.loads(sys.stdin.buffer.read())
    assert len({id(s.model) for s in streams}) == 1, "streams of one model must share it after unpickling"
    outs = [np.stack([s.step(x) for x in xs]) for s in streams]
    sys.stdout.buffer.write(pickle.dumps((outs, [s.snapshot() for s in streams])))
""")


def test_streams_continue_bit_for_bit_in_another_process(model):
    streams = [warmed(model, seed, steps=10 + seed) for seed in range(3)]
    xs = inputs(30, model.input_size, 7)
    env = dict(os.environ, PYTHONPATH=PACKAGE_PARENT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-c", CHILD], input=pickle.dumps((streams, xs)), cwd=tempfile.gettempdir(), env=env,
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    outs, snapshots = pickle.loads(done.stdout)
    for stream, out, snap in zip(streams, outs, snapshots):
        np.testing.assert_array_equal(out, step_outputs(stream, xs))
        assert snap == stream.snapshot()
