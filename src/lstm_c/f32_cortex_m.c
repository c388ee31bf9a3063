/* f32_cortex_m.c - fp32 products and the int8-weight x float-activation product for Cortex-M cores with
 * the DSP extension and a single-precision FPU (M4F, M7, M33): scalar code shaped for 16 FPU registers.
 *  - sgemv / sgemm: 4 rows at a time, each a chain of fused multiply-adds (fmaf: VFMA.F32), so fp32 layers
 *    agree with the portable path within float rounding, as on the other SIMD tables.
 *  - gemv_f32: the canonical order of kernels.h row by row (the 4 partial sums of a row in registers,
 *    groups in order, a rounded multiply then a rounded add, (s0 + s1) + (s2 + s3), y += scale * sum): the
 *    reference's bits. */
#include "kernels_arm.h"

#ifdef LSTM_HAVE_CORTEX_M_FPU_KERNELS
#include <math.h>

void lstm_f32_gemv_cortex_m(size_t m, size_t k, const float *a, size_t lda, const float *x, float *y) {
    size_t r = 0;
    for (; r + 4 <= m; r += 4) {
        const float *a0 = a + r * lda, *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda;
        float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
        for (size_t j = 0; j < k; j++) {
            float xj = x[j];
            s0 = fmaf(a0[j], xj, s0);
            s1 = fmaf(a1[j], xj, s1);
            s2 = fmaf(a2[j], xj, s2);
            s3 = fmaf(a3[j], xj, s3);
        }
        y[r] += s0;
        y[r + 1] += s1;
        y[r + 2] += s2;
        y[r + 3] += s3;
    }
    for (; r < m; r++) {
        const float *a0 = a + r * lda;
        float s0 = 0.0f;
        for (size_t j = 0; j < k; j++) s0 = fmaf(a0[j], x[j], s0);
        y[r] += s0;
    }
}

void lstm_f32_gemm_cortex_m(size_t n, size_t m, size_t k, const float *x, size_t ldx, const float *w, size_t ldw,
                            float *c, size_t ldc) {
    for (size_t i = 0; i < n; i++) lstm_f32_gemv_cortex_m(m, k, w, ldw, x + i * ldx, c + i * ldc);
}

void lstm_s8_gemv_f32_cortex_m(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, const float *x,
                               const float *scale, float *y) {
    for (size_t r = 0; r < rows; r++) {
        const int8_t *b = w + ((r / 16) * groups + g0) * 64 + (r % 16) * 4;
        float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
        const float *xg = x;
        for (size_t g = g0; g < g1; g++, b += 64, xg += 4) {
            s0 = s0 + (float)b[0] * xg[0];
            s1 = s1 + (float)b[1] * xg[1];
            s2 = s2 + (float)b[2] * xg[2];
            s3 = s3 + (float)b[3] * xg[3];
        }
        float sum = (s0 + s1) + (s2 + s3);
        y[r] = y[r] + scale[r] * sum;
    }
}
#else
typedef int lstm_f32_cortex_m_unused; /* ISO C forbids an empty translation unit */
#endif
