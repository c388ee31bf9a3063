/* elementwise.h - the scalar arithmetic of the elementwise kernels (exp, sigmoid, tanh, rounding), written
 * once and compiled per ISA by elementwise_impl.h. Loops over these vectorise (no libm calls, no
 * branches). The float functions (quantised layers) perform the same IEEE single-precision operations in
 * the same order on every path, so their results are bit-identical across ISAs and targets; the precise
 * functions of fp32 layers (at the end) do the same in double:
 *  - no contraction into fused multiply-add (kernels.h);
 *  - with x87 excess precision (FLT_EVAL_METHOD != 0, e.g. i386 without SSE) LSTM_R rounds each operation
 *    to float through a store; double rounding through the 64-bit x87 significand is innocuous for
 *    +, -, *, / of floats (64 >= 2 * 24 + 2), so x87 then computes the same bits as SSE or NEON. */
#ifndef LSTM_ELEMENTWISE_H
#define LSTM_ELEMENTWISE_H

#include <float.h>
#include <stdint.h>
#include <string.h>

#include "kernels.h"

#if defined(__GNUC__) || defined(__clang__)
#define LSTM_INLINE static inline __attribute__((always_inline))
#else
#define LSTM_INLINE static inline
#endif

#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD != 0 && FLT_EVAL_METHOD != -1
LSTM_INLINE float lstm_round_float(float x) {
    volatile float v = x;
    return v;
}
#define LSTM_R(x) lstm_round_float(x)
#else
#define LSTM_R(x) (x)
#endif

/* The largest |v[i]| as float bits (sign cleared, so NaN and infinity sort above every finite value); 0 for
 * n == 0. An integer max: it vectorises and has no branch. Shared by the input checks and quantisation. */
LSTM_INLINE uint32_t lstm_max_abs_bits_inline(const float *v, size_t n) {
    uint32_t max_bits = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        u &= 0x7fffffffU;
        max_bits = u > max_bits ? u : max_bits;
    }
    return max_bits;
}

/* Adding then subtracting 1.5 * 2^23 rounds a float of magnitude below 2^22 to the nearest integer (ties
 * to even), with each step rounded to float. */
#define LSTM_ROUND_MAGIC 12582912.0f

/* exp(x) for x in [-87.3, 88] (the caller clamps): x = n ln2 + r with |r| <= ln2/2; exp(r) by a degree-6
 * polynomial (relative error < 1e-7); 2^n placed straight into the exponent bits. t = x log2e + 1.5 * 2^23
 * is the float 1.5 * 2^23 + n exactly (|n| <= 127), so its bits are 0x4b400000 + n and (bits << 23) +
 * 0x3f800000 = (n + 127) << 23 modulo 2^32: the bits of 2^n with no float-to-int conversion. Softmax's exp;
 * sigmoid and tanh (below) share its reduction. */
LSTM_INLINE float lstm_exp_in_range(float x) {
    const float log2e = 1.44269504089f, ln2_hi = 0.693145751953125f, ln2_lo = 1.428606765330187e-06f;
    float t = LSTM_R(LSTM_R(x * log2e) + LSTM_ROUND_MAGIC);
    float n = LSTM_R(t - LSTM_ROUND_MAGIC);
    float r = LSTM_R(LSTM_R(x - LSTM_R(n * ln2_hi)) - LSTM_R(n * ln2_lo));
    /* the coefficients as float objects: a literal in an expression keeps long double precision where
     * FLT_EVAL_METHOD is 2 (x87), an object holds the float value on every target */
    const float c5 = 0.0083741555f, c4 = 0.041668002f, c3 = 0.16666432f, c2 = 0.49999994f, one = 1.0f;
    float p = 0.0013843654f;
    p = LSTM_R(LSTM_R(p * r) + c5);
    p = LSTM_R(LSTM_R(p * r) + c4);
    p = LSTM_R(LSTM_R(p * r) + c3);
    p = LSTM_R(LSTM_R(p * r) + c2);
    p = LSTM_R(LSTM_R(p * r) + one);
    p = LSTM_R(LSTM_R(p * r) + one);
    uint32_t bits;
    memcpy(&bits, &t, 4);
    bits = (bits << 23) + 0x3f800000U;
    float scale;
    memcpy(&scale, &bits, 4);
    return LSTM_R(p * scale);
}

