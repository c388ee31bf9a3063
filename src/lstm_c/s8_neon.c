/* s8_neon.c - int8 x int8 products (int8-dynamic layers) for ARM Advanced SIMD; exact integer sums, equal
 * to the reference's for every input.
 *  - NEON (ARMv8.0-A such as Cortex-A53, and 32-bit ARMv7-A): SMULL (vmull_s8) forms 16 exact int16
 *    products (|w q| <= 2^14), SADALP (vpadalq_s16) adds them in pairs into int32 lanes: never saturates.
 *  - NEON_DOT (aarch64 with ARMv8.2-A dot product): one SDOT (vdotq_s32) per 16 bytes of a block gives 4
 *    rows x 4 columns straight into 4 int32 row sums. gemm_s8 shares each weight load among 4 vectors.
 * And gemm_f32 (int8 weights x float activations, several vectors): on aarch64 each weight load converted
 * to float once for 4 vectors, every output equal to lstm_s8_gemv_f32_neon's on its vector; on 32-bit ARM
 * the portable kernel, as gemv_f32 there (NEON flushes subnormals to zero: f32_neon.c). */
#include "kernels_arm.h"

#ifdef LSTM_HAVE_NEON_KERNELS
#include <arm_neon.h>
#include <string.h>

#if defined(LSTM_NEON32) && !defined(__ARM_NEON)
#define NEON __attribute__((target("fpu=neon")))
#else
#define NEON
#endif

/* q[0..3] repeated 4 times. */
NEON static inline int8x16_t repeat4(const int8_t *q) {
    int32_t q4;
    memcpy(&q4, q, 4);
    return vreinterpretq_s8_s32(vdupq_n_s32(q4));
}

/* Store the 16 sums of a panel: rows [r0, r0 + 16) of acc, only those below `rows` when `partial`. */
NEON static inline void store16(int32_t *out, const int32x4_t s[4], size_t valid) {
    if (valid >= 16) {
        for (int j = 0; j < 4; j++) vst1q_s32(out + 4 * j, s[j]);
        return;
    }
    int32_t t[16];
    for (int j = 0; j < 4; j++) vst1q_s32(t + 4 * j, s[j]);
    memcpy(out, t, valid * sizeof(int32_t));
}

/* pairwise sums of two accumulators: [a0 + a1, a2 + a3, b0 + b1, b2 + b3] */
NEON static inline int32x4_t padd(int32x4_t a, int32x4_t b) {
#ifdef LSTM_NEON32
    return vcombine_s32(vpadd_s32(vget_low_s32(a), vget_high_s32(a)), vpadd_s32(vget_low_s32(b), vget_high_s32(b)));
#else
    return vpaddq_s32(a, b);
#endif
}

/* 16 bytes (rows 4j .. 4j + 3) against the group's activations ql (q0..q3 twice): rows 4j, 4j + 1 into lo,
 * rows 4j + 2, 4j + 3 into hi, two partial sums (columns 0-1, 2-3) per row. */
#define MULL16(b, ql, lo, hi)                                                                                \
    do {                                                                                                     \
        int8x16_t v_ = vld1q_s8(b);                                                                          \
        lo = vpadalq_s16(lo, vmull_s8(vget_low_s8(v_), ql));                                                 \
        hi = vpadalq_s16(hi, vmull_s8(vget_high_s8(v_), ql));                                                \
    } while (0)

/* One panel against one vector: the 16 row sums in s[0..3] (rows 4j .. 4j + 3 in s[j]). Named
 * accumulators: GCC keeps arrays of vectors in memory at -O2. */
NEON static inline void panel_neon(const int8_t *panel, size_t g0, size_t g1, const int8_t *q, int32x4_t s[4]) {
    int32x4_t z = vdupq_n_s32(0);
    int32x4_t a0 = z, a1 = z, b0 = z, b1 = z, c0 = z, c1 = z, d0 = z, d1 = z;
    for (size_t g = g0; g < g1; g++) {
        const int8_t *b = panel + g * 64;
        int8x8_t ql = vget_low_s8(repeat4(q + (g - g0) * 4));
        MULL16(b, ql, a0, a1);
        MULL16(b + 16, ql, b0, b1);
        MULL16(b + 32, ql, c0, c1);
        MULL16(b + 48, ql, d0, d1);
    }
    s[0] = padd(a0, a1);
    s[1] = padd(b0, b1);
    s[2] = padd(c0, c1);
    s[3] = padd(d0, d1);
}

