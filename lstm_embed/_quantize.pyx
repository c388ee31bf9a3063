# cython: language_level=3, boundscheck=False, wraparound=False, embedsignature=True
"""The converter's clip search in C (host only; not part of the embedded runtime in src/lstm_c).

``clip_search`` computes exactly what the numpy reference ``lstm_embed.quantize.quantize_rows_numpy``
computes, with the same float64 operations in the same order, so the chosen scales and the int8 weights
are the same bits: per row and candidate fraction f, scale = amax * f / 127 (1 for an all-zero row),
err = sum over the row of (w - rint(clip(w / scale, -127, 127)) * scale)^2, summed in numpy's pairwise
order (``numpy/_core/src/umath/loops_utils.h.src``, ``pairwise_sum``), and the first candidate with the
least error wins. ``clip(rint(x))`` is computed as ``rint(clip(x))``: the same value for every x, NaN
included, since rint is monotone and the bounds are integers. The GIL is released; callers run row blocks
in threads.
"""
import numpy as np

from lstm_embed.errors import DTypeError, ShapeError

cimport numpy as cnp
from libc.stdint cimport int8_t

cnp.import_array()

cdef extern from *:
    """
    #include <float.h>
    #include <math.h>
    #include <stddef.h>
    #include <stdint.h>

    /* rint of an x already clipped to [-127, 127] (or NaN): ties to even in the default rounding mode.
     * Adding and removing 1.5 * 2^52 rounds to an integer when doubles are evaluated as doubles; under
     * excess precision (x87, FLT_EVAL_METHOD != 0) nearbyint does it. */
    #if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
    static inline double qz_round(double x) { return (x + 6755399441055744.0) - 6755399441055744.0; }
    #else
    static inline double qz_round(double x) { return nearbyint(x); }
    #endif

    static inline double qz_clip(double x) {
        x = x < -127.0 ? -127.0 : x; /* NaN stays NaN, as in np.clip */
        return x > 127.0 ? 127.0 : x;
    }

    /* The squared error of w stored as rint(clip(w / s)) * s. */
    static inline double qz_sq(double w, double s) {
        double d = w - qz_round(qz_clip(w / s)) * s;
        return d * d;
    }

    #if defined(__x86_64__) && defined(__GNUC__) && defined(__GLIBC__) && !defined(QZ_NO_CLONES)
    #define QZ_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
    #else
    #define QZ_CLONES
    #endif

    /* sum over a[0..n) of qz_sq(a[i], s), added in numpy's pairwise order (the order of np.sum over a
     * contiguous axis): runs below 8 summed straight, up to 128 with 8 interleaved accumulators combined
     * as ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7)) then the tail, above that split at n/2 rounded
     * down to a multiple of 8 and recursed. */
    QZ_CLONES
    static double qz_row_error(const double *a, size_t n, double s) {
        if (n < 8) {
            double res = 0.;
            for (size_t i = 0; i < n; i++) res += qz_sq(a[i], s);
            return res;
        }
        if (n <= 128) {
            double r[8];
            for (size_t j = 0; j < 8; j++) r[j] = qz_sq(a[j], s);
            size_t i;
            for (i = 8; i < n - (n % 8); i += 8)
                for (size_t j = 0; j < 8; j++) r[j] += qz_sq(a[i + j], s);
            double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
            for (; i < n; i++) res += qz_sq(a[i], s);
            return res;
        }
        size_t n2 = n / 2;
        n2 -= n2 % 8;
        return qz_row_error(a, n2, s) + qz_row_error(a + n2, n - n2, s);
    }

    /* Rows [r0, r1) of w [.][cols]: the least-error scale of each among the n fractions of amax
     * (best[r]), then q[r] = rint(clip(w / safe)) with safe = float32(best) or 1 where that is not > 0,
     * and scale[r] = float32(best) where amax > 0, else 0. */
    static void qz_rows(const double *w, size_t cols, const double *amax, const double *fractions, size_t n,
                        size_t r0, size_t r1, int8_t *q, float *scale) {
        for (size_t r = r0; r < r1; r++) {
            const double *row = w + r * cols;
            double a = amax[r], best_err = INFINITY, best = 0.0;
            for (size_t k = 0; k < n; k++) {
                double s = a > 0 ? a * fractions[k] / 127.0 : 1.0;
                double err = qz_row_error(row, cols, s);
                if (err < best_err) {
                    best_err = err;
                    best = s;
                }
            }
            float s32 = (float)best;
            double safe = s32 > 0 ? (double)s32 : 1.0;
            for (size_t j = 0; j < cols; j++) q[r * cols + j] = (int8_t)qz_round(qz_clip(row[j] / safe));
            scale[r] = a > 0 ? s32 : 0.0f;
        }
    }

    """
    void qz_rows(const double *w, size_t cols, const double *amax, const double *fractions, size_t n,
                 size_t r0, size_t r1, int8_t *q, float *scale) nogil
    double qz_row_error(const double *a, size_t n, double s) nogil


