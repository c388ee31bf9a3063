/* blas.h - the two matrix products the fp32 engine needs, over CBLAS or over portable C loops.
 *
 * Build with -DLSTM_USE_CBLAS to call a CBLAS (OpenBLAS, MKL, Accelerate...); add
 * -DBLAS_SYMBOL_PREFIX=scipy_ for the prefixed symbols of the scipy-openblas32 wheel. Without
 * LSTM_USE_CBLAS the portable loops in blas.c are used (for devices with no BLAS). */
#ifndef LSTM_BLAS_H
#define LSTM_BLAS_H

#include <stddef.h>

/* y[m] += A[m][k] x[k], A row-major with row stride lda. */
void lstm_gemv_acc(size_t m, size_t k, const float *a, size_t lda, const float *x, float *y);

/* C[n][m] += X[n][k] W[m][k]^T: X with row stride ldx, W with row stride ldw, C with row stride ldc. */
void lstm_gemm_nt_acc(size_t n, size_t m, size_t k, const float *x, size_t ldx, const float *w, size_t ldw,
                      float *c, size_t ldc);

#endif /* LSTM_BLAS_H */
