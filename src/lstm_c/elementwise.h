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
 * 0x3f800000 = (n + 127) << 23 modulo 2^32: the bits of 2^n with no float-to-int conversion. */
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

LSTM_INLINE float lstm_sigmoid1(float x) { return LSTM_R(1.0f / LSTM_R(1.0f + lstm_exp_clamped(-x))); }

/* tanh(x): below |x| = 0.625 an odd polynomial, x + x^3 P(x^2) (the minimax coefficients of Cephes'
 * tanhf, relative error ~1.5e-7); above, 1 - 2 / (exp(2|x|) + 1) with the sign of x (no cancellation:
 * tanh is above 0.55 there). The old 2 sigmoid(2x) - 1 lost up to 4096 ulp near 0 (absolute 1.8e-7, mean
 * 3.5e-8 over [-10, 10]; this: 1.3 ulp, 7.9e-8, mean 1.45e-8, against float64). */
LSTM_INLINE float lstm_tanh_small(float x) {
    float z = LSTM_R(x * x);
    const float t4 = 2.06390887954e-2f, t3 = -5.37397155531e-2f, t2 = 1.33314422036e-1f, t1 = -3.33332819422e-1f;
    float p = -5.70498872745e-3f; /* float objects, not literals, in the arithmetic (see lstm_exp_in_range) */
    p = LSTM_R(LSTM_R(p * z) + t4);
    p = LSTM_R(LSTM_R(p * z) + t3);
    p = LSTM_R(LSTM_R(p * z) + t2);
    p = LSTM_R(LSTM_R(p * z) + t1);
    return LSTM_R(LSTM_R(LSTM_R(p * z) * x) + x);
}

/* the other half, for a = |x| >= 0.625, given exp */
#define LSTM_TANH_BIG(x, a, exp_fn)                                                                          \
    LSTM_R(1.0f - LSTM_R(2.0f / LSTM_R(exp_fn(LSTM_R(2.0f * (a))) + 1.0f)))

/* Both halves are computed and one is selected, so compilers vectorise it. */
LSTM_INLINE float lstm_tanh1(float x) {
    float a = x < 0.0f ? -x : x;
    float small = lstm_tanh_small(x);
    float big = LSTM_TANH_BIG(x, a, lstm_exp_clamped);
    big = x < 0.0f ? -big : big;
    return a < 0.625f ? small : big;
}

/* The same functions for a scalar FPU (Cortex-M), where a branch is cheaper than computing what a vector
 * unit would select from: the same operations on the same values, so the same bits.
 *  - exp: for |x| < 87.3 both clamps leave x as it is, so one test replaces two clamps (NaN and values
 *    outside take the clamped path);
 *  - tanh: only the half that is selected. */
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

LSTM_INLINE float lstm_sigmoid1_branch(float x) { return LSTM_R(1.0f / LSTM_R(1.0f + lstm_exp_branch(-x))); }

LSTM_INLINE float lstm_tanh1_branch(float x) {
    float a = LSTM_FABSF(x); /* lstm_tanh1's a where it is used: |x| >= 0.625 is not -0.0 */
    if (a < 0.625f) return lstm_tanh_small(x);
    float big = LSTM_TANH_BIG(x, a, lstm_exp_branch);
    return x < 0.0f ? -big : big;
}

/* ---- The precise elementwise of fp32 layers (issue 14) -------------------------------------------------
 * sigmoid, tanh and exp in double arithmetic, each rounded once to float at the end: before that rounding
 * the relative error is below 2^-36 (exp's polynomial: 2^-37.7), so the float result is the correctly
 * rounded value unless the exact one lies within ~2^-13 ulp of a rounding boundary. Measured over 17.7
 * million inputs (tests/c/test_precise.c): max 0.500007 ulp (sigmoid), 0.500054 ulp (tanh), 99.99997% /
 * 99.9996% correctly rounded, against up to 4e6 ulp (tiny sigmoid results: exp's clamp) and 1.28 ulp, 92% /
 * 99.7%, for the float functions above. Branch-free and without libm, so the loops over them vectorise
 * (AVX2 4, AVX-512 8 doubles a vector). IEEE double operations in a fixed order, so every ISA computes the
 * same bits with this code; with x87 excess precision LSTM_RD rounds where exactness is needed (the
 * rounding constant) and the rest carries more precision than double (.ci/cross.sh's xcheck: i386 gave the
 * bits of x86-64's portable table). */
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
LSTM_INLINE double lstm_exp_parts(double x, double *scale) {
    const double log2e = 1.4426950408889634, ln2 = 0.6931471805599453;
    const double c0 = 9.999999999955728e-01, c1 = 5.00000000012053e-01, c2 = 1.666666678535095e-01,
                 c3 = 4.1666665951442756e-02, c4 = 8.33328375155215e-03, c5 = 1.3888978331311251e-03,
                 c6 = 1.9907451099083023e-04, c7 = 2.4801568926125298e-05;
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
    float t = LSTM_R((float)lstm_tanh_abs_d(a));
    uint32_t tb, xb;
    memcpy(&tb, &t, 4);
    memcpy(&xb, &x, 4);
    tb |= xb & 0x80000000U;
    memcpy(&t, &tb, 4);
    return t;
}

/* tanh of a double (the unrounded cell state), not rounded: o * tanh(c) is formed in double */
LSTM_INLINE double lstm_tanh_signed_d(double x) {
    double t = lstm_tanh_abs_d(x < 0.0 ? -x : x);
    return x < 0.0 ? -t : t;
}

#endif /* LSTM_ELEMENTWISE_H */
