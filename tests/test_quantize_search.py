"""The compiled clip search (lstm_embed._quantize) against its numpy reference: the same bits.

``quantize.quantize_rows`` (C, row blocks in threads) must give exactly the int8 weights and float32
scales of ``quantize.quantize_rows_numpy``, so that converted files stay byte-identical; the row errors
must be numpy's own sums (its pairwise summation order), bit for bit.
"""
import numpy as np
import pytest

from lstm_embed import _quantize, quantize
from lstm_embed.errors import DTypeError, LstmError, ShapeError

# Row lengths around every branch of numpy's pairwise summation: < 8 straight, <= 128 with 8 accumulators
# and a tail, above that split at n/2 rounded down to a multiple of 8 (recursively).
COLS = [0, 1, 2, 7, 8, 9, 15, 16, 17, 63, 120, 127, 128, 129, 135, 136, 255, 256, 257, 300, 511, 512, 513,
        1000, 1023, 1024, 2049, 5000]


def _same(w):
    q, s = quantize.quantize_rows(w)
    q_ref, s_ref = quantize.quantize_rows_numpy(w)
    assert q.dtype == np.int8 and s.dtype == np.float32
    assert np.array_equal(q, q_ref), "int8 weights differ from the numpy reference"
    assert s.view(np.uint32).tolist() == s_ref.view(np.uint32).tolist(), "scales differ from the reference"
    return q, s


@pytest.mark.parametrize("cols", COLS)
def test_random_rows_match_the_reference(cols):
    rng = np.random.default_rng(cols)
    rows = 9
    w = np.concatenate([
        rng.normal(size=(3, cols)),
        rng.standard_t(2, size=(3, cols)),  # heavy tails: the clip search matters
        rng.uniform(-1, 1, size=(3, cols)) * rng.uniform(1e-3, 1e3, size=(3, 1)),
    ]).astype(np.float32)
    assert w.shape == (rows, cols)
    _same(w)


@pytest.mark.parametrize("cols", [1, 5, 33, 129, 700])
def test_adversarial_rows_match_the_reference(cols):
    rng = np.random.default_rng(100 + cols)
    base = rng.normal(size=cols)
    rows = [
        np.zeros(cols),  # all zero: every candidate ties at 0, scale 0
        np.full(cols, 0.5),  # one magnitude
        np.where(np.arange(cols) % 2, 1.0, -1.0),
        base * 1e-30,  # tiny (float32 normal)
        base * 1e-42,  # float32 subnormal
        base * 1e30,  # huge
        base * 3e38 / max(1e-30, np.abs(base).max()),  # near float32 max
        np.round(base * 254) / 254,  # on the grid of the unclipped scale: ties to even at .5 steps
        (np.arange(cols) - cols / 2) / 2,  # halves: rint ties
    ]
    outlier = base.copy()
    outlier[cols // 2] = 1000.0  # one outlier: clipping it pays
    rows.append(outlier)
    w = np.stack(rows).astype(np.float32)
    _same(w)


def test_float64_extremes_match_the_reference():
    """quantize_rows takes float64 too: errors that overflow to inf (every candidate ties at inf, none
    chosen), scales that underflow to 0 (divisions by zero, NaN errors), float32 scales that overflow."""
    cols = 40
    rng = np.random.default_rng(7)
    base = rng.normal(size=cols)
    w = np.stack([base * 1e200, base * 1e300, base * 1e-310, np.full(cols, 5e-324), base * 1e-320,
                  base * 1e40, base]).astype(np.float64)
    with np.errstate(all="ignore"):
        _same(w)


def test_ties_between_candidates_keep_the_first():
    """Rows whose error is the same for every candidate: all zero (every error 0: the first candidate is
    kept, the row gets scale 0) and float64 rows whose squared errors overflow (every error inf: no
    candidate is better than the initial inf, the scale stays 0 and the weights saturate)."""
    w = np.zeros((3, 9))
    w[1] = np.linspace(-1, 1, 9) * 1e200
    with np.errstate(over="ignore"):
        q, s = _same(w)
    assert s.tolist() == [0.0, 0.0, 0.0]
    assert q[1].tolist() == [-127] * 4 + [0] + [127] * 4 and not q[0].any() and not q[2].any()


@pytest.mark.parametrize("cols", COLS[1:])
def test_row_errors_are_numpys_sums(cols):
    """The C row error is bit for bit numpy's ((w - clip(rint(w / s)) * s) ** 2).sum(axis=1)."""
    rng = np.random.default_rng(1000 + cols)
    w = rng.standard_t(3, size=(6, cols)) * rng.uniform(1e-3, 1e3, size=(6, 1))
    amax = np.abs(w).max(axis=1)
    for fraction in (0.5, 0.73, 1.0):
        scale = amax * fraction / 127.0
        t = np.clip(np.rint(w / scale[:, None]), -127, 127)
        ref = np.square(w - t * scale[:, None]).sum(axis=1)
        got = _quantize.row_errors(np.ascontiguousarray(w), scale)
        assert got.view(np.uint64).tolist() == ref.view(np.uint64).tolist()


def test_straight_summation_would_differ():
    """The summation order matters: a left-to-right sum gives other bits on these rows, so the test above
    checks the order and not just the values."""
    rng = np.random.default_rng(3)
    w = rng.normal(size=(50, 512))
    scale = np.abs(w).max(axis=1) / 127.0
    got = _quantize.row_errors(w, scale)
    t = np.clip(np.rint(w / scale[:, None]), -127, 127)
    sq = np.square(w - t * scale[:, None])
    straight = np.array([sum(row.tolist()) for row in sq])
    assert np.array_equal(got, sq.sum(axis=1)) and not np.array_equal(got, straight)


def test_threads_and_blocks_do_not_change_the_result(monkeypatch):
    """Row blocks over threads: each row depends on itself only, so one block or many give the same."""
    rng = np.random.default_rng(11)
    w = rng.standard_t(3, size=(301, 77)).astype(np.float32)
    one = quantize.quantize_rows(w)
    monkeypatch.setattr(quantize, "_MIN_BLOCK_ELEMENTS", 1)
    monkeypatch.setattr(quantize, "workers", lambda: 7)
    many = quantize.quantize_rows(w)
    assert np.array_equal(one[0], many[0]) and np.array_equal(one[1], many[1])


def test_a_layer_sized_matrix_matches_the_reference():
    """The 2048 x 512 matrices of the benchmark model (bench_convert), with PyTorch's init range."""
    rng = np.random.default_rng(5)
    bound = 1 / np.sqrt(512)
    _same(rng.uniform(-bound, bound, size=(2048, 512)).astype(np.float32))


def test_bad_arguments_raise_lstm_errors():
    w = np.zeros((2, 3))
    q, s, amax = np.zeros((2, 3), np.int8), np.zeros(2, np.float32), np.zeros(2)
    with pytest.raises(DTypeError):
        _quantize.clip_search(w.astype(np.float32), amax, quantize.CLIP_FRACTIONS, q, s, 0, 2)
    with pytest.raises(ShapeError):
        _quantize.clip_search(w, amax, quantize.CLIP_FRACTIONS, q, s, 0, 3)
    with pytest.raises(ShapeError):
        _quantize.clip_search(w, np.zeros(3), quantize.CLIP_FRACTIONS, q, s, 0, 2)
    with pytest.raises(ShapeError):
        _quantize.row_errors(w, np.zeros(3))
    with pytest.raises(ShapeError):
        quantize.quantize_rows(np.zeros(3))
    assert issubclass(DTypeError, LstmError) and issubclass(ShapeError, LstmError)
