/* f32_cblas.c - fp32 products through a linked CBLAS (OpenBLAS, MKL, Accelerate...): the LSTM_ISA_BLAS
 * table's, for comparison with our own kernels. Built with -DLSTM_USE_CBLAS; add
 * -DBLAS_SYMBOL_PREFIX=scipy_ for the prefixed symbols of the scipy-openblas32 wheel. A BLAS may
 * allocate, lock or start threads inside these calls: no other table uses it. */
#include "kernels.h"

#ifdef LSTM_USE_CBLAS
#include <cblas.h>

#ifdef BLAS_SYMBOL_PREFIX
#define LSTM_PASTE(a, b) a##b
#define LSTM_PREFIXED(prefix, name) LSTM_PASTE(prefix, name)
#define LSTM_CBLAS(name) LSTM_PREFIXED(BLAS_SYMBOL_PREFIX, name)
#else
#define LSTM_CBLAS(name) name
#endif

/* Panel p of a packed matrix is, to BLAS, a column-major [16 x cols] matrix with leading dimension 16 (or a
 * row-major [cols x 16] one): one call per panel, for the rows of it that exist. */
void lstm_f32_gemv_cblas(const float *w, size_t rows, size_t cols, size_t k0, size_t k1, const float *x, float *y) {
    for (size_t r0 = 0; r0 < rows && k1 > k0; r0 += 16)
        LSTM_CBLAS(cblas_sgemv)(CblasColMajor, CblasNoTrans, (int)(rows - r0 < 16 ? rows - r0 : 16), (int)(k1 - k0),
                                1.0f, w + r0 * cols + k0 * 16, 16, x, 1, 1.0f, y + r0, 1);
}

void lstm_f32_gemm_cblas(const float *w, size_t rows, size_t cols, size_t k0, size_t k1, size_t n, const float *x,
                         size_t ldx, float *y, size_t ldy) {
    for (size_t r0 = 0; r0 < rows && k1 > k0 && n > 0; r0 += 16)
        LSTM_CBLAS(cblas_sgemm)(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)(rows - r0 < 16 ? rows - r0 : 16),
                                (int)(k1 - k0), 1.0f, x, (int)ldx, w + r0 * cols + k0 * 16, 16, 1.0f, y + r0, (int)ldy);
}
#else
typedef int lstm_f32_cblas_unused; /* ISO C forbids an empty translation unit */
#endif
