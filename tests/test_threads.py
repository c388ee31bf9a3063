"""Threads: streams of one shared model stepped in parallel (the GIL is released in the C calls) give
exactly the sequential results; a stream used by two threads at once is refused, never corrupted."""
import threading

import numpy as np
import pytest

from lstm_embed import LstmError, NonFiniteInputError, StateError, UnsupportedError


@pytest.fixture(scope="module")
def big_model(make_lstm, make_head, convert):
    """Big enough (H = 256) that each C call takes a while, so threads really overlap."""
    return convert(make_lstm(32, 256, 2, seed=21), make_head(256, 8, seed=21), "softmax")


def in_threads(jobs):
    """Run every job in its own thread, started together; re-raise the first exception of any job."""
    barrier = threading.Barrier(len(jobs))
    results, errors = [None] * len(jobs), []

    def work(i):
        try:
            barrier.wait()
            results[i] = jobs[i]()
        except BaseException as e:  # handed to the main thread below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def step_loop(stream, xs):
    return np.stack([stream.step(x) for x in xs])


def test_parallel_streams_match_sequential(big_model):
    rng = np.random.default_rng(5)
    xs = rng.standard_normal((4, 150, big_model.input_size)).astype(np.float32)
    sequential = [step_loop(big_model.stream(), x) for x in xs]
    sequential_run = [big_model.stream().run(x) for x in xs]
    stepped = in_threads([lambda x=x: step_loop(big_model.stream(), x) for x in xs])
    ran = in_threads([lambda x=x: big_model.stream().run(x) for x in xs])
    for i in range(len(xs)):
        np.testing.assert_array_equal(stepped[i], sequential[i])
        np.testing.assert_array_equal(ran[i], sequential_run[i])


def test_parallel_step_many_on_disjoint_groups(big_model):
    rng = np.random.default_rng(6)
    xs = rng.standard_normal((2, 60, 3, big_model.input_size)).astype(np.float32)

    def drive(group_xs):
        streams = [big_model.stream() for _ in range(3)]
        return np.stack([big_model.step_many(streams, x) for x in group_xs])

    parallel = in_threads([lambda g=g: drive(g) for g in xs])
    for g in range(2):
        np.testing.assert_array_equal(parallel[g], drive(xs[g]))


def test_one_stream_from_two_threads_is_refused_not_corrupted(big_model):
    """Both threads feed the same constant input, so whichever calls get through, the final state must
    be that of (number of successful steps) sequential steps."""
    x = np.random.default_rng(7).standard_normal(big_model.input_size).astype(np.float32)
    shared = big_model.stream()

    def hammer():
        done = refused = 0
        for _ in range(200):
            try:
                shared.step(x)
                done += 1
            except LstmError as e:
                assert type(e) is LstmError and "in use" in str(e)
                refused += 1
        return done, refused

    counts = in_threads([hammer, hammer])
    done = sum(c[0] for c in counts)
    assert done + sum(c[1] for c in counts) == 400 and done > 0
    reference = big_model.stream()
    for _ in range(done):
        reference.step(x)
    np.testing.assert_array_equal(shared.step(x), reference.step(x))


def test_busy_stream_is_refused_by_other_calls(big_model):
    """While one thread runs a long sequence on a stream, calls on that stream from another thread
    either wait their turn (the run had ended) or raise LstmError; afterwards the stream works."""
    stream = big_model.stream()
    xs = np.random.default_rng(8).standard_normal((3000, big_model.input_size)).astype(np.float32)
    runner = threading.Thread(target=stream.run, args=(xs,))
    runner.start()
    attempts = 0
    while runner.is_alive() and attempts < 1000:
        for call in (lambda: big_model.step_many([stream], xs[:1]), lambda: stream.step(xs[0]), stream.snapshot,
                     stream.reset):
            try:
                call()
            except LstmError as e:
                assert type(e) is LstmError and "in use" in str(e)
        attempts += 1
    runner.join()
    assert stream.step(xs[0]).shape == (big_model.output_size,)


def test_errors_do_not_leave_the_stream_busy(model, bidir_model, twin_model):
    """Every error path releases the stream: a later call works, it is not refused as 'in use'."""
    stream = model.stream()
    bad = np.full(model.input_size, np.nan, np.float32)
    failing = [
        (NonFiniteInputError, lambda: stream.step(bad)),
        (NonFiniteInputError, lambda: stream.run(bad[None, :])),
        (NonFiniteInputError, lambda: model.step_many([stream], bad[None, :])),
        (StateError, lambda: stream.restore(b"garbage")),
        (StateError, lambda: model.step_many([stream, twin_model.stream()], np.zeros((2, model.input_size)))),
    ]
    for exc, call in failing:
        with pytest.raises(exc):
            call()
        assert stream.step(np.zeros(model.input_size)).shape == (model.output_size,)
        model.step_many([stream], np.zeros((1, model.input_size)))
    bidir = bidir_model.stream()
    with pytest.raises(UnsupportedError):
        bidir.step(np.zeros(bidir_model.input_size))
    assert bidir.run(np.zeros((3, bidir_model.input_size))).shape == (3, bidir_model.output_size)