NEON void lstm_s8_gemv_neon(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, const int8_t *q,
                            const int32_t *rowsum, int32_t *acc) {
    (void)rowsum;
    for (size_t r0 = 0; r0 < rows; r0 += 16) {
        int32x4_t s[4];
        panel_neon(w + (r0 / 16) * groups * 64, g0, g1, q, s);
        store16(acc + r0, s, 16); /* acc has room for r16(rows) */
    }
}

NEON void lstm_s8_gemm_neon(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n,
                            const int8_t *q, size_t ldq, const int32_t *rowsum, int32_t *acc, size_t ldacc) {
    (void)rowsum;
    for (size_t r0 = 0; r0 < rows; r0 += 16)
        for (size_t i = 0; i < n; i++) { /* the panel (at most a few KB) stays in L1 across the vectors */
            int32x4_t s[4];
            panel_neon(w + (r0 / 16) * groups * 64, g0, g1, q + i * ldq, s);
            store16(acc + i * ldacc + r0, s, rows - r0);
        }
}

#ifdef LSTM_NEON32
void lstm_s8_gemm_f32_neon(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n,
                           const float *x, size_t ldx, const float *scale, float *y, size_t ldy) {
    lstm_s8_gemm_f32_ref(w, rows, groups, g0, g1, n, x, ldx, scale, y, ldy);
}
#else
/* 4 rows (16 bytes of a block) as 4 float vectors, row r in w_r (lane c: column c of the group). */
#define WIDEN4(b, w0, w1, w2, w3)                                                                            \
    do {                                                                                                     \
        int8x16_t v_ = vld1q_s8(b);                                                                          \
        int16x8_t lo_ = vmovl_s8(vget_low_s8(v_)), hi_ = vmovl_high_s8(v_);                                  \
        w0 = vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo_)));                                                    \
        w1 = vcvtq_f32_s32(vmovl_high_s16(lo_));                                                             \
        w2 = vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi_)));                                                    \
        w3 = vcvtq_f32_s32(vmovl_high_s16(hi_));                                                             \
    } while (0)

/* One vector's 4 row accumulators += w_r * xg (a rounded multiply, then a rounded add). */
#define ACC4(s0, s1, s2, s3, xg)                                                                             \
    do {                                                                                                     \
        float32x4_t x_ = (xg);                                                                               \
        s0 = vaddq_f32(s0, vmulq_f32(w0, x_));                                                               \
        s1 = vaddq_f32(s1, vmulq_f32(w1, x_));                                                               \
        s2 = vaddq_f32(s2, vmulq_f32(w2, x_));                                                               \
        s3 = vaddq_f32(s3, vmulq_f32(w3, x_));                                                               \
    } while (0)

/* y[0 .. valid) += scale * ((s0 + s1) + (s2 + s3)) of rows 0..3 (two pairwise adds, as gemv_f32_neon). */
NEON static inline void finish_rows4(float *y, const float *scale, size_t valid, float32x4_t r0, float32x4_t r1,
                                     float32x4_t r2, float32x4_t r3) {
    float32x4_t sums = vpaddq_f32(vpaddq_f32(r0, r1), vpaddq_f32(r2, r3));
    if (valid >= 4) {
        vst1q_f32(y, vaddq_f32(vld1q_f32(y), vmulq_f32(vld1q_f32(scale), sums)));
        return;
    }
    float s[4];
    vst1q_f32(s, sums);
    for (size_t i = 0; i < valid; i++) y[i] = y[i] + scale[i] * s[i];
}

/* Rows 4j .. 4j + 3 of a panel (quad = the panel's blocks + 16 j) against 4 vectors (x + v * ldx): for
 * each vector the operations of gemv_f32_neon on these rows, in its order, each weight load converted
 * once (16 named accumulators: GCC keeps arrays of vectors in memory at -O2). */
