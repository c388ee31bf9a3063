/* f32_canonical.c - the dense head's row-major fp32 products, in the canonical order: each output's dot product keeps 16
 * partial sums (sum j takes the terms k = j, j + 16, j + 32, ... in increasing k, a rounded multiply then
 * a rounded add), reduced by the fixed tree s[j] + s[j + 8], then + 4, + 2, + 1, then added to y.
 * Written so compilers vectorise it without reordering, and bit-identical on every target (x87 too). */
#include "elementwise.h"

LSTM_INLINE float dot_canonical(const float *a, const float *x, size_t k) {
    float s[16] = {0};
    size_t i = 0;
    for (; i + 16 <= k; i += 16)
        for (size_t j = 0; j < 16; j++) s[j] = LSTM_R(s[j] + LSTM_R(a[i + j] * x[i + j]));
    for (size_t j = 0; i + j < k; j++) s[j] = LSTM_R(s[j] + LSTM_R(a[i + j] * x[i + j]));
    for (size_t w = 8; w >= 1; w /= 2)
        for (size_t j = 0; j < w; j++) s[j] = LSTM_R(s[j] + s[j + w]);
    return s[0];
}

void lstm_f32_gemv_canonical(size_t m, size_t k, const float *a, size_t lda, const float *x, float *y) {
    for (size_t r = 0; r < m; r++) y[r] = LSTM_R(y[r] + dot_canonical(a + r * lda, x, k));
}

void lstm_f32_gemm_canonical(size_t n, size_t m, size_t k, const float *x, size_t ldx, const float *w,
                             size_t ldw, float *c, size_t ldc) {
    for (size_t i = 0; i < n; i++) lstm_f32_gemv_canonical(m, k, w, ldw, x + i * ldx, c + i * ldc);
}
