/* kernels.h - the kernel table: every routine that has per-ISA variants, one table per instruction set
 * (dispatch.c picks one when a model is opened; nothing else chooses code behind it).
 *
 * Numerics, the same on every ISA and target (build with -ffp-contract=off; elementwise.h rounds every
 * operation to float on x87):
 *  - int8 products (gemv_s8, gemm_s8) are exact integer sums.
 *  - gemv_f32 (int8 weights x float activations) keeps 4 partial sums per row, one per column of each
 *    4-column group, added group after group with a rounded multiply then a rounded add, and finishes with
 *    (s0 + s1) + (s2 + s3); then y += scale * sum. Every ISA computes exactly these operations; gemm_f32
 *    computes them for each of its vectors, so its every output equals gemv_f32's on that vector.
 *  - int8 x int16 products (gemv_s16, gemm_s16; int8-a16 layers) are exact integer sums (int64). On an
 *    ARMv6-M build (Cortex-M0/M0+: the reference table is its only one) the reference gemv_s16 computes
 *    its int32 block sums with the Thumb-1 assembly kernel lstm_s16_panel_armv6m (s16_armv6m.c, declared
 *    in kernels_arm.h: LSTM_HAVE_ARMV6M_KERNELS), which the int16x8 layer (int_step.c) also calls
 *    directly; the same sums.
 *  - quantize, q8_gates, quantize16, q16_gates, cell_update and activate run the code of elementwise.h,
 *    compiled per ISA: float operations, the same bits on every ISA and target (int8, int8-dynamic and
 *    int8-a16 layers, and every layer on a build without double hardware).
 *  - activate_f32 (the head of a model whose top layer is fp32) runs the precise functions of
 *    elementwise.h: double operations rounded once to float, the same source for every ISA (the same bits
 *    on x86-64 SSE2 / AVX2 / AVX-512, aarch64 and i386's x87: .ci/cross.sh's xcheck), within 0.5 ulp +
 *    2^-13 of the exact value.
 *  - cell_update_f32 (fp32 layers) is the fused precise cell of elementwise_cell_f32.h: c and h from the
 *    pre-activations in double, one division each, each rounded once (within 0.5 ulp + 2^-33 of the terms
 *    f c and i g). In the two families of the fp32 sums below: "fma" (AVX2 and AVX-512: cell_f32_x86.c,
 *    aarch64 NEON: elementwise_arm.c, all through cell_f32_simd.h) and "mul+add" (reference, 32-bit NEON:
 *    the portable form); each family gives the same bits on every table and target that runs it.
 *  - f32_gemv / f32_gemm (fp32 layer weights, packed panels of lstm_format.h) sum every output in two
 *    levels. Blocks of LSTM_F32_BLOCK (16) columns from k0 (the last may be shorter): each block is one
 *    chain from 0, acc = acc + w[r][k] * x[k - k0] for its k in turn. Superblocks of LSTM_F32_SUPER (16)
 *    blocks (256 columns) from k0: sup = 0, then sup = sup + acc for each of its blocks (rounded adds);
 *    then y[r] = y[r] + sup, superblock after superblock. Issue 14: one chain over all K = I + H
 *    columns carried a rounding error that grows like K, 3x that of the blocks on a trained
 *    3 x LSTM(40, 256); the second level takes the bias out of the first chain and keeps the error of
 *    wide layers (H = 512) below PyTorch's (docs/accuracy.md). The matrix-vector and the
 *    matrix-matrix kernel of a table compute exactly the same operations for each output, and the engine
 *    splits the columns the same way everywhere (W_ih x over [0, I), then W_hh h over [I, I + H)), so a
 *    step, a whole sequence (input part for all steps first, then the hidden part step by step) and many
 *    streams give the same bits. Two families:
 *      "fma": each term one fused multiply-add (avx2, avx512, neon on aarch64, cortex_m with an FPU):
 *             these tables give the same bits as each other;
 *      "mul+add": a rounded multiply then a rounded add (reference; 32-bit NEON with VMLA, whose
 *             flush-to-zero can differ on subnormals).
 *    The blas table calls the linked CBLAS per panel: its own order.
 *  - lstm_f32_*_canonical (f32_canonical.c) is the row-major fp32 product of the dense head in one fixed order
 *    (16 partial sums over k, a fixed tree): bit-identical everywhere.
 *
 * int8 matrices use the blocked layout of lstm_format.h: `rows` rows (the data holds r16(rows)), `groups`
 * column groups of 4 per panel of 16 rows; kernels work on the groups [g0, g1), activation vectors are
 * indexed from column 4 * g0. */
