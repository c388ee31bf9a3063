/* f32_ref.c - the portable fp32 products over packed weight panels (lstm_format.h, F32_PANELS), in the
 * "mul+add" order of kernels.h: for every output the columns [k0, k1) in blocks of LSTM_F32_BLOCK from k0,
 * each block one chain from 0 (acc = acc + w[r][k] * x[k - k0], a rounded multiply then a rounded add),
 * the blocks of each superblock (LSTM_F32_SUPER blocks) summed into sup, then y[r] = y[r] + sup. The 16 rows of a panel are 16 independent chains side by side, so compilers
 * vectorise the inner loop without reordering any sum; bit-identical on every target (x87 too: LSTM_R
 * rounds every operation to float). */
#include "elementwise.h"

#include <string.h>

/* GCC and clang vector extensions keep the 16 chains in 4 registers of 4 lanes (plain loops over an array
 * of 16 were vectorised badly, 4-8x slower); each lane is the same rounded multiply then rounded add.
 * Not on x87, whose excess precision only LSTM_R's stores remove: there the scalar loop. */
#if (defined(__GNUC__) || defined(__clang__)) && !(defined(__i386__) && !defined(__SSE2_MATH__))
typedef float lstm_v4 __attribute__((vector_size(16)));

/* One panel (16 rows, `cols` columns k-major) for `valid` of its rows: y[j] += the blocked sum over
 * [k0, k1) (kernels.h). */
LSTM_INLINE void panel_ref(const float *p, size_t valid, size_t k0, size_t k1, const float *x, float *y) {
    float t[16];
    for (size_t j = 0; j < 16; j++) t[j] = j < valid ? y[j] : 0.0f;
    lstm_v4 s0, s1, s2, s3, w0, w1, w2, w3;
    memcpy(&s0, t, 16), memcpy(&s1, t + 4, 16), memcpy(&s2, t + 8, 16), memcpy(&s3, t + 12, 16);
    for (size_t sb = k0; sb < k1; sb += LSTM_F32_SPAN) {
        size_t se = k1 - sb > LSTM_F32_SPAN ? sb + LSTM_F32_SPAN : k1;
        lstm_v4 u0 = {0.0f, 0.0f, 0.0f, 0.0f}, u1 = u0, u2 = u0, u3 = u0;
        for (size_t kb = sb; kb < se; kb += LSTM_F32_BLOCK) {
            size_t ke = se - kb > LSTM_F32_BLOCK ? kb + LSTM_F32_BLOCK : se;
            lstm_v4 a0 = {0.0f, 0.0f, 0.0f, 0.0f}, a1 = a0, a2 = a0, a3 = a0;
            for (size_t k = kb; k < ke; k++) {
                const float *wk = p + k * 16;
                const float xk = x[k - k0];
                memcpy(&w0, wk, 16), memcpy(&w1, wk + 4, 16), memcpy(&w2, wk + 8, 16), memcpy(&w3, wk + 12, 16);
                a0 = a0 + w0 * xk;
                a1 = a1 + w1 * xk;
                a2 = a2 + w2 * xk;
                a3 = a3 + w3 * xk;
            }
            u0 = u0 + a0, u1 = u1 + a1, u2 = u2 + a2, u3 = u3 + a3;
        }
        s0 = s0 + u0, s1 = s1 + u1, s2 = s2 + u2, s3 = s3 + u3;
    }
    memcpy(t, &s0, 16), memcpy(t + 4, &s1, 16), memcpy(t + 8, &s2, 16), memcpy(t + 12, &s3, 16);
    for (size_t j = 0; j < valid; j++) y[j] = t[j];
}
#else
LSTM_INLINE void panel_ref(const float *p, size_t valid, size_t k0, size_t k1, const float *x, float *y) {
    float sum[16], sup[16], acc[16];
    for (size_t j = 0; j < 16; j++) sum[j] = j < valid ? y[j] : 0.0f;
    for (size_t sb = k0; sb < k1; sb += LSTM_F32_SPAN) {
        size_t se = k1 - sb > LSTM_F32_SPAN ? sb + LSTM_F32_SPAN : k1;
        for (size_t j = 0; j < 16; j++) sup[j] = 0.0f;
        for (size_t kb = sb; kb < se; kb += LSTM_F32_BLOCK) {
            size_t ke = se - kb > LSTM_F32_BLOCK ? kb + LSTM_F32_BLOCK : se;
            for (size_t j = 0; j < 16; j++) acc[j] = 0.0f;
            for (size_t k = kb; k < ke; k++) {
                const float *wk = p + k * 16;
                const float xk = x[k - k0];
                for (size_t j = 0; j < 16; j++) acc[j] = LSTM_R(acc[j] + LSTM_R(wk[j] * xk));
            }
            for (size_t j = 0; j < 16; j++) sup[j] = LSTM_R(sup[j] + acc[j]);
        }
        for (size_t j = 0; j < 16; j++) sum[j] = LSTM_R(sum[j] + sup[j]);
    }
    for (size_t j = 0; j < valid; j++) y[j] = sum[j];
}
#endif

void lstm_f32_gemv_ref(const float *w, size_t rows, size_t cols, size_t k0, size_t k1, const float *x, float *y) {
    for (size_t r0 = 0; r0 < rows; r0 += 16)
        panel_ref(w + r0 * cols, rows - r0 < 16 ? rows - r0 : 16, k0, k1, x, y + r0);
}

void lstm_f32_gemm_ref(const float *w, size_t rows, size_t cols, size_t k0, size_t k1, size_t n, const float *x,
                       size_t ldx, float *y, size_t ldy) {
    for (size_t i = 0; i < n; i++) lstm_f32_gemv_ref(w, rows, cols, k0, k1, x + i * ldx, y + i * ldy);
}
