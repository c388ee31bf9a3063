"""int8 weight quantisation: symmetric, one scale per output row, clipping chosen per row for least error.

numpy only. The blocked layout written here is the one src/lstm_c/lstm_format.h describes.
"""
from __future__ import annotations

import numpy as np

# Candidate clipping thresholds, as fractions of each row's largest magnitude. Clipping a few outliers
# buys finer steps for every other weight; the search keeps whichever gives the least squared error.
CLIP_FRACTIONS = np.linspace(0.5, 1.0, 51, dtype=np.float64)


def quantize_rows(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quantise a float [rows, cols] matrix to int8 in [-127, 127] with one float32 scale per row.

    For each row the scale is clip / 127, with clip searched over CLIP_FRACTIONS of the row's max |w| to
    minimise sum (w - scale * q)^2. An all-zero row gets scale 0. Returns (q int8, scale float32).
    """
    w = np.asarray(w, dtype=np.float64)
    amax = np.abs(w).max(axis=1) if w.shape[1] else np.zeros(w.shape[0])
    best_err = np.full(w.shape[0], np.inf)
    best_scale = np.zeros(w.shape[0])
    for fraction in CLIP_FRACTIONS:
        scale = np.where(amax > 0, amax * fraction / 127.0, 1.0)
        q = np.clip(np.rint(w / scale[:, None]), -127, 127)
        err = ((w - q * scale[:, None]) ** 2).sum(axis=1)
        better = err < best_err
        best_err[better], best_scale[better] = err[better], scale[better]
    scale = best_scale.astype(np.float32)
    safe = np.where(scale > 0, scale, 1.0).astype(np.float64)
    q = np.clip(np.rint(w / safe[:, None]), -127, 127).astype(np.int8)
    return q, np.where(amax > 0, scale, 0.0).astype(np.float32)


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
