/* f32_cortex_m.c - fp32 products for Cortex-M cores with the DSP extension and a single-precision FPU
 * (M4F, M7, M33): scalar code shaped for 16 FPU registers. gemv / gemm over packed panels: each output in
 * blocks of LSTM_F32_BLOCK columns, each a chain of fused multiply-adds in k order from 0 (fmaf: VFMA.F32),
 * summed per superblock of LSTM_F32_SUPER blocks, then added to y: the "fma" family of kernels.h, the bits of the x86 and aarch64 kernels. (The int8 x
 * float product of this table is the portable one, s8_ref.c: cheaper on the M4 than the row-at-a-time
 * FPU kernel that was here, docs/arm.md.) */
#include "kernels_arm.h"

#ifdef LSTM_HAVE_CORTEX_M_FPU_KERNELS
#include <math.h>

/* One panel: its 16 rows as 16 chains of VFMA.F32 in k order (the "fma" family of kernels.h), held in
 * FPU registers across a block of k, then added to y. */
void lstm_f32_gemv_cortex_m(const float *w, size_t rows, size_t cols, size_t k0, size_t k1, const float *x,
                            float *y) {
    for (size_t r0 = 0; r0 < rows; r0 += 16) {
        const float *p = w + r0 * cols;
        size_t valid = rows - r0 < 16 ? rows - r0 : 16;
        for (size_t sb = k0; sb < k1; sb += LSTM_F32_SPAN) {
            size_t se = k1 - sb > LSTM_F32_SPAN ? sb + LSTM_F32_SPAN : k1;
            float sup[16] = {0};
            for (size_t kb = sb; kb < se; kb += LSTM_F32_BLOCK) {
                size_t ke = se - kb > LSTM_F32_BLOCK ? kb + LSTM_F32_BLOCK : se;
                float acc[16] = {0};
                for (size_t k = kb; k < ke; k++) {
                    const float *wk = p + k * 16;
                    float xk = x[k - k0];
#pragma GCC unroll 16
                    for (int j = 0; j < 16; j++) acc[j] = fmaf(wk[j], xk, acc[j]);
                }
                for (int j = 0; j < 16; j++) sup[j] = sup[j] + acc[j];
            }
            for (size_t j = 0; j < valid; j++) y[r0 + j] = y[r0 + j] + sup[j];
        }
    }
}

void lstm_f32_gemm_cortex_m(const float *w, size_t rows, size_t cols, size_t k0, size_t k1, size_t n,
                            const float *x, size_t ldx, float *y, size_t ldy) {
    for (size_t i = 0; i < n; i++) lstm_f32_gemv_cortex_m(w, rows, cols, k0, k1, x + i * ldx, y + i * ldy);
}
#else
typedef int lstm_f32_cortex_m_unused; /* ISO C forbids an empty translation unit */
#endif