def row_errors(cnp.ndarray w, cnp.ndarray scale):
    """sum((w - rint(clip(w / scale, -127, 127)) * scale) ** 2, axis=1) for float64 ``w`` [rows, cols] and
    ``scale`` [rows], as the search computes it: for tests against numpy's own sum."""
    if (w.ndim != 2 or w.dtype != np.float64 or not w.flags.c_contiguous or scale.dtype != np.float64
            or scale.ndim != 1 or not scale.flags.c_contiguous):
        raise DTypeError("row_errors: contiguous float64 w [rows, cols] and scale [rows] expected")
    if scale.shape[0] != w.shape[0]:
        raise ShapeError("row_errors: one scale per row of w expected")
    cdef Py_ssize_t rows = w.shape[0], cols = w.shape[1], r
    out = np.empty(rows, dtype=np.float64)
    cdef double *op = <double *>cnp.PyArray_DATA(out)
    cdef const double *wp = <const double *>cnp.PyArray_DATA(w)
    cdef const double *sp = <const double *>cnp.PyArray_DATA(scale)
    with nogil:
        for r in range(rows):
            op[r] = qz_row_error(wp + r * cols, <size_t>cols, sp[r])
    return out


def clip_search(cnp.ndarray w, cnp.ndarray amax, cnp.ndarray fractions, cnp.ndarray q, cnp.ndarray scale,
                Py_ssize_t start, Py_ssize_t stop):
    """Rows ``start:stop`` of ``w`` (C-contiguous float64 [rows, cols]) into ``q`` (int8 [rows, cols]) and
    ``scale`` (float32 [rows]), the search over ``fractions`` (float64) of ``amax`` (float64 [rows]). The
    GIL is released; different row ranges may run in different threads at once."""
    if (w.ndim != 2 or w.dtype != np.float64 or not w.flags.c_contiguous
            or amax.dtype != np.float64 or amax.ndim != 1 or not amax.flags.c_contiguous
            or fractions.dtype != np.float64 or fractions.ndim != 1 or not fractions.flags.c_contiguous
            or q.dtype != np.int8 or q.ndim != 2 or not q.flags.c_contiguous
            or scale.dtype != np.float32 or scale.ndim != 1 or not scale.flags.c_contiguous):
        raise DTypeError("clip_search: contiguous float64 w [rows, cols], float64 amax, float64 fractions, "
                        "int8 q [rows, cols] and float32 scale [rows] expected")
    cdef Py_ssize_t rows = w.shape[0], cols = w.shape[1]
    if amax.shape[0] != rows or q.shape[0] != rows or q.shape[1] != cols or scale.shape[0] != rows:
        raise ShapeError("clip_search: shapes of w, amax, q and scale differ")
    if not 0 <= start <= stop <= rows:
        raise ShapeError(f"clip_search: rows {start}:{stop} outside 0:{rows}")
    cdef const double *wp = <const double *>cnp.PyArray_DATA(w)
    cdef const double *ap = <const double *>cnp.PyArray_DATA(amax)
    cdef const double *fp = <const double *>cnp.PyArray_DATA(fractions)
    cdef int8_t *qp = <int8_t *>cnp.PyArray_DATA(q)
    cdef float *sp = <float *>cnp.PyArray_DATA(scale)
    cdef size_t n = <size_t>fractions.shape[0]
    with nogil:
        qz_rows(wp, <size_t>cols, ap, fp, n, <size_t>start, <size_t>stop, qp, sp)
