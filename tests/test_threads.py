"""Threads: streams of one shared model stepped in parallel (the GIL is released in the C calls) give
exactly the sequential results; a stream used by two threads at once is refused, never corrupted."""
import json
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from lstm_embed import LstmError, NonFiniteInputError, StateError, StreamBusyError, UnsupportedError


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
                assert type(e) is StreamBusyError and "in use" in str(e)
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
                assert type(e) is StreamBusyError and "in use" in str(e)
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


# ---- one stream's run() from two threads (issue 8 item 1) -------------------------------------------------

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Runs in a child process, so that a crash (use after free of the run workspace: SIGSEGV or a heap
# corruption abort) fails the test instead of killing pytest. Two threads share one stream per round and
# call run() with growing T (thread 0 odd T, thread 1 even T), so nearly every call needs a bigger
# workspace than the last while the other thread may be inside the C call (before the fix, run() replaced
# the workspace before marking the stream busy, freeing the buffer the other thread's C call was using). Each call either succeeds with
# the right numbers or is refused as "in use". The models' outputs do not depend on the stream's state
# (no recurrent weights, forget gate shut, or bidirectional), so every successful call has one reference.
RACE_CHILD = textwrap.dedent("""
    import json, sys, threading
    import numpy as np
    import lstm_embed

    model = lstm_embed.Model.load(sys.argv[1])
    rounds, tmax = int(sys.argv[2]), int(sys.argv[3])
    xs = np.random.default_rng(0).standard_normal((tmax, model.input_size)).astype(np.float32)
    refs = {t: model.stream().run(xs[:t]) for t in range(1, tmax + 1)}
    counts = {"ok": 0, "busy": 0, "wrong": 0, "other": []}

    def work(stream, barrier, first):
        barrier.wait()
        for t in range(first, tmax + 1, 2):
            try:
                y = stream.run(xs[:t])
            except lstm_embed.LstmError as e:
                if "in use" in str(e):
                    counts["busy"] += 1
                else:
                    counts["other"].append(repr(e))
                continue
            if np.allclose(y, refs[t], rtol=0, atol=1e-5):
                counts["ok"] += 1
            else:
                counts["wrong"] += 1

    for _ in range(rounds):
        stream, barrier = model.stream(), threading.Barrier(2)
        threads = [threading.Thread(target=work, args=(stream, barrier, first)) for first in (1, 2)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    print(json.dumps(counts))
""")


# Two threads call step_many on one model with disjoint groups of streams whose size grows with every
# call, so the model's shared step_many workspace keeps being outgrown while the other thread may be inside
# lstm_step_many with it (one thread reuses it, the other gets its own). Outputs depend on the input only.
MANY_CHILD = textwrap.dedent("""
    import json, sys, threading
    import numpy as np
    import lstm_embed

    model = lstm_embed.Model.load(sys.argv[1])
    rounds, nmax = int(sys.argv[2]), int(sys.argv[3])
    xs = np.random.default_rng(1).standard_normal((nmax, model.input_size)).astype(np.float32)
    refs = np.stack([model.stream().step(x) for x in xs])
    counts = {"ok": 0, "wrong": 0, "other": []}

    def work(barrier):
        streams = [model.stream() for _ in range(nmax)]
        barrier.wait()
        for n in range(1, nmax + 1):
            try:
                y = model.step_many(streams[:n], xs[:n])
            except lstm_embed.LstmError as e:
                counts["other"].append(repr(e))
                continue
            if np.allclose(y, refs[:n], rtol=0, atol=1e-5):
                counts["ok"] += 1
            else:
                counts["wrong"] += 1

    for _ in range(rounds):
        barrier = threading.Barrier(2)
        threads = [threading.Thread(target=work, args=(barrier,)) for _ in range(2)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        model = lstm_embed.Model.load(sys.argv[1])  # a fresh model: its workspace grows again
    print(json.dumps(counts))
""")


@pytest.fixture(scope="module")
def stateless_models(make_lstm, tmp_path_factory):
    """Model files whose run() output depends only on the input sequence: a unidirectional LSTM with
    W_hh = 0 and the forget gate shut (bias -100, so c does not carry over), and a bidirectional one (whose
    run never reads the stream's state)."""
    import lstm_embed

    d = tmp_path_factory.mktemp("race")
    uni = make_lstm(16, 128, 1, seed=31, forget_bias=-100.0, recurrent_scale=0.0)
    bi = make_lstm(16, 64, 1, bidirectional=True, seed=32)
    paths = {}
    for name, lstm in (("unidirectional", uni), ("bidirectional", bi)):
        paths[name] = d / f"{name}.lstm"
        paths[name].write_bytes(lstm_embed.convert_torch(lstm))
    return paths


def run_child(script, *args):
    """Run a child script; its JSON result. glibc: serve every allocation over 8 KB by mmap and unmap it on
    free, and fill freed memory with 0xa5, so that a C call still using a freed workspace faults or visibly
    computes garbage."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               MALLOC_MMAP_THRESHOLD_="8192", MALLOC_PERTURB_="165")
    done = subprocess.run([sys.executable, "-c", script, *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"child died with {done.returncode}: {done.stderr[-2000:]}"
    return json.loads(done.stdout)


@pytest.mark.parametrize("kind", ["unidirectional", "bidirectional"])
def test_run_from_two_threads_on_one_stream_does_not_crash(stateless_models, kind):
    counts = run_child(RACE_CHILD, stateless_models[kind], 12, 128)
    assert counts["other"] == [] and counts["wrong"] == 0, counts
    assert counts["ok"] + counts["busy"] == 12 * 128 and counts["ok"] > 0, counts


def test_step_many_from_two_threads_with_growing_groups_does_not_crash(stateless_models):
    counts = run_child(MANY_CHILD, stateless_models["unidirectional"], 4, 48)
    assert counts["other"] == [] and counts["wrong"] == 0, counts
    assert counts["ok"] == 4 * 2 * 48, counts