/* exp(x) for x clamped to [-87.3, 88] (NaN, which cannot reach here from finite inputs, clamps to -87.3) */
LSTM_INLINE float lstm_exp_clamped(float x) {
    x = x > -87.3f ? x : -87.3f;
    x = x < 88.0f ? x : 88.0f;
    return lstm_exp_in_range(x);
}

/* min(|x|, the float whose bits are max_bits) with the sign bit `sign` (0 or 0x80000000), on the bits: for a
 * non-negative float the integer order of the bits is the numeric order (NaN, which cannot reach here from
 * finite inputs, clamps to the bound). Integer operations, not float selects: GCC turned sigmoid's two
 * clamps into a split of the loop into clamped and unclamped paths with masks (7 vector operations). */
LSTM_INLINE float lstm_clamp_abs_bits(float x, uint32_t max_bits, uint32_t sign) {
    uint32_t b, a;
    memcpy(&b, &x, 4);
    a = b & 0x7fffffffU;
    a = a < max_bits ? a : max_bits;
    b = a | (b & sign);
    memcpy(&x, &b, 4);
    return x;
}

#define LSTM_SIGMOID_CLAMP_BITS 0x42ad0000U /* 86.5f */
#define LSTM_TANH_CLAMP_BITS 0x41200000U    /* 10.0f */

/* sigmoid(x) = 1 / (1 + exp(-x)) for x clamped to [-86.5, 86.5] (above 16.7 the result is 1 anyway; below
 * -86.5 it stays 2.7e-38 instead of going on down to 0). -x = n ln2 - r' as in lstm_exp_in_range (with the
 * signs folded into the constants: r' = (x + n ln2_hi) + n ln2_lo), and e^-r' by its Pade [3/3] form
 * Q(r') / P(r'), P(r) = E + O, Q(r) = E - O, E = 1 + r^2 / 10, O = r (1/2 + r^2 / 120) (relative error
 * below 6.1e-9 for |r'| <= ln2/2): sigmoid = P / (P + 2^n Q), one division for the rational function and
 * the sigmoid. 2^n is added into Q's exponent field (t's bits << 23 = n << 23 modulo 2^32): Q in
 * [0.84, 1.19] and |n| <= 125 keep 2^n Q normal, where the product would be exact. 22 vector operations
 * against the 30 of 1 / (1 + exp) with exp's degree-6 polynomial and float clamps. Over [-20, 20]
 * (tests/c/test_ew_accuracy.c): max 2.52 ulp, mean 0.45 ulp, absolute 9.2e-8 (the old form: 2.47 ulp,
 * 0.43, 8.9e-8); where n changes, results within 1.1e-5 of 1 can step down by one ulp (4 places). */
LSTM_INLINE float lstm_sigmoid1(float x) {
    x = lstm_clamp_abs_bits(x, LSTM_SIGMOID_CLAMP_BITS, 0x80000000U);
    const float mlog2e = -1.44269504089f, ln2_hi = 0.693145751953125f, ln2_lo = 1.428606765330187e-06f;
    float t = LSTM_R(LSTM_R(x * mlog2e) + LSTM_ROUND_MAGIC);
    float n = LSTM_R(t - LSTM_ROUND_MAGIC);
    float r = LSTM_R(LSTM_R(x + LSTM_R(n * ln2_hi)) + LSTM_R(n * ln2_lo));
    const float one = 1.0f, half = 0.5f, e2 = 0.1f, o3 = 0.008333333333f; /* 1/10, 1/120 */
    float r2 = LSTM_R(r * r);
    float e = LSTM_R(one + LSTM_R(r2 * e2));
    float o = LSTM_R(r * LSTM_R(half + LSTM_R(r2 * o3)));
    float p = LSTM_R(e + o), q = LSTM_R(e - o);
    uint32_t bits, qb;
    memcpy(&bits, &t, 4);
    memcpy(&qb, &q, 4);
    qb += bits << 23;
    memcpy(&q, &qb, 4);
    return LSTM_R(p / LSTM_R(p + q));
}

