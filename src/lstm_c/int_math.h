/* int_math.h - the integer arithmetic of int16x8 layers (docs/int16x8.md): rounding shifts, the table
 * sigmoid and tanh in Q0.15, and the softmax exponential. Integer operations only: no float or double
 * anywhere (a Cortex-M0 links int_math.c and int_step.c without one soft-float routine,
 * .ci/softfloat_check.sh). */
#ifndef LSTM_INT_MATH_H
#define LSTM_INT_MATH_H

#include <stdint.h>

/* Entries of each table: k = 0 .. 512. */
#define LSTM_INT_TABLE_SIZE 513

/* v / 2^s rounded to nearest, ties away from zero (1 <= s <= 62; |v| + 2^(s-1) must fit int64). Never
 * shifts a negative number (implementation-defined in C). */
static inline int64_t lstm_rshift_round(int64_t v, unsigned s) {
    int64_t half = (int64_t)1 << (s - 1);
    return v >= 0 ? (v + half) >> s : -((-v + half) >> s);
}

static inline int64_t lstm_clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

/* lstm_rshift_round on int32: |v| + 2^(s-1) must fit int32 (1 <= s <= 31). */
static inline int32_t lstm_rshift_round32(int32_t v, unsigned s) {
    int32_t half = (int32_t)1 << (s - 1);
    return v >= 0 ? (v + half) >> s : -((-v + half) >> s);
}

/* The bound of the requantised products t (One step, 2). */
#define LSTM_INT_T_LIMIT ((int32_t)1 << 29)

/* The requantisation of One step, 2 and 6, as the spec writes it: clamp(rshift_round(A * M, S), -2^29,
 * 2^29), the product in int64. |A| < 2^31 (the width bound), 0 <= M < 2^31, 1 <= S <= 62: |A M| < 2^62. */
static inline int32_t lstm_requant64(int64_t acc, int32_t mult, int32_t shift) {
    return (int32_t)lstm_clamp64(lstm_rshift_round(acc * mult, (unsigned)shift), -LSTM_INT_T_LIMIT,
                                 LSTM_INT_T_LIMIT);
}

/* lstm_requant64 in 32-bit operations, the same result for every operand it allows (tests/c/test_int.c),
 * for cores without a 32 x 32 -> 64-bit multiply (ARMv6-M: an int64 product is a call to __aeabi_lmul,
 * a variable int64 shift a branchy sequence):
 *  - P = |A| M as a (hi, lo) pair of uint32 from 16-bit halves: |A| = ah 2^16 + al with ah <= 2^15 (|A| <=
 *    2^31), M = mh 2^16 + ml with mh < 2^15. ll = al ml < 2^32; mid = al mh + (ll >> 16) < 2^31 + 2^16;
 *    mid2 = (mid & 0xffff) + ah ml < 2^16 + 2^31; then P = (ll & 0xffff) + mid2 2^16 + (ah mh + (mid >> 16))
 *    2^32, so lo = (ll & 0xffff) | mid2 << 16 and hi = ah mh + (mid >> 16) + (mid2 >> 16) < 2^30 (P < 2^62).
 *  - (P + 2^(S-1)) >> S, the rounding of |A M| (ties away from zero, as rshift_round: the sign is put back
 *    last): S > 32: 2^(S-1) only adds 2^(S-33) to hi (< 2^30 + 2^29, no carry out), and lo cannot reach
 *    the result: (hi + 2^(S-33)) >> (S-32). S = 32: hi plus the carry of lo + 2^31. S < 32: the 64-bit
 *    sum by hand (a carry into hi when lo + 2^(S-1) wraps); the result fits 32 bits iff hi >> S == 0, else
 *    it is above 2^32 and saturates (the clamp below takes it to 2^29 anyway).
 *  - min(that, 2^29), negated for A < 0.
 * A function of int_math.c, not inline: inlined at both call sites of the layer's gate loop it costs a
 * Cortex-M0 step 2,000 more instructions at H = 32 (register spills: Thumb-1 has 8 low registers). */
int32_t lstm_requant32(int32_t acc, int32_t mult, int32_t shift);

/* rshift_round(f c, 15) (the cell's forget term, One step, 4) in 32-bit operations, for 0 <= f <= 32767
 * and any int32 c; equal to lstm_rshift_round((int64_t)f * c, 15). With |c| = ch 2^16 + cl (ch <= 2^15):
 * f |c| + 2^14 = 2 f ch 2^15 + (f cl + 2^14), so the shift by 15 is exact on the first term: 2 f ch +
 * ((f cl + 2^14) >> 15), below 2^31 (2 f ch <= 2^31 - 2^16, the second term < 2^16); the sign of f c is
 * c's (ties away from zero, as rshift_round). */
static inline int32_t lstm_mul_q15_round(int32_t f, int32_t c) {
    uint32_t a = c < 0 ? 0U - (uint32_t)c : (uint32_t)c, uf = (uint32_t)f;
    uint32_t r = 2U * ((a >> 16) * uf) + (((a & 0xffffU) * uf + 16384U) >> 15);
    return c < 0 ? -(int32_t)r : (int32_t)r;
}

/* The step uses the 32-bit forms (lstm_requant32, lstm_mul_q15_round) where the int64 ones are library
 * calls: ARMv6-M, measured in docs/int16x8.md ("Speed"). Elsewhere the int64 forms are as fast or faster
 * (one multiply on a 64-bit host). Both give the same results (tests/c/test_int.c). */
#if defined(__ARM_ARCH_6M__)
#define LSTM_INT_ARITH32 1
#else
#define LSTM_INT_ARITH32 0
#endif

/* sigmoid(v / 2^20) in Q0.15: [0, 32767]. Any int32 v. */
int32_t lstm_sigmoid_q15(int32_t v);
/* tanh(v / 2^20) in Q0.15: [-32767, 32767]. Any int32 v. */
int32_t lstm_tanh_q15(int32_t v);
/* 32767 * exp(-d / 2^20) from the table E, for the softmax: [0, 32767]; 0 from d >= 2^24 (16.0) up. */
int32_t lstm_exp_neg_q15(uint32_t d);
/* softmax of z[n] (Q11.20 values) into y[n] (Q0.15, each in [0, 32767]): d_j = max - z_j as uint32, e_j =
 * lstm_exp_neg_q15(d_j), y_j = min(32767, (e_j 32768 + S / 2) / S) with S = sum e_j; e[n] is scratch. n >= 1,
 * n <= 65535 (S and e_j 32768 + S / 2 stay in uint32). */
void lstm_softmax_q15(const int32_t *z, uint32_t *e, int16_t *y, uint32_t n);

/* The tables (for the tests): T[k] = round_half_even(32767 tanh(k / 64)), E[k] = round_half_even(32767
 * exp(-k / 32)), k = 0 .. 512. */
const int16_t *lstm_int_tanh_table(void);
const int16_t *lstm_int_exp_table(void);

#endif /* LSTM_INT_MATH_H */