NEON static void quad_f32x4(const int8_t *quad, size_t g0, size_t g1, const float *x, size_t ldx,
                            const float *scale, float *y, size_t ldy, size_t valid) {
    float32x4_t z = vdupq_n_f32(0.0f);
    float32x4_t a0 = z, a1 = z, a2 = z, a3 = z, b0 = z, b1 = z, b2 = z, b3 = z;
    float32x4_t c0 = z, c1 = z, c2 = z, c3 = z, d0 = z, d1 = z, d2 = z, d3 = z;
    for (size_t g = g0; g < g1; g++) {
        const float *xg = x + (g - g0) * 4;
        float32x4_t w0, w1, w2, w3;
        WIDEN4(quad + g * 64, w0, w1, w2, w3);
        ACC4(a0, a1, a2, a3, vld1q_f32(xg));
        ACC4(b0, b1, b2, b3, vld1q_f32(xg + ldx));
        ACC4(c0, c1, c2, c3, vld1q_f32(xg + 2 * ldx));
        ACC4(d0, d1, d2, d3, vld1q_f32(xg + 3 * ldx));
    }
    finish_rows4(y, scale, valid, a0, a1, a2, a3);
    finish_rows4(y + ldy, scale, valid, b0, b1, b2, b3);
    finish_rows4(y + 2 * ldy, scale, valid, c0, c1, c2, c3);
    finish_rows4(y + 3 * ldy, scale, valid, d0, d1, d2, d3);
}

/* One pass over the weights: 4 rows at a time (their panel stays in L1 for the other rows), all vectors
 * against them 4 at a time; the last n % 4 vectors through gemv_f32_neon. */
NEON void lstm_s8_gemm_f32_neon(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n,
                                const float *x, size_t ldx, const float *scale, float *y, size_t ldy) {
    size_t n4 = n / 4 * 4;
    for (size_t r0 = 0; r0 < rows && n4; r0 += 4) {
        const int8_t *quad = w + (r0 / 16) * groups * 64 + (r0 % 16) * 4;
        size_t valid = rows - r0 < 4 ? rows - r0 : 4;
        for (size_t i = 0; i < n4; i += 4)
            quad_f32x4(quad, g0, g1, x + i * ldx, ldx, scale + r0, y + i * ldy + r0, ldy, valid);
    }
    for (size_t i = n4; i < n; i++) lstm_s8_gemv_f32_neon(w, rows, groups, g0, g1, x + i * ldx, scale, y + i * ldy);
}
#endif

#ifdef LSTM_HAVE_NEON_DOT_KERNELS
#if defined(__clang__)
#define DOT __attribute__((target("dotprod")))
#else
#define DOT __attribute__((target("arch=armv8.2-a+dotprod")))
#endif

/* acc + SDOT(a, b): the intrinsic where the compiler offers it under the target attribute (GCC, or any
 * build for a dot-product target); clang before 16 declares it only when the whole build targets the
 * extension, so there the instruction itself. */
#if defined(__ARM_FEATURE_DOTPROD) || !defined(__clang__)
#define SDOT(acc, a, b) vdotq_s32(acc, a, b)
#else
DOT static inline int32x4_t sdot_asm(int32x4_t acc, int8x16_t a, int8x16_t b) {
    __asm__("sdot %0.4s, %1.16b, %2.16b" : "+w"(acc) : "w"(a), "w"(b));
    return acc;
}
#define SDOT(acc, a, b) sdot_asm(acc, a, b)
#endif

