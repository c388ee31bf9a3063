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

void lstm_f32_gemv_cblas(size_t m, size_t k, const float *a, size_t lda, const float *x, float *y) {
    LSTM_CBLAS(cblas_sgemv)(CblasRowMajor, CblasNoTrans, (int)m, (int)k, 1.0f, a, (int)lda, x, 1, 1.0f, y, 1);
}

void lstm_f32_gemm_cblas(size_t n, size_t m, size_t k, const float *x, size_t ldx, const float *w, size_t ldw,
                         float *c, size_t ldc) {
    LSTM_CBLAS(cblas_sgemm)(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)m, (int)k, 1.0f, x, (int)ldx,
                            w, (int)ldw, 1.0f, c, (int)ldc);
}
#else
typedef int lstm_f32_cblas_unused; /* ISO C forbids an empty translation unit */
#endif