#ifndef LSTM_KERNELS_H
#define LSTM_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "lstm.h"

/* The same arithmetic everywhere: no contraction of a * b + c into a fused multiply-add unless a kernel
 * writes the FMA itself. GCC ignores this pragma: every build passes -ffp-contract=off (CMake, setup.py,
 * tests/c/Makefile), and the ISA bit-identity tests catch a build that does not. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* The block length of the fp32 panel products' sums, and blocks per superblock (above). */
#define LSTM_F32_BLOCK 16
#define LSTM_F32_SUPER 16
#define LSTM_F32_SPAN (LSTM_F32_BLOCK * LSTM_F32_SUPER)

typedef struct lstm_kernels {
    /* fp32, w a packed [rows, cols] matrix (F32_PANELS): y[r] += sum over k in [k0, k1) of w[r][k] x[k - k0]
     * for r < rows, in the blocks described above. */
    void (*f32_gemv)(const float *w, size_t rows, size_t cols, size_t k0, size_t k1, const float *x, float *y);
    /* f32_gemv for n vectors in one pass over the weights: vector i at x + i * ldx, its outputs at
     * y + i * ldy; the same bits as n f32_gemv calls. */
    void (*f32_gemm)(const float *w, size_t rows, size_t cols, size_t k0, size_t k1, size_t n, const float *x,
                     size_t ldx, float *y, size_t ldy);
    /* y[r] += scale[r] * sum_k W[r][k] x[k] (the order above) */
    void (*gemv_f32)(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, const float *x,
                     const float *scale, float *y);
    /* gemv_f32 for n vectors in one pass over the weights: vector i at x + i * ldx (4 * (g1 - g0) values),
     * its rows at y + i * ldy; every y value bit-identical to gemv_f32 on that vector. */
    void (*gemm_f32)(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n, const float *x,
                     size_t ldx, const float *scale, float *y, size_t ldy);
    /* acc[r] = sum_k W[r][k] q[k] exactly for r < rows (acc has room for r16(rows); entries past rows are
     * unspecified), for W entries in [-127, 127] (model.c rejects -128: the AVX2 kernel's pair sums rely on
     * it) and any int8 q; rowsum[r] = sum over the same columns of W[r][k] (kernels that feed q + 128 as
     * unsigned bytes need it; others ignore it). */
    void (*gemv_s8)(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, const int8_t *q,
                    const int32_t *rowsum, int32_t *acc);
    /* gemv_s8 for n vectors in one pass over the weights: vector i at q + i * ldq, its sums at
     * acc + i * ldacc; only rows < rows are written. */
    void (*gemm_s8)(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n,
                    const int8_t *q, size_t ldq, const int32_t *rowsum, int32_t *acc, size_t ldacc);
    /* Symmetric quantisation of v[n] to q[n] in [-127, 127]; returns the scale (v ~= scale * q). q is
     * zero-padded up to `padded` entries. A vector with max |v| below LSTM_Q8_MIN_AMAX (zero included)
     * gets scale 0 and all-zero q. */
    float (*quantize)(const float *v, size_t n, int8_t *q, size_t padded);
    /* y[i] = (bias[i] + acc_x[i] * (sx * scale_x[i])) + acc_h[i] * (sh * scale_h[i]) */
    void (*q8_gates)(float *y, const float *bias, const int32_t *acc_x, float sx, const float *scale_x,
                     const int32_t *acc_h, float sh, const float *scale_h, size_t n);
    /* The LSTM cell for one step: gates[4H] pre-activations (i, f, g, o), used as scratch; c[H] updated in
     * place; hfull[H] = o * tanh(c). */
    void (*cell_update)(size_t hidden, float *gates, float *c, float *hfull);
    /* an lstm_activation over v[n], in place */
    void (*activate)(unsigned activation, float *v, size_t n);
    /* ---- int8-a16 layers (int8 weights x int16 activations) ---- */
    /* acc[r] = sum_k W[r][k] q[k] exactly for r < rows (acc has room for r16(rows); entries past rows are
     * unspecified), q int16 in [-32767, 32767]: int32 partial sums over blocks of at most
     * LSTM_S16_BLOCK_GROUPS column groups, added into int64 (any order: integer sums are exact). */
    void (*gemv_s16)(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, const int16_t *q,
                     int64_t *acc);
    /* gemv_s16 for n vectors: vector i at q + i * ldq, its sums at acc + i * ldacc; only rows < rows written. */
    void (*gemm_s16)(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n,
                     const int16_t *q, size_t ldq, int64_t *acc, size_t ldacc);
    /* Symmetric quantisation of v[n] to q[n] in [-32767, 32767] (round half to even), zero-padded to
     * `padded`; returns the scale max|v| / 32767 (0, and all-zero q, below LSTM_Q8_MIN_AMAX). */
    float (*quantize16)(const float *v, size_t n, int16_t *q, size_t padded);
    /* y[i] = (bias[i] + (float)acc_x[i] * (sx * scale_x[i])) + (float)acc_h[i] * (sh * scale_h[i]); every
     * operation rounded to float; the int64 -> float conversion is exact-then-rounded-once on every target
     * (|acc| < 2^53, so even a conversion through double rounds once). */
    void (*q16_gates)(float *y, const float *bias, const int64_t *acc_x, float sx, const float *scale_x,
                      const int64_t *acc_h, float sh, const float *scale_h, size_t n);
    /* ---- fp32 layers (issue 14) ---- */
    /* cell_update and activate for fp32 layers and the head of a model whose top layer is fp32: sigmoid,
     * tanh and exp in double rounded once to float, c = f c + i g rounded once, h = o tanh(c) from the
     * unrounded c (elementwise.h). Where double is not in hardware (LSTM_F32_FLOAT_ELEMENTWISE) these are
     * cell_update and activate. */
    void (*cell_update_f32)(size_t hidden, float *gates, float *c, float *hfull);
    void (*activate_f32)(unsigned activation, float *v, size_t n);
    /* One fp32 layer step with the cell fused into the product, or NULL (the engine then runs the sequence
     * below itself). w, cols as f32_gemv with rows = 4 * hidden; gates[4H] hold the bias (x given)
     * or the bias plus the W_ih x terms (x NULL: lstm_run's steps). The same bits as
     *     if (x) f32_gemv(w, 4H, cols, 0, kx, x, gates);
     *     f32_gemv(w, 4H, cols, kx, cols, h, gates);
     *     cell_update_f32(hidden, gates, c, hout);
     * but each block of units' cell runs once its gates are summed, while the next panels stream in. gates
     * are left holding the pre-activations; c is updated in place; hout[hidden] = o * tanh(c) must not
     * overlap h. */
    void (*f32_step_cell)(const float *w, size_t hidden, size_t cols, size_t kx, const float *x, const float *h,
                          float *gates, float *c, float *hout);
} lstm_kernels;