/* v (>= +0) with the sign bit of x: tanh is odd, and tanh(-0) = -0 */
LSTM_INLINE float lstm_sign_of(float v, float x) {
    uint32_t vb, xb;
    memcpy(&vb, &v, 4);
    memcpy(&xb, &x, 4);
    vb |= xb & 0x80000000U;
    memcpy(&v, &vb, 4);
    return v;
}

/* tanh(x) for a = |x| clamped to 10 (tanh(9.02) rounds to 1), one formula for every x: e = e^-2a =
 * 2^n (1 + m) with -2a = n ln2 + r as in lstm_exp_in_range, m = e^r - 1 = r + r (r q(r)), q the degree-4
 * minimax polynomial of (e^r - 1 - r) / r^2 on [-ln2/2, ln2/2] (relative error of m 1.7e-8 with these
 * float coefficients; the final r + ... rounds once), and tanh(a) = (1 - e) / (1 + e) =
 * ((1 - 2^n) - 2^n m) / ((1 + 2^n) + 2^n m): 2^n m is exact, and for n = 0 the numerator is -m, so small
 * |x| keeps its relative accuracy (no 1 - e cancellation). The quotient is +0 or positive (m <= 0 for
 * n = 0, and 2^n e^r < 1 else), so x's sign bit is or-ed into it (tanh(-0) = -0). 30 vector operations
 * against the ~45 of the old form, which computed a polynomial for |x| < 0.625 and 1 - 2 / (exp(2|x|) + 1)
 * for every value and selected one. Over [-20, 20]
 * (tests/c/test_ew_accuracy.c): max 1.88 ulp, mean 0.26 ulp, absolute 1.09e-7 (the old form: 1.28 ulp,
 * 0.13, 7.6e-8). */
LSTM_INLINE float lstm_tanh1(float x) {
    float a = lstm_clamp_abs_bits(x, LSTM_TANH_CLAMP_BITS, 0);
    const float log2e = 1.44269504089f, ln2_hi = 0.693145751953125f, ln2_lo = 1.428606765330187e-06f;
    const float mtwo = -2.0f, one = 1.0f;
    float y = LSTM_R(mtwo * a);
    float t = LSTM_R(LSTM_R(y * log2e) + LSTM_ROUND_MAGIC);
    float n = LSTM_R(t - LSTM_ROUND_MAGIC);
    float r = LSTM_R(LSTM_R(y - LSTM_R(n * ln2_hi)) - LSTM_R(n * ln2_lo));
    const float q3 = 0.008366580121219158f, q2 = 0.04166720062494278f, q1 = 0.1666654348373413f,
                q0 = 0.4999999701976776f;
    float q = 0.0013882509665563703f;
    q = LSTM_R(LSTM_R(q * r) + q3);
    q = LSTM_R(LSTM_R(q * r) + q2);
    q = LSTM_R(LSTM_R(q * r) + q1);
    q = LSTM_R(LSTM_R(q * r) + q0);
    float m = LSTM_R(r + LSTM_R(r * LSTM_R(r * q)));
    uint32_t bits;
    memcpy(&bits, &t, 4);
    bits = (bits << 23) + 0x3f800000U; /* 2^n, n in [-29, 0] */
    float s;
    memcpy(&s, &bits, 4);
    float sm = LSTM_R(s * m);
    float v = LSTM_R(LSTM_R(LSTM_R(one - s) - sm) / LSTM_R(LSTM_R(one + s) + sm)); /* >= +0 */
    return lstm_sign_of(v, x);
}

