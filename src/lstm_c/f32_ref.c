/* f32_ref.c - the portable fp32 products over packed weight panels (lstm_format.h, F32_PANELS), in the
 * "mul+add" order of kernels.h: every output one chain, acc = y[r], then acc = acc + w[r][k] * x[k - k0] for
 * k = k0 .. k1 - 1, a rounded multiply then a rounded add. The 16 rows of a panel are 16 independent
 * chains side by side, so compilers vectorise the inner loop without reordering any sum; bit-identical on
 * every target (x87 too: LSTM_R rounds every operation to float). */
#include "elementwise.h"

/* One panel (16 rows, `cols` columns k-major) for `valid` of its rows: y[j] += chain over [k0, k1). */
LSTM_INLINE void panel_ref(const float *p, size_t valid, size_t k0, size_t k1, const float *x, float *y) {
    float acc[16] = {0};
    for (size_t j = 0; j < valid; j++) acc[j] = y[j];
    for (size_t k = k0; k < k1; k++) {
        const float *wk = p + k * 16;
        float xk = x[k - k0];
        for (size_t j = 0; j < 16; j++) acc[j] = LSTM_R(acc[j] + LSTM_R(wk[j] * xk));
    }
    for (size_t j = 0; j < valid; j++) y[j] = acc[j];
}

void lstm_f32_gemv_ref(const float *w, size_t rows, size_t cols, size_t k0, size_t k1, const float *x, float *y) {
    for (size_t r0 = 0; r0 < rows; r0 += 16)
        panel_ref(w + r0 * cols, rows - r0 < 16 ? rows - r0 : 16, k0, k1, x, y + r0);
}

void lstm_f32_gemm_ref(const float *w, size_t rows, size_t cols, size_t k0, size_t k1, size_t n, const float *x,
                       size_t ldx, float *y, size_t ldy) {
    for (size_t i = 0; i < n; i++) lstm_f32_gemv_ref(w, rows, cols, k0, k1, x + i * ldx, y + i * ldy);
}
