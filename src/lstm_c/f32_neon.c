/* f32_neon.c - fp32 products for ARM Advanced SIMD, and the int8-weight x float-activation product.
 *  - f32 gemv / gemm over packed panels (lstm_format.h), every output in blocks of LSTM_F32_BLOCK columns,
 *    each one chain in k order from 0, summed per superblock, then added to y (kernels.h): aarch64 uses
 *    fused multiply-add (FMLA: the "fma" family of kernels.h, the bits of the x86 kernels); 32-bit ARMv7
 *    NEON multiply then add (VMLA: it has no vector FMA; the order of the portable kernel, but NEON flushes
 *    subnormals to zero).
 *  - gemv_f32 (int8 x float) follows the canonical order of kernels.h with a rounded multiply then a
 *    rounded add (vmulq_f32, vaddq_f32; never vfmaq): on aarch64 the reference's bits. On 32-bit ARM it is
 *    the portable kernel on the IEEE scalar VFP unit, because NEON's flush-to-zero would break bit identity
 *    whenever an activation or a partial sum is subnormal. */
#include "kernels_arm.h"

#ifdef LSTM_HAVE_NEON_KERNELS
#include <arm_neon.h>

#if defined(LSTM_NEON32) && !defined(__ARM_NEON)
#define NEON __attribute__((target("fpu=neon")))
#define MLA(acc, a, b) vmlaq_f32(acc, a, b)
#elif defined(LSTM_NEON32)
#define NEON
#define MLA(acc, a, b) vmlaq_f32(acc, a, b)
#else
#define NEON
#define MLA(acc, a, b) vfmaq_f32(acc, a, b)
#endif

#define ALWAYS static inline __attribute__((always_inline))

/* NP panels from row r0 times NV vectors: a 16-row panel is 4 registers; NP * NV * 4 accumulators start at
 * 0 for every block of LSTM_F32_BLOCK columns and are then added into the superblock sums, which are added
 * to y at the end of each superblock; each weight load feeds NV
 * multiply-adds. Rows past `rows` are computed (their weights are zero) but never stored. */
NEON ALWAYS void tile(const float *w, size_t rows, size_t cols, size_t r0, size_t k0, size_t k1, const float *x,
                      size_t ldx, float *y, size_t ldy, const int NP, const int NV) {
    float32x4_t acc[4][8], sup[4][8];
    const float *p = w + r0 * cols;
    size_t valid = rows - r0; /* rows of the tile that exist, from r0 */
    for (size_t sb = k0; sb < k1; sb += LSTM_F32_SPAN) {
        size_t se = k1 - sb > LSTM_F32_SPAN ? sb + LSTM_F32_SPAN : k1;
        for (int v = 0; v < NV; v++) /* the superblock's sums start from +0 */
            for (int q = 0; q < 4 * NP; q++) sup[v][q] = vdupq_n_f32(0.0f);
        for (size_t kb = sb; kb < se; kb += LSTM_F32_BLOCK) {
            size_t ke = se - kb > LSTM_F32_BLOCK ? kb + LSTM_F32_BLOCK : se;
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++)
#pragma GCC unroll 8
                for (int q = 0; q < 4 * NP; q++) acc[v][q] = vdupq_n_f32(0.0f);
            for (size_t k = kb; k < ke; k++) {
                float32x4_t wv[8];
#pragma GCC unroll 8
                for (int q = 0; q < 4 * NP; q++) wv[q] = vld1q_f32(p + (size_t)(q / 4) * cols * 16 + k * 16 + 4 * (q % 4));
#pragma GCC unroll 4
                for (int v = 0; v < NV; v++) {
                    float32x4_t xb = vdupq_n_f32(x[v * ldx + k - k0]);
#pragma GCC unroll 8
                    for (int q = 0; q < 4 * NP; q++) acc[v][q] = MLA(acc[v][q], wv[q], xb);
                }
            }
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) /* sup = sup + acc */
#pragma GCC unroll 8
                for (int q = 0; q < 4 * NP; q++) sup[v][q] = vaddq_f32(sup[v][q], acc[v][q]);
        }
        /* y = y + the superblock's sums, for the rows that exist */
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
#pragma GCC unroll 8
            for (int q = 0; q < 4 * NP; q++) {
                float *yq = y + v * ldy + r0 + 4 * (size_t)q;
                if (4 * (size_t)q + 4 <= valid) {
                    vst1q_f32(yq, vaddq_f32(vld1q_f32(yq), sup[v][q]));
                } else {
                    float t[4];
                    vst1q_f32(t, sup[v][q]);
                    for (size_t j = 0; 4 * (size_t)q + j < valid && j < 4; j++) yq[j] = yq[j] + t[j];
                }
            }
    }
}

#ifdef LSTM_NEON32 /* 16 registers: one panel at a time, 2 vectors */
#define GEMV_PANELS 1
#define GEMM_VECTORS 2
#else /* 32 registers: 2 panels (8 accumulators) for one vector, 1 panel for 4 vectors (16) */
#define GEMV_PANELS 2
#define GEMM_VECTORS 4
#endif

