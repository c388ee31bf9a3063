/* f32_neon.c - fp32 products for ARM Advanced SIMD, and the int8-weight x float-activation product.
 *  - sgemv / sgemm: aarch64 uses fused multiply-add (FMLA), 32-bit ARMv7 NEON multiply then add (VMLA; it
 *    has no vector FMA, and its NEON flushes denormals to zero): fp32 layers agree with the portable path
 *    within float rounding only, as on x86.
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

/* [sum(a) sum(b) sum(c) sum(d)] */
NEON static inline float32x4_t sum4(float32x4_t a, float32x4_t b, float32x4_t c, float32x4_t d) {
#ifdef LSTM_NEON32
    float32x2_t ab = vpadd_f32(vadd_f32(vget_low_f32(a), vget_high_f32(a)), vadd_f32(vget_low_f32(b), vget_high_f32(b)));
    float32x2_t cd = vpadd_f32(vadd_f32(vget_low_f32(c), vget_high_f32(c)), vadd_f32(vget_low_f32(d), vget_high_f32(d)));
    return vcombine_f32(ab, cd);
#else
    return vpaddq_f32(vpaddq_f32(a, b), vpaddq_f32(c, d));
#endif
}

/* Dot product of one row with x, any order (the tail of the kernels below). */
NEON static float dot_row(const float *a, const float *x, size_t k) {
    float32x4_t acc = vdupq_n_f32(0.0f);
    size_t j = 0;
    for (; j + 4 <= k; j += 4) acc = MLA(acc, vld1q_f32(a + j), vld1q_f32(x + j));
    float32x4_t s = sum4(acc, acc, acc, acc);
    float r = vgetq_lane_f32(s, 0);
    for (; j < k; j++) r += a[j] * x[j];
    return r;
}

/* y += A x, A row-major: 4 rows at a time share each load of x (4 independent chains). */
NEON void lstm_f32_gemv_neon(size_t m, size_t k, const float *a, size_t lda, const float *x, float *y) {
    size_t kf = k / 4 * 4, r = 0;
    for (; r + 4 <= m; r += 4) {
        const float *r0 = a + r * lda, *r1 = r0 + lda, *r2 = r1 + lda, *r3 = r2 + lda;
        float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
        for (size_t j = 0; j < kf; j += 4) {
            float32x4_t xv = vld1q_f32(x + j);
            a0 = MLA(a0, vld1q_f32(r0 + j), xv);
            a1 = MLA(a1, vld1q_f32(r1 + j), xv);
            a2 = MLA(a2, vld1q_f32(r2 + j), xv);
            a3 = MLA(a3, vld1q_f32(r3 + j), xv);
        }
        float s[4];
        vst1q_f32(s, sum4(a0, a1, a2, a3));
        for (size_t j = kf; j < k; j++) {
            s[0] += r0[j] * x[j];
            s[1] += r1[j] * x[j];
            s[2] += r2[j] * x[j];
            s[3] += r3[j] * x[j];
        }
        for (int i = 0; i < 4; i++) y[r + (size_t)i] += s[i];
    }
    for (; r < m; r++) y[r] += dot_row(a + r * lda, x, k);
}

/* C[n][m] += X[n][k] W[m][k]^T: tiles of 2 vectors x 4 rows of W (8 accumulators, each weight load feeds
 * 2 vectors); the rows and vectors past the tiles go through lstm_f32_gemv_neon. */
NEON void lstm_f32_gemm_neon(size_t n, size_t m, size_t k, const float *x, size_t ldx, const float *w, size_t ldw,
                             float *c, size_t ldc) {
    size_t kf = k / 4 * 4, n2 = n / 2 * 2, m4 = m / 4 * 4;
    for (size_t i = 0; i < n2; i += 2) {
        const float *x0 = x + i * ldx, *x1 = x0 + ldx;
        for (size_t r = 0; r < m4; r += 4) {
            const float *w0 = w + r * ldw;
            float32x4_t p[4], q[4];
            for (int j = 0; j < 4; j++) p[j] = q[j] = vdupq_n_f32(0.0f);
            for (size_t t = 0; t < kf; t += 4) {
                float32x4_t xv0 = vld1q_f32(x0 + t), xv1 = vld1q_f32(x1 + t);
                for (int j = 0; j < 4; j++) {
                    float32x4_t wv = vld1q_f32(w0 + (size_t)j * ldw + t);
                    p[j] = MLA(p[j], xv0, wv);
                    q[j] = MLA(q[j], xv1, wv);
                }
            }
            float s0[4], s1[4];
            vst1q_f32(s0, sum4(p[0], p[1], p[2], p[3]));
            vst1q_f32(s1, sum4(q[0], q[1], q[2], q[3]));
            for (size_t t = kf; t < k; t++)
                for (size_t j = 0; j < 4; j++) {
                    s0[j] += w0[j * ldw + t] * x0[t];
                    s1[j] += w0[j * ldw + t] * x1[t];
                }
            float *c0 = c + i * ldc + r, *c1 = c0 + ldc;
            for (int j = 0; j < 4; j++) {
                c0[j] += s0[j];
                c1[j] += s1[j];
            }
        }
        if (m4 < m)
            for (size_t v = 0; v < 2; v++)
                lstm_f32_gemv_neon(m - m4, k, w + m4 * ldw, ldw, x0 + v * ldx, c + (i + v) * ldc + m4);
    }
    for (size_t i = n2; i < n; i++) lstm_f32_gemv_neon(m, k, w, ldw, x + i * ldx, c + i * ldc);
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
