/* blas.c - the matrix products of blas.h. */
#include "blas.h"

#ifdef LSTM_USE_CBLAS
#include <cblas.h>

#ifdef BLAS_SYMBOL_PREFIX
#define LSTM_PASTE(a, b) a##b
#define LSTM_PREFIXED(prefix, name) LSTM_PASTE(prefix, name)
#define LSTM_CBLAS(name) LSTM_PREFIXED(BLAS_SYMBOL_PREFIX, name)
#else
#define LSTM_CBLAS(name) name
#endif

void lstm_gemv_acc(size_t m, size_t k, const float *a, size_t lda, const float *x, float *y) {
    LSTM_CBLAS(cblas_sgemv)(CblasRowMajor, CblasNoTrans, (int)m, (int)k, 1.0f, a, (int)lda, x, 1, 1.0f, y, 1);
}

void lstm_gemm_nt_acc(size_t n, size_t m, size_t k, const float *x, size_t ldx, const float *w, size_t ldw,
                      float *c, size_t ldc) {
    LSTM_CBLAS(cblas_sgemm)(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)m, (int)k, 1.0f, x, (int)ldx,
                            w, (int)ldw, 1.0f, c, (int)ldc);
}

#else /* portable loops */

/* Dot product with 8 independent partial sums, so the compiler can keep them in vector registers. */
static float dot(const float *a, const float *b, size_t k) {
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i = 0;
    for (; i + 8 <= k; i += 8)
        for (size_t j = 0; j < 8; j++) s[j] += a[i + j] * b[i + j];
    float tail = 0.0f;
    for (; i < k; i++) tail += a[i] * b[i];
    return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7])) + tail;
}

void lstm_gemv_acc(size_t m, size_t k, const float *a, size_t lda, const float *x, float *y) {
    for (size_t r = 0; r < m; r++) y[r] += dot(a + r * lda, x, k);
}

void lstm_gemm_nt_acc(size_t n, size_t m, size_t k, const float *x, size_t ldx, const float *w, size_t ldw,
                      float *c, size_t ldc) {
    for (size_t i = 0; i < n; i++) lstm_gemv_acc(m, k, w, ldw, x + i * ldx, c + i * ldc);
}

#endif
