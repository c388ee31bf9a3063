"""Compact streams (issue 12): h and c only per stream, the scratch of a step shared through the model.

Checked: their size (bytes per stream = h and c plus at most a 64-byte header; 10,000 streams of an H = 128
model in at most 12 MB of Python memory, measured with tracemalloc), the same bits as full streams through
step, run and step_many (also mixed with full streams) for every dtype, pickling, and compact streams stepped
from two threads at once.
"""
import copy
import pickle
import threading
import tracemalloc

import numpy as np
import pytest
import torch

import lstm_embed
from lstm_embed import Model

DTYPES = ("float32", "int8", "int8-dynamic")


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(12)
    lstm = torch.nn.LSTM(24, 40, num_layers=2, proj_size=13)
    head = torch.nn.Linear(13, 3)
    return {dt: Model.from_bytes(lstm_embed.convert_torch(lstm, head=head, dtype=dt)) for dt in DTYPES}


def test_ten_thousand_streams_fit_in_twelve_megabytes():
    torch.manual_seed(0)
    model = Model.from_bytes(lstm_embed.convert_torch(torch.nn.LSTM(40, 128)))
    h_and_c = 2 * 128 * 4
    assert h_and_c < model.compact_state_size <= h_and_c + 64 < model.state_size
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        streams = [model.stream(compact=True) for _ in range(10_000)]
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert used <= 12_000_000, f"10,000 compact streams took {used:,} bytes"
    assert all(s.compact for s in streams[:10]) and not model.stream().compact
    # they work: one step_many over all of them equals single steps on full streams
    xs = np.random.default_rng(1).standard_normal((10_000, 40)).astype(np.float32)
    ys = model.step_many(streams, xs)
    check = [0, 1, 4_999, 9_999]
    np.testing.assert_array_equal(ys[check], np.stack([model.stream().step(xs[i]) for i in check]))


@pytest.mark.parametrize("dtype", DTYPES)
def test_compact_streams_give_the_same_bits(models, dtype):
    model = models[dtype]
    rng = np.random.default_rng(5)
    T, N = 30, 6
    xs = rng.standard_normal((T, N, model.input_size)).astype(np.float32)
    full = [model.stream() for _ in range(N)]
    want = np.stack([np.stack([full[i].step(xs[t, i]) for i in range(N)]) for t in range(T)])
    compact = [model.stream(compact=True) for _ in range(N)]
    np.testing.assert_array_equal(np.stack([np.stack([compact[i].step(xs[t, i]) for i in range(N)])
                                            for t in range(T)]), want)
    mixed = [model.stream(compact=i % 2 == 1) for i in range(N)]
    np.testing.assert_array_equal(np.stack([model.step_many(mixed, xs[t]) for t in range(T)]), want)
    np.testing.assert_array_equal(model.stream(compact=True).run(xs[:, 2]), want[:, 2])
    # state carried over: snapshots of the two kinds are the same bytes and restore into each other
    assert compact[3].snapshot() == full[3].snapshot() == mixed[3].snapshot()
    other = model.stream()
    other.restore(compact[4].snapshot())
    x = xs[0, 0]
    np.testing.assert_array_equal(other.step(x), compact[4].step(x))


def test_compact_streams_pickle_and_copy(models):
    model = models["int8-dynamic"]
    s = model.stream(compact=True)
    x = np.linspace(-1, 1, model.input_size, dtype=np.float32)
    for _ in range(5):
        s.step(x)
    for clone in (pickle.loads(pickle.dumps(s)), copy.deepcopy(s), copy.copy(s)):
        assert clone.compact
        np.testing.assert_array_equal(clone.step(x), copy.deepcopy(s).step(x))


def test_compact_streams_from_two_threads(models):
    """Two threads stepping their own compact streams share or allocate the scratch; nothing mixes."""
    model = models["float32"]
    rng = np.random.default_rng(9)
    xs = rng.standard_normal((2, 400, model.input_size)).astype(np.float32)
    want = [model.stream().run(xs[k]) for k in range(2)]
    got = [None, None]
    barrier = threading.Barrier(2)

    def work(k):
        s = model.stream(compact=True)
        barrier.wait(timeout=30)
        got[k] = np.stack([s.step(x) for x in xs[k]])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for k in range(2):
        np.testing.assert_array_equal(got[k], want[k])
