"""step_many(threads=k) (issue 12): the streams split into k groups stepped on k threads give the same bits
as one call; bad input anywhere changes no stream; a bad threads value is refused."""
import numpy as np
import pytest
import torch

import lstm_embed
from lstm_embed import InvalidArgumentError, Model, NonFiniteInputError


@pytest.fixture(scope="module", params=["float32", "int8", "int8-dynamic"])
def model(request):
    torch.manual_seed(3)
    return Model.from_bytes(lstm_embed.convert_torch(torch.nn.LSTM(12, 33, num_layers=2), dtype=request.param))


@pytest.mark.parametrize("threads,n", [(2, 64), (3, 50), (4, 5), (8, 3)])
def test_threads_give_the_same_bits(model, threads, n):
    rng = np.random.default_rng(n)
    xs = rng.standard_normal((6, n, model.input_size)).astype(np.float32)
    one = [model.stream(compact=i % 3 == 0) for i in range(n)]
    many = [model.stream(compact=i % 2 == 0) for i in range(n)]
    for t in range(6):
        np.testing.assert_array_equal(model.step_many(many, xs[t], threads=threads), model.step_many(one, xs[t]))
    assert [s.snapshot() for s in many] == [s.snapshot() for s in one]


def test_bad_input_in_any_group_changes_no_stream(model):
    streams = [model.stream() for _ in range(40)]
    xs = np.ones((40, model.input_size), np.float32)
    model.step_many(streams, xs, threads=2)
    before = [s.snapshot() for s in streams]
    for bad, error in ((np.nan, NonFiniteInputError), (np.inf, NonFiniteInputError),
                       (-np.inf, NonFiniteInputError), (2.0 ** 70, lstm_embed.InputRangeError),
                       (-2.0 ** 70, lstm_embed.InputRangeError)):
        xs[37, 1] = bad  # in the second group
        with pytest.raises(error):
            model.step_many(streams, xs, threads=2)
        with pytest.raises(error):  # the same error as the unthreaded call
            model.step_many(streams, xs)
    assert [s.snapshot() for s in streams] == before
    xs[37, 1] = -2.0 ** 64  # the bound itself is accepted, threaded or not, with the same outputs
    threaded, plain = [model.stream() for _ in range(40)], [model.stream() for _ in range(40)]
    np.testing.assert_array_equal(model.step_many(threaded, xs, threads=2), model.step_many(plain, xs))
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(InvalidArgumentError):
            model.step_many(streams, xs, threads=bad)


def worker_threads():
    import threading
    return [t for t in threading.enumerate() if t.name == "lstm_embed.step_many"]


def test_workers_are_kept_and_reused(model):
    """The group threads persist between calls (a lock hand-off, no pool submit and no new thread per
    call): 100 calls with threads=3 leave no more workers than the first did, and all of them alive."""
    streams = [model.stream() for _ in range(12)]
    xs = np.ones((12, model.input_size), np.float32)
    model.step_many(streams, xs, threads=3)
    first = set(worker_threads())
    for _ in range(100):
        model.step_many(streams, xs, threads=3)
    now = set(worker_threads())
    assert len(first) >= 2 and now == first and all(t.is_alive() for t in now)


def test_concurrent_threaded_calls_do_not_share_workers(model):
    """Four Python threads each stepping their own streams with threads=2 at the same time: every result has
    the bits of the same steps taken one call at a time (a worker shared between two calls would mix up
    their groups or workspaces)."""
    from concurrent.futures import ThreadPoolExecutor
    rng = np.random.default_rng(9)
    xs = rng.standard_normal((4, 8, 30, model.input_size)).astype(np.float32)  # caller, step, stream

    def run(c, threads):
        streams = [model.stream() for _ in range(30)]
        return np.stack([model.step_many(streams, xs[c, t], threads=threads) for t in range(8)])

    want = [run(c, 1) for c in range(4)]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda c: run(c, 2), range(4)))
    for c in range(4):
        np.testing.assert_array_equal(got[c], want[c])


def _step_in_child(data, conn):
    m = Model.from_bytes(data)
    streams = [m.stream() for _ in range(6)]
    conn.send(m.step_many(streams, np.ones((6, m.input_size), np.float32), threads=2))
    conn.close()


def test_forked_child_gets_new_workers(model):
    """A child forked after threaded calls has none of the parent's threads: its step_many(threads=2) must
    start its own worker, not wait forever on one that does not exist there (bounded: 60 s)."""
    import multiprocessing
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this platform")
    streams = [model.stream() for _ in range(6)]
    xs = np.ones((6, model.input_size), np.float32)
    want = model.step_many(streams, xs, threads=2)  # the parent now has idle workers
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_step_in_child, args=(model.to_bytes(), child))
    proc.start()
    try:
        assert parent.poll(60), "the forked child's step_many(threads=2) did not finish in 60 s"
        np.testing.assert_array_equal(parent.recv(), want)
    finally:
        proc.join(5)
        if proc.is_alive():
            proc.kill()


def test_spinning_and_sleeping_workers_give_the_same_bits(model):
    """Back-to-back calls hand jobs to workers still spinning on their flag; calls further apart than
    _Worker.SPIN_IDLE find them asleep on their lock. Both give the unthreaded bits, call after call."""
    import time
    from lstm_embed._lstm import _Worker
    rng = np.random.default_rng(5)
    threaded, plain = [model.stream() for _ in range(24)], [model.stream() for _ in range(24)]
    for t in range(12):
        xs = rng.standard_normal((24, model.input_size)).astype(np.float32)
        if t % 3 == 2:
            time.sleep(3 * _Worker.SPIN_IDLE)  # the worker has stopped spinning and sleeps
        np.testing.assert_array_equal(model.step_many(threaded, xs, threads=3), model.step_many(plain, xs))
    assert [s.snapshot() for s in threaded] == [s.snapshot() for s in plain]


def test_flag_spin_sees_a_value_set_by_another_thread_and_times_out_otherwise():
    import threading
    import time
    from lstm_embed._lstm import _Flag
    a, b = _Flag(), _Flag()
    t0 = time.perf_counter()
    assert not a.spin(1, 0.005)  # nobody sets it: False after the timeout, not before
    assert time.perf_counter() - t0 >= 0.005
    seen = []
    worker = threading.Thread(target=lambda: seen.append(b.spin(7, 10.0)))
    worker.start()
    assert a.set_and_spin(3, b, 0, 0.0)  # b is still 0; a becomes 3
    assert b.set_and_spin(7, a, 3, 1.0)  # b = 7 releases the thread; a is already 3
    worker.join(10)
    assert seen == [True]
