"""int8 weight quantisation: symmetric, one scale per output row, clipping chosen per row for least error.

The clip search runs in C (``lstm_embed._quantize``, threads over row blocks); ``quantize_rows_numpy`` is
the same computation in numpy, kept as its reference (tests/test_quantize_search.py checks both give the
same bits). The blocked layout written here is the one src/lstm_c/lstm_format.h describes.

Data flow of a conversion: checkpoint -> ``ModelSpec`` (float weights) -> ``quantize_spec`` (every layer
quantised once, the result carried by the spec as ``Int8Cell``s) -> calibration chooses layer dtypes on
those already-quantised weights -> ``format.write_model`` only lays the tensors out. Both int8 modes
("int8" and "int8-dynamic") store the same weights; they differ only in how activations are computed.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

import numpy as np

from lstm_embed import _quantize
from lstm_embed.errors import ShapeError

# Candidate clipping thresholds, as fractions of each row's largest magnitude. Clipping a few outliers
# buys finer steps for every other weight; the search keeps whichever gives the least squared error.
CLIP_FRACTIONS = np.linspace(0.5, 1.0, 51, dtype=np.float64)

# Rows handled together by quantize_rows_numpy: the temporaries of a chunk stay in the CPU cache. Each
# row's result depends on that row alone, so the chunk size changes the speed, never the numbers.
_CHUNK_ELEMENTS = 1 << 15

# quantize_rows splits a matrix into row blocks of at least this many weights, one per thread.
_MIN_BLOCK_ELEMENTS = 1 << 14


def _quantize_chunk(w: np.ndarray, amax: np.ndarray) -> np.ndarray:
    """The least-error scale of each row of ``w`` (float64 [rows, cols]) among CLIP_FRACTIONS of ``amax``."""
    rows = w.shape[0]
    best_err = np.full(rows, np.inf)
    best_scale = np.zeros(rows)
    t = np.empty_like(w)
    for fraction in CLIP_FRACTIONS:
        scale = np.where(amax > 0, amax * fraction / 127.0, 1.0)
        col = scale[:, None]
        np.divide(w, col, out=t)
        np.rint(t, out=t)
        np.clip(t, -127, 127, out=t)
        np.multiply(t, col, out=t)
        np.subtract(w, t, out=t)
        np.square(t, out=t)
        err = t.sum(axis=1)
        better = err < best_err
        best_err[better], best_scale[better] = err[better], scale[better]
    return best_scale


def quantize_rows(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quantise a float [rows, cols] matrix to int8 in [-127, 127] with one float32 scale per row.

    For each row the scale is clip / 127, with clip searched over CLIP_FRACTIONS of the row's max |w| to
    minimise sum (w - scale * q)^2 (ties: the smallest clip). An all-zero row gets scale 0. Returns
    (q int8, scale float32): the bits of ``quantize_rows_numpy``, computed in C over row blocks in threads.
    """
    w = np.ascontiguousarray(w, dtype=np.float64)
    if w.ndim != 2:
        raise ShapeError(f"quantize_rows needs a 2-D matrix, got shape {w.shape}")
    rows, cols = w.shape
    amax = np.abs(w).max(axis=1) if cols else np.zeros(rows)
    q = np.empty((rows, cols), dtype=np.int8)
    scale = np.empty(rows, dtype=np.float32)
    blocks = max(1, min(workers(), rows * cols // _MIN_BLOCK_ELEMENTS))
    bounds = [rows * i // blocks for i in range(blocks + 1)]
    parallel_map(lambda i: _quantize.clip_search(w, amax, CLIP_FRACTIONS, q, scale, bounds[i], bounds[i + 1]),
                 range(blocks))
    return q, scale


def quantize_rows_numpy(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``quantize_rows`` in numpy: the reference the compiled search is tested against (not used by the
    converter). Same arguments, same result bits."""
    w = np.ascontiguousarray(w, dtype=np.float64)
    amax = np.abs(w).max(axis=1) if w.shape[1] else np.zeros(w.shape[0])
    best_scale = np.zeros(w.shape[0])
    step = max(1, _CHUNK_ELEMENTS // max(1, w.shape[1]))
    for start in range(0, w.shape[0], step):
        rows = slice(start, start + step)
        best_scale[rows] = _quantize_chunk(w[rows], amax[rows])
    scale = best_scale.astype(np.float32)
    safe = np.where(scale > 0, scale, 1.0).astype(np.float64)
    q = np.clip(np.rint(w / safe[:, None]), -127, 127).astype(np.int8)
    return q, np.where(amax > 0, scale, 0.0).astype(np.float32)


def workers() -> int:
    """Threads for independent conversion work (numpy and the engine release the GIL): the CPUs usable."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def parallel_map(fn: Callable, items: Sequence) -> list:
    """``[fn(x) for x in items]``, the calls spread over ``workers()`` threads; results in order. Only
    for pure functions: each result is the same whichever thread computes it."""
    items = list(items)
    threads = min(workers(), len(items))
    if threads <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(fn, items))


def blocked(q: np.ndarray) -> bytes:
    """An int8 [rows, cols] matrix (cols a multiple of 4) in blocks of 16 rows x 4 columns, panel by panel,
    each block row-major; rows padded with zeros to a multiple of 16."""
    rows, cols = q.shape
    if cols % 4:
        raise ValueError(f"blocked layout needs a multiple of 4 columns, got {cols}")
    padded = np.zeros((-(-rows // 16) * 16, cols), dtype=np.int8)
    padded[:rows] = q
    panels = padded.reshape(-1, 16, cols // 4, 4).transpose(0, 2, 1, 3)
    return np.ascontiguousarray(panels).tobytes()


def _pad4(q: np.ndarray) -> np.ndarray:
    """Columns zero-padded to a multiple of 4 (the blocked layout's column group)."""
    return np.pad(q, ((0, 0), (0, -q.shape[1] % 4)))


@dataclass(frozen=True)
class Int8Cell:
    """The int8 weights of one direction of one layer, as stored by both int8 layer dtypes.

    ``weight``: [4H, pad4(in) + pad4(Hr)] int8, ``[W_ih | W_hh]`` each part zero-padded to 4 columns;
    ``scales``: [2, 4H] float32, the per-row scales of the W_ih part and the W_hh part;
    ``rowsums``: [2, 4H] int32, the row sums of the int8 W_ih and W_hh (for the activations' zero point);
    ``proj`` / ``proj_scale``: [P, pad4(H)] int8 and [P] float32 for an LSTM with projection, else None.
    """

    weight: np.ndarray
    scales: np.ndarray
    rowsums: np.ndarray
    proj: np.ndarray | None = None
    proj_scale: np.ndarray | None = None


def _cell(q_ih: tuple, q_hh: tuple, q_hr: tuple | None) -> Int8Cell:
    """An ``Int8Cell`` from the (q, scale) pairs of its matrices."""
    (q_ih, s_ih), (q_hh, s_hh) = q_ih, q_hh
    fused = np.concatenate([_pad4(q_ih), _pad4(q_hh)], axis=1)
    rowsums = np.stack([q_ih.sum(1, dtype=np.int64), q_hh.sum(1, dtype=np.int64)]).astype("<i4")
    proj, proj_scale = (None, None) if q_hr is None else (_pad4(q_hr[0]), q_hr[1])
    return Int8Cell(weight=fused, scales=np.stack([s_ih, s_hh]), rowsums=rowsums, proj=proj,
                    proj_scale=proj_scale)


def _matrices(w_ih, w_hh, w_hr) -> list[np.ndarray]:
    return [np.asarray(w, dtype=np.float32) for w in (w_ih, w_hh, w_hr) if w is not None]


def quantize_cell(w_ih: np.ndarray, w_hh: np.ndarray, w_hr: np.ndarray | None = None) -> Int8Cell:
    """Quantise one layer/direction (PyTorch layout, float) into the ``Int8Cell`` the file stores."""
    q = [quantize_rows(m) for m in _matrices(w_ih, w_hh, w_hr)]
    return _cell(q[0], q[1], q[2] if w_hr is not None else None)


def quantize_spec(spec: Any, layers=None) -> Any:
    """``spec`` (a ``format.ModelSpec``) carrying the int8 weights of ``layers`` (default: every layer).

    Layers already quantised in ``spec.int8`` are kept as they are, so calling this again costs nothing:
    each layer is quantised once per conversion, whichever int8 mode it ends up with (both modes store
    the same weights). Each matrix is quantised by row blocks in parallel threads; the float weights
    stay in the spec (float32 layers are written from them).
    """
    wanted = range(len(spec.layers)) if layers is None else layers
    int8 = list(spec.int8) if spec.int8 is not None else [None] * len(spec.layers)
    missing = [k for k in wanted if int8[k] is None]
    if not missing:
        return spec
    cells = [(k, d, cell.w_ih, cell.w_hh, cell.w_hr if spec.proj_size else None)
             for k in missing for d, cell in enumerate(spec.layers[k])]
    jobs = [m for _, _, *ws in cells for m in _matrices(*ws)]
    results = iter([quantize_rows(m) for m in jobs])
    for k in missing:
        int8[k] = [None] * len(spec.layers[k])
    for k, d, _, _, w_hr in cells:
        int8[k][d] = _cell(next(results), next(results), next(results) if w_hr is not None else None)
    return replace(spec, int8=int8)