/* int8-a16 sums: column groups per int32 block. 127 * 32767 * 4 * 128 = 2130641408 < 2^31 - 1, so a block's
 * int32 sum cannot overflow whatever the weights and activations (checked by tests/c/test_s16.c). */
#define LSTM_S16_BLOCK_GROUPS 128
#define LSTM_Q16_MAX 32767

/* Below this max |v| a vector quantises to zero (keeps 127 / max |v| finite). */
#define LSTM_Q8_MIN_AMAX 7.8886091e-31f /* 2^-100 */

/* The table of an lstm_isa that lstm_isa_supported() accepts (dispatch.c). */
const lstm_kernels *lstm_kernels_for(lstm_isa isa);

/* The dense head's row-major fp32 products in the canonical order (f32_canonical.c). */
void lstm_f32_gemv_canonical(size_t m, size_t k, const float *a, size_t lda, const float *x, float *y);
void lstm_f32_gemm_canonical(size_t n, size_t m, size_t k, const float *x, size_t ldx, const float *w,
                             size_t ldw, float *c, size_t ldc);

/* The declarations of an fp32 panel kernel pair, lstm_f32_gemv_<name> and lstm_f32_gemm_<name>. */
#define LSTM_DECLARE_F32_KERNELS(name)                                                                       \
    void lstm_f32_gemv_##name(const float *w, size_t rows, size_t cols, size_t k0, size_t k1, const float *x, \
                              float *y);                                                                     \
    void lstm_f32_gemm_##name(const float *w, size_t rows, size_t cols, size_t k0, size_t k1, size_t n,     \
                              const float *x, size_t ldx, float *y, size_t ldy);

/* The declarations of a table's integer products: int8 x int8 (lstm_s8_gemv_<name>, lstm_s8_gemm_<name>) and
 * int8 x int16 (lstm_s16_gemv_<name>, lstm_s16_gemm_<name>). */
