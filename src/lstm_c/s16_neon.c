/* s16_neon.c - int8 x int16 products (int8-a16 layers) for ARM Advanced SIMD (aarch64 and 32-bit ARMv7-A
 * NEON; the NEON and NEON_DOT tables): exact integer sums, equal to the reference's for every input.
 * Half a panel (8 rows) at a time: each 16-byte load (4 rows x 4 columns) is widened to int16 (SXTL,
 * vmovl_s8) and multiplied by the group's 4 int16 activations with SMLAL (vmlal_s16) into one int32x4 per
 * row (lane = column; at most 128 groups per block: |lane| <= 127 * 32767 * 128 < 2^31); after every block
 * of LSTM_S16_BLOCK_GROUPS groups each row's lanes are added in pairs into int64 (SADDLP, vpaddlq_s32)
 * and into the row's int64 total. */
#include "kernels_arm.h"

#ifdef LSTM_HAVE_NEON_KERNELS
#include <arm_neon.h>
#include <string.h>

#if defined(LSTM_NEON32) && !defined(__ARM_NEON)
#define NEON __attribute__((target("fpu=neon")))
#else
#define NEON
#endif

/* Rows [8h, 8h + 8) of the panel at `panel` over groups [g0, g1): their exact sums into out[0..7]. */
NEON static void half_panel(const int8_t *panel, size_t h, size_t g0, size_t g1, const int16_t *q, int64_t *out) {
    int64x2_t total[8];
    for (int r = 0; r < 8; r++) total[r] = vdupq_n_s64(0);
    for (size_t gb = g0; gb < g1; gb += LSTM_S16_BLOCK_GROUPS) {
        size_t ge = g1 - gb < LSTM_S16_BLOCK_GROUPS ? g1 : gb + LSTM_S16_BLOCK_GROUPS;
        int32x4_t a[8];
        for (int r = 0; r < 8; r++) a[r] = vdupq_n_s32(0);
        for (size_t g = gb; g < ge; g++) {
            const int8_t *b = panel + g * 64 + 32 * h;
            int16x4_t qv = vld1_s16(q + (g - g0) * 4);
            for (int j = 0; j < 2; j++) { /* rows 4j..4j+3 of this half */
                int8x16_t v = vld1q_s8(b + 16 * j);
                int16x8_t lo = vmovl_s8(vget_low_s8(v)), hi = vmovl_s8(vget_high_s8(v));
                a[4 * j] = vmlal_s16(a[4 * j], vget_low_s16(lo), qv);
                a[4 * j + 1] = vmlal_s16(a[4 * j + 1], vget_high_s16(lo), qv);
                a[4 * j + 2] = vmlal_s16(a[4 * j + 2], vget_low_s16(hi), qv);
                a[4 * j + 3] = vmlal_s16(a[4 * j + 3], vget_high_s16(hi), qv);
            }
        }
        for (int r = 0; r < 8; r++) total[r] = vaddq_s64(total[r], vpaddlq_s32(a[r]));
    }
    for (int r = 0; r < 8; r++) out[r] = vgetq_lane_s64(total[r], 0) + vgetq_lane_s64(total[r], 1);
}

/* One panel's 16 sums, rows < valid stored. */
NEON static void panel(const int8_t *p, size_t g0, size_t g1, const int16_t *q, int64_t *out, size_t valid) {
    int64_t t[16];
    half_panel(p, 0, g0, g1, q, t);
    if (valid > 8) half_panel(p, 1, g0, g1, q, t + 8);
    memcpy(out, t, (valid < 16 ? valid : 16) * sizeof(int64_t));
}

NEON void lstm_s16_gemv_neon(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, const int16_t *q,
                             int64_t *acc) {
    for (size_t r0 = 0; r0 < rows; r0 += 16) panel(w + (r0 / 16) * groups * 64, g0, g1, q, acc + r0, rows - r0);
}

NEON void lstm_s16_gemm_neon(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n,
                             const int16_t *q, size_t ldq, int64_t *acc, size_t ldacc) {
    for (size_t r0 = 0; r0 < rows; r0 += 16)
        for (size_t i = 0; i < n; i++) /* the panel stays in L1 across the vectors */
            panel(w + (r0 / 16) * groups * 64, g0, g1, q + i * ldq, acc + i * ldacc + r0, rows - r0);
}

#else
typedef int lstm_s16_neon_unused; /* ISO C forbids an empty translation unit */
#endif