NEON void lstm_f32_gemv_neon(const float *w, size_t rows, size_t cols, size_t k0, size_t k1, const float *x,
                             float *y) {
    size_t r0 = 0;
    for (; r0 + 16 * GEMV_PANELS <= lstm_r16(rows); r0 += 16 * GEMV_PANELS)
        tile(w, rows, cols, r0, k0, k1, x, 0, y, 0, GEMV_PANELS, 1);
    if (r0 < rows) tile(w, rows, cols, r0, k0, k1, x, 0, y, 0, 1, 1);
}

NEON void lstm_f32_gemm_neon(const float *w, size_t rows, size_t cols, size_t k0, size_t k1, size_t n,
                             const float *x, size_t ldx, float *y, size_t ldy) {
    for (size_t r0 = 0; r0 < rows; r0 += 16) {
        size_t i = 0;
        for (; i + GEMM_VECTORS <= n; i += GEMM_VECTORS)
            tile(w, rows, cols, r0, k0, k1, x + i * ldx, ldx, y + i * ldy, ldy, 1, GEMM_VECTORS);
        for (; i < n; i++) tile(w, rows, cols, r0, k0, k1, x + i * ldx, ldx, y + i * ldy, ldy, 1, 1);
    }
}

#ifdef LSTM_NEON32
void lstm_s8_gemv_f32_neon(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, const float *x,
                           const float *scale, float *y) {
    lstm_s8_gemv_f32_ref(w, rows, groups, g0, g1, x, scale, y);
}
#else
/* Rows 4j .. 4j + 3 (16 bytes of a block) widened to floats, one row per vector (lane c = column c of
 * the group), each multiplied by the group's 4 activations and added to its row's 4 partial sums.
 * Written out with named accumulators: GCC keeps arrays of vectors in memory at -O2. */
#define ROWS4(b, xg, s0, s1, s2, s3)                                                                         \
    do {                                                                                                     \
        int8x16_t v_ = vld1q_s8(b);                                                                          \
        int16x8_t lo_ = vmovl_s8(vget_low_s8(v_)), hi_ = vmovl_high_s8(v_);                                  \
        s0 = vaddq_f32(s0, vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo_))), xg));                      \
        s1 = vaddq_f32(s1, vmulq_f32(vcvtq_f32_s32(vmovl_high_s16(lo_)), xg));                               \
        s2 = vaddq_f32(s2, vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi_))), xg));                      \
        s3 = vaddq_f32(s3, vmulq_f32(vcvtq_f32_s32(vmovl_high_s16(hi_)), xg));                               \
    } while (0)

/* (s0 + s1) + (s2 + s3) of 4 rows, as one vector in row order */
static inline float32x4_t finish4(float32x4_t r0, float32x4_t r1, float32x4_t r2, float32x4_t r3) {
    return vpaddq_f32(vpaddq_f32(r0, r1), vpaddq_f32(r2, r3));
}

/* The order of kernels.h: s[4r + c] += w[r][c] * x[c] group after group (a rounded multiply, a rounded
 * add), then per row (s0 + s1) + (s2 + s3) with two pairwise adds, then y += scale * sum. */
void lstm_s8_gemv_f32_neon(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, const float *x,
                           const float *scale, float *y) {
    for (size_t r0 = 0; r0 < rows; r0 += 16) {
        const int8_t *panel = w + (r0 / 16) * groups * 64;
        float32x4_t z = vdupq_n_f32(0.0f);
        float32x4_t a0 = z, a1 = z, a2 = z, a3 = z, b0 = z, b1 = z, b2 = z, b3 = z;
        float32x4_t c0 = z, c1 = z, c2 = z, c3 = z, d0 = z, d1 = z, d2 = z, d3 = z;
        for (size_t g = g0; g < g1; g++) {
            const int8_t *b = panel + g * 64;
            float32x4_t xg = vld1q_f32(x + (g - g0) * 4);
            ROWS4(b, xg, a0, a1, a2, a3);
            ROWS4(b + 16, xg, b0, b1, b2, b3);
            ROWS4(b + 32, xg, c0, c1, c2, c3);
            ROWS4(b + 48, xg, d0, d1, d2, d3);
        }
        float32x4_t sums[4] = {finish4(a0, a1, a2, a3), finish4(b0, b1, b2, b3), finish4(c0, c1, c2, c3),
                               finish4(d0, d1, d2, d3)};
        if (r0 + 16 <= rows) {
            for (int j = 0; j < 4; j++) {
                float *yr = y + r0 + 4 * j;
                vst1q_f32(yr, vaddq_f32(vld1q_f32(yr), vmulq_f32(vld1q_f32(scale + r0 + 4 * j), sums[j])));
            }
        } else {
            float s[16];
            for (int j = 0; j < 4; j++) vst1q_f32(s + 4 * j, sums[j]);
            for (size_t i = 0; r0 + i < rows; i++) y[r0 + i] = y[r0 + i] + scale[r0 + i] * s[i];
        }
    }
}
#endif

#else
typedef int lstm_f32_neon_unused; /* ISO C forbids an empty translation unit */
#endif