#define LSTM_DECLARE_INT_KERNELS(name)                                                                       \
    void lstm_s8_gemv_##name(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, const int8_t *q, \
                             const int32_t *rowsum, int32_t *acc);                                          \
    void lstm_s8_gemm_##name(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n,     \
                             const int8_t *q, size_t ldq, const int32_t *rowsum, int32_t *acc, size_t ldacc); \
    void lstm_s16_gemv_##name(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1,              \
                              const int16_t *q, int64_t *acc);                                               \
    void lstm_s16_gemm_##name(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n,    \
                              const int16_t *q, size_t ldq, int64_t *acc, size_t ldacc);

/* Portable kernels (f32_ref.c, s8_ref.c, elementwise_ref.c): the reference table's entries, and the
 * building blocks SIMD files fall back to. */
LSTM_DECLARE_F32_KERNELS(ref)
void lstm_s8_gemv_f32_ref(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, const float *x,
                          const float *scale, float *y);
void lstm_s8_gemm_f32_ref(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n,
                          const float *x, size_t ldx, const float *scale, float *y, size_t ldy);
/* gemm_f32 built from a gemv_f32, vector by vector. */
void lstm_s8_gemm_f32_by_vectors(void (*gemv)(const int8_t *, size_t, size_t, size_t, size_t, const float *,
                                              const float *, float *),
                                 const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n,
                                 const float *x, size_t ldx, const float *scale, float *y, size_t ldy);
void lstm_s8_gemv_ref(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, const int8_t *q,
                      const int32_t *rowsum, int32_t *acc);
void lstm_s8_gemm_ref(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n,
                      const int8_t *q, size_t ldq, const int32_t *rowsum, int32_t *acc, size_t ldacc);
/* gemm_s8 built from a gemv_s8, vector by vector. */
void lstm_s8_gemm_by_vectors(void (*gemv)(const int8_t *, size_t, size_t, size_t, size_t, const int8_t *,
                                          const int32_t *, int32_t *),
                             const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n,
                             const int8_t *q, size_t ldq, const int32_t *rowsum, int32_t *acc, size_t ldacc);
float lstm_quantize_ref(const float *v, size_t n, int8_t *q, size_t padded);
void lstm_q8_gates_ref(float *y, const float *bias, const int32_t *acc_x, float sx, const float *scale_x,
                       const int32_t *acc_h, float sh, const float *scale_h, size_t n);
void lstm_cell_update_ref(size_t hidden, float *gates, float *c, float *hfull);
void lstm_activate_ref(unsigned activation, float *v, size_t n);
void lstm_cell_update_f32_ref(size_t hidden, float *gates, float *c, float *hfull);
void lstm_activate_f32_ref(unsigned activation, float *v, size_t n);
void lstm_s16_gemv_ref(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, const int16_t *q,
                       int64_t *acc);
void lstm_s16_gemm_ref(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n,
                       const int16_t *q, size_t ldq, int64_t *acc, size_t ldacc);
/* gemm_s16 built from a gemv_s16, vector by vector. */
void lstm_s16_gemm_by_vectors(void (*gemv)(const int8_t *, size_t, size_t, size_t, size_t, const int16_t *,
                                           int64_t *),
                              const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n,
                              const int16_t *q, size_t ldq, int64_t *acc, size_t ldacc);
float lstm_quantize16_ref(const float *v, size_t n, int16_t *q, size_t padded);
void lstm_q16_gates_ref(float *y, const float *bias, const int64_t *acc_x, float sx, const float *scale_x,
                        const int64_t *acc_h, float sh, const float *scale_h, size_t n);

/* fp32 layers on a core without double-precision hardware (32-bit ARM without a double FPU: Cortex-M0, M4,
 * soft-float ABIs) keep the float cell_update and activate: double would run in software, several times
 * slower than the float code (docs/accuracy.md). Define it to choose the float kernels anywhere. */
#if !defined(LSTM_F32_FLOAT_ELEMENTWISE) && defined(__arm__) && !(defined(__ARM_FP) && (__ARM_FP & 8))
#define LSTM_F32_FLOAT_ELEMENTWISE 1
#endif

#if defined(LSTM_USE_CBLAS)
LSTM_DECLARE_F32_KERNELS(cblas)
#endif

/* x86-64 SIMD (GCC and clang; per-function target attributes, so the rest of the build stays baseline) */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(LSTM_NO_SIMD)
#define LSTM_HAVE_X86_KERNELS 1
#endif

static inline size_t lstm_r4(size_t n) { return (n + 3) & ~(size_t)3; }
static inline size_t lstm_r16(size_t n) { return (n + 15) & ~(size_t)15; }

#endif /* LSTM_KERNELS_H */
