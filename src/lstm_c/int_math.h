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