/* One panel against one vector: one SDOT per 16 bytes gives rows 4j .. 4j + 3 in s[j]. */
DOT static inline void panel_dot1(const int8_t *panel, size_t g0, size_t g1, const int8_t *q, int32x4_t s[4]) {
    int32x4_t z = vdupq_n_s32(0), a = z, b = z, c = z, d = z;
    for (size_t g = g0; g < g1; g++) {
        const int8_t *blk = panel + g * 64;
        int8x16_t qq = repeat4(q + (g - g0) * 4);
        a = SDOT(a, vld1q_s8(blk), qq);
        b = SDOT(b, vld1q_s8(blk + 16), qq);
        c = SDOT(c, vld1q_s8(blk + 32), qq);
        d = SDOT(d, vld1q_s8(blk + 48), qq);
    }
    s[0] = a;
    s[1] = b;
    s[2] = c;
    s[3] = d;
}

/* One panel against 4 vectors (q + v * ldq): each weight load feeds 4 SDOTs; vector v's rows 4j .. 4j + 3
 * in s[4 * v + j]. */
#define DOT4(acc0, acc1, acc2, acc3, qv)                                                                     \
    do {                                                                                                     \
        int8x16_t q_ = (qv);                                                                                 \
        acc0 = SDOT(acc0, w0, q_);                                                                           \
        acc1 = SDOT(acc1, w1, q_);                                                                           \
        acc2 = SDOT(acc2, w2, q_);                                                                           \
        acc3 = SDOT(acc3, w3, q_);                                                                           \
    } while (0)

DOT static inline void panel_dot4(const int8_t *panel, size_t g0, size_t g1, const int8_t *q, size_t ldq,
                                  int32x4_t s[16]) {
    int32x4_t z = vdupq_n_s32(0);
    int32x4_t a0 = z, a1 = z, a2 = z, a3 = z, b0 = z, b1 = z, b2 = z, b3 = z;
    int32x4_t c0 = z, c1 = z, c2 = z, c3 = z, d0 = z, d1 = z, d2 = z, d3 = z;
    for (size_t g = g0; g < g1; g++) {
        const int8_t *blk = panel + g * 64, *qg = q + (g - g0) * 4;
        int8x16_t w0 = vld1q_s8(blk), w1 = vld1q_s8(blk + 16), w2 = vld1q_s8(blk + 32), w3 = vld1q_s8(blk + 48);
        DOT4(a0, a1, a2, a3, repeat4(qg));
        DOT4(b0, b1, b2, b3, repeat4(qg + ldq));
        DOT4(c0, c1, c2, c3, repeat4(qg + 2 * ldq));
        DOT4(d0, d1, d2, d3, repeat4(qg + 3 * ldq));
    }
    s[0] = a0, s[1] = a1, s[2] = a2, s[3] = a3, s[4] = b0, s[5] = b1, s[6] = b2, s[7] = b3;
    s[8] = c0, s[9] = c1, s[10] = c2, s[11] = c3, s[12] = d0, s[13] = d1, s[14] = d2, s[15] = d3;
}

DOT void lstm_s8_gemv_neon_dot(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, const int8_t *q,
                               const int32_t *rowsum, int32_t *acc) {
    (void)rowsum;
    for (size_t r0 = 0; r0 < rows; r0 += 16) {
        int32x4_t s[4];
        panel_dot1(w + (r0 / 16) * groups * 64, g0, g1, q, s);
        store16(acc + r0, s, 16); /* acc has room for r16(rows) */
    }
}

DOT void lstm_s8_gemm_neon_dot(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n,
                               const int8_t *q, size_t ldq, const int32_t *rowsum, int32_t *acc, size_t ldacc) {
    (void)rowsum;
    for (size_t r0 = 0; r0 < rows; r0 += 16) {
        const int8_t *panel = w + (r0 / 16) * groups * 64;
        size_t i = 0;
        for (; i + 4 <= n; i += 4) {
            int32x4_t s[16];
            panel_dot4(panel, g0, g1, q + i * ldq, ldq, s);
            for (size_t v = 0; v < 4; v++) store16(acc + (i + v) * ldacc + r0, s + 4 * v, rows - r0);
        }
        for (; i < n; i++) {
            int32x4_t s[4];
            panel_dot1(panel, g0, g1, q + i * ldq, s);
            store16(acc + i * ldacc + r0, s, rows - r0);
        }
    }
}
#endif

#else
typedef int lstm_s8_neon_unused; /* ISO C forbids an empty translation unit */
#endif