/* exp for a scalar FPU (Cortex-M's softmax), where a branch is cheaper than computing what a vector unit
 * would select from: the same operations on the same values, so the same bits. For |x| < 87.3 both clamps
 * leave x as it is, so one test replaces two clamps (NaN and values outside take the clamped path).
 * Sigmoid and tanh have nothing to select (integer clamps, one formula), so every table uses them as
 * they are. */
#if defined(__GNUC__) || defined(__clang__)
#define LSTM_FABSF(x) __builtin_fabsf(x)
#define LSTM_LIKELY(c) __builtin_expect(!!(c), 1)
#else
#define LSTM_FABSF(x) ((x) < 0.0f ? -(x) : (x)) /* for comparisons only: -0.0 and 0.0 compare equal */
#define LSTM_LIKELY(c) (c)
#endif

LSTM_INLINE float lstm_exp_branch(float x) {
    if (LSTM_LIKELY(LSTM_FABSF(x) < 87.3f)) return lstm_exp_in_range(x);
    return lstm_exp_clamped(x);
}

/* ---- The precise elementwise of fp32 layers (issue 14) -------------------------------------------------
 * sigmoid, tanh and exp in double arithmetic, each rounded once to float at the end: before that rounding
 * the relative error is below 2^-36 (exp's polynomial: 2^-37.7), so the float result is the correctly
 * rounded value unless the exact one lies within ~2^-13 ulp of a rounding boundary. Measured over 17.7
 * million inputs (tests/c/test_precise.c): max 0.500007 ulp (sigmoid), 0.500054 ulp (tanh), 99.99997% /
 * 99.9996% correctly rounded, against up to 1.9e7 ulp (tiny sigmoid results: exp's clamp) and 1.88 ulp,
 * 96.7% / 93.9%, for the float functions above (a -DLSTM_F32_FLOAT_ELEMENTWISE build of the same test). Branch-free and without libm, so the loops over them vectorise
 * (AVX2 4, AVX-512 8 doubles a vector). IEEE double operations in a fixed order, so every ISA computes the
 * same bits with this code; with x87 excess precision LSTM_RD rounds where exactness is needed (the
 * rounding constant) and the rest carries more precision than double (.ci/cross.sh's xcheck: i386 gave the
 * bits of x86-64's portable table). The head of an fp32 model uses these (activate_f32); the fused cell of
 * fp32 layers (elementwise_cell_f32.h) shares their exp polynomial and constants. */
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD != 0 && FLT_EVAL_METHOD != 1 && FLT_EVAL_METHOD != -1
LSTM_INLINE double lstm_round_double(double x) {
    volatile double v = x;
    return v;
}
#define LSTM_RD(x) lstm_round_double(x)
#else
#define LSTM_RD(x) (x)
#endif

/* 1.5 * 2^52: added to a double of magnitude below 2^51, the sum's low bits are the nearest integer */
#define LSTM_ROUND_MAGIC_D 6755399441055744.0

/* exp(x) = scale (1 + rq) and expm1(x) = (scale - 1) + scale rq, for x in [-700, 700] (the caller clamps):
 * x = n ln2 + r with |r| <= ln2/2 (r = x - n ln2 rounded: an absolute error below 2^-45 for |n| <= 256, and
 * none for n = 0), scale = 2^n placed in the exponent bits as lstm_exp_in_range does (t's bits are
 * 0x4338000000000000 + n, so (bits << 52) + (1023 << 52) = (n + 1023) << 52), and rq = r q(r), q(r) ~
 * (exp(r) - 1) / r by the degree-7 minimax polynomial (relative error 2^-37.7 with these double
 * coefficients; Remez on [-ln2/2, ln2/2]), in Estrin's form: a dependency chain 6 operations deep against
 * Horner's 14, measured 5-10% faster despite two more operations. Written as r q, expm1 keeps its relative
 * accuracy near 0 (no 1 - exp cancellation). Measured over [-120, 0]: exp 2^-39.0, expm1 2^-37.7. */
#define LSTM_PD_LOG2E 1.4426950408889634
#define LSTM_PD_LN2 0.6931471805599453
#define LSTM_PD_C0 9.999999999955728e-01
#define LSTM_PD_C1 5.00000000012053e-01
#define LSTM_PD_C2 1.666666678535095e-01
#define LSTM_PD_C3 4.1666665951442756e-02
#define LSTM_PD_C4 8.33328375155215e-03
#define LSTM_PD_C5 1.3888978331311251e-03
#define LSTM_PD_C6 1.9907451099083023e-04
#define LSTM_PD_C7 2.4801568926125298e-05

LSTM_INLINE double lstm_exp_parts(double x, double *scale) {
    const double log2e = LSTM_PD_LOG2E, ln2 = LSTM_PD_LN2;
    const double c0 = LSTM_PD_C0, c1 = LSTM_PD_C1, c2 = LSTM_PD_C2, c3 = LSTM_PD_C3, c4 = LSTM_PD_C4,
                 c5 = LSTM_PD_C5, c6 = LSTM_PD_C6, c7 = LSTM_PD_C7;
    double t = LSTM_RD(LSTM_RD(x * log2e) + LSTM_ROUND_MAGIC_D);
    double n = t - LSTM_ROUND_MAGIC_D;
    double r = x - n * ln2;
    double r2 = r * r, r4 = r2 * r2;
    double q = ((c0 + c1 * r) + r2 * (c2 + c3 * r)) + r4 * ((c4 + c5 * r) + r2 * (c6 + c7 * r));
    uint64_t bits;
    memcpy(&bits, &t, 8);
    bits = (bits << 52) + ((uint64_t)1023 << 52);
    memcpy(scale, &bits, 8);
    return r * q;
}

LSTM_INLINE double lstm_exp_d(double x) {
    double scale, rq = lstm_exp_parts(x, &scale);
    return scale * rq + scale;
}

/* sigmoid(x) = 1 / (1 + exp(-x)) in double, x clamped to [-120, 40]: sigmoid(-103.98) already rounds to 0
 * in float and sigmoid(17.33) to 1, so the clamp changes no result. Relative error below 2^-37. A double
 * division, not a float reciprocal refined by a Newton step: this loop is bound by the vector ports,
 * and the divider is a unit of its own (measured: the Newton form is 20-40% slower on AVX2 and AVX-512). */
LSTM_INLINE double lstm_sigmoid_d(float x) {
    double d = (double)x;
    d = d > -120.0 ? d : -120.0;
    d = d < 40.0 ? d : 40.0;
    return 1.0 / (1.0 + lstm_exp_d(-d));
}

LSTM_INLINE float lstm_sigmoid_p(float x) { return LSTM_R((float)lstm_sigmoid_d(x)); }

/* tanh(a) for a = |x| >= 0 in double: m = expm1(-2a) in (-1, 0], tanh(a) = -m / (2 + m); a clamped to 10
 * (tanh(9.02) rounds to 1 in float). 0 - m, not -m: tanh(+0) = +0. Relative error below 2^-36, down to
 * denormal a. */
LSTM_INLINE double lstm_tanh_abs_d(double a) {
    a = a < 10.0 ? a : 10.0;
    double scale, rq = lstm_exp_parts(-2.0 * a, &scale);
    double m = (scale - 1.0) + scale * rq;
    return (0.0 - m) / (2.0 + m);
}

/* tanh(x), rounded once: the magnitude from |x|, then x's sign bit (tanh is odd; tanh(-0) = -0) */
LSTM_INLINE float lstm_tanh_p(float x) {
    double a = (double)x;
    a = a < 0.0 ? -a : a;
    return lstm_sign_of(LSTM_R((float)lstm_tanh_abs_d(a)), x);
}

#endif /* LSTM_ELEMENTWISE_H */
