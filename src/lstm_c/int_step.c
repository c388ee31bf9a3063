/* int_step.c - the integer step of int16x8 models (docs/int16x8.md, "One step"): exact int8 x int16
 * products from the model's kernel table (gemv_s16; on ARMv6-M the layer calls the Thumb-1 panel kernel
 * itself, for int32 sums), requantisation by multiplier and shift (in 32-bit operations on ARMv6-M), table
 * activations, a Q11.20 cell state, then the head. No float or double operation anywhere in this file (a
 * Cortex-M0 links it without one soft-float routine: .ci/softfloat_check.sh). The state holds h and c of
 * every layer as int32 words in the 4-byte slots a float model uses. */
#include <string.h>

#include "int_math.h"
#include "kernels_arm.h"
#include "lstm_format.h"
#include "lstm_internal.h"

#define INT_C_LIMIT ((int64_t)2147483647)       /* |c| (Q11.20) */

/* 4-byte words of `bytes` bytes, as a 64-byte aligned part of the scratch. */
static size_t part_words(size_t bytes) { return lstm_r16((bytes + 3) / 4); }
static size_t widest_in(const lstm_model *m) {
    return m->info.input_size > m->layer_out ? m->info.input_size : m->layer_out;
}
static size_t head_rows(const lstm_model *m) {
    size_t H4 = 4 * (size_t)m->info.hidden_size;
    return m->info.head_size > H4 ? m->info.head_size : H4;
}

size_t lstm_int_scratch_floats(const lstm_model *m) {
    size_t H4 = 4 * (size_t)m->info.hidden_size, head = m->info.head_size;
    return part_words(2 * lstm_r4(widest_in(m))) + part_words(2 * lstm_r4(m->layer_out)) + part_words(2 * H4) +
           part_words(8 * lstm_r16(head_rows(m))) + part_words(8 * lstm_r16(H4)) +
           part_words(2 * (size_t)m->info.output_size) + 2 * part_words(4 * head);
}

lstm_int_scratch lstm_int_scratch_at(const lstm_model *m, float *scratch) {
    size_t H4 = 4 * (size_t)m->info.hidden_size;
    char *p = (char *)(void *)(scratch + m->off_int);
    lstm_int_scratch sc;
    sc.xq = (int16_t *)(void *)p;
    p += 4 * part_words(2 * lstm_r4(widest_in(m)));
    sc.hq = (int16_t *)(void *)p;
    p += 4 * part_words(2 * lstm_r4(m->layer_out));
    sc.gq = (int16_t *)(void *)p;
    p += 4 * part_words(2 * H4);
    sc.ax = (int64_t *)(void *)p;
    p += 4 * part_words(8 * lstm_r16(head_rows(m)));
    sc.ah = (int64_t *)(void *)p;
    p += 4 * part_words(8 * lstm_r16(H4));
    sc.yq = (int16_t *)(void *)p;
    p += 4 * part_words(2 * (size_t)m->info.output_size);
    sc.z = (int32_t *)(void *)p;
    p += 4 * part_words(4 * (size_t)m->info.head_size);
    sc.e = (uint32_t *)(void *)p;
    return sc;
}

/* v[n] as int16 into q, zero-padded to r4(n) (values within int16: h is in [-32767, 32767]). */
static void load_int16(int16_t *q, const int32_t *v, size_t n) {
    for (size_t k = 0; k < n; k++) q[k] = (int16_t)v[k];
    for (size_t k = n; k < lstm_r4(n); k++) q[k] = 0;
}

void lstm_int_load_input(const lstm_model *m, const int16_t *x, const lstm_int_scratch *sc) {
    size_t n = m->info.input_size;
    if (x != sc->xq) memcpy(sc->xq, x, n * sizeof(int16_t));
    for (size_t k = n; k < lstm_r4(n); k++) sc->xq[k] = 0;
}

/* t = clamp(rshift_round(A * M, S), -2^29, 2^29) (One step, 2 and 6). |A| < 2^31 (LSTM_INT_MAX_WIDTH), so
 * the 32-bit form may take it as int32. */
static inline int32_t requant(int64_t acc, int32_t mult, int32_t shift) {
#if LSTM_INT_ARITH32
    return lstm_requant32((int32_t)acc, mult, shift);
#else
    return lstm_requant64(acc, mult, shift);
#endif
}

void lstm_int_layer(const lstm_model *m, uint32_t l, int32_t *data, const lstm_int_scratch *sc) {
    const lstm_cell *cell = &m->cells[l][0];
    size_t H = m->info.hidden_size, H4 = 4 * H, groups = cell->gx + cell->gh;
    int32_t *h = data + lstm_off_h(m, l, 0), *c = data + lstm_off_c(m, l, 0);
    const int32_t *qp = cell->qp;
    const int32_t *mx = qp + LSTM_QP_MX * H4, *sx = qp + LSTM_QP_SX * H4, *mh = qp + LSTM_QP_MH * H4;
    const int32_t *sh = qp + LSTM_QP_SH * H4, *bias = qp + LSTM_QP_B * H4;
    load_int16(sc->hq, h, H);
#ifdef LSTM_HAVE_ARMV6M_KERNELS
    /* Cortex-M0 (whose only table is the reference): the Thumb-1 panel kernel straight into int32 sums, in
     * the scratch of the int64 ones. A part has at most LSTM_INT_MAX_WIDTH / 4 groups, so its sums fit int32
     * (127 * 32768 * 512 < 2^31) and need no int64 blocks; this saves gemv_s16's int64 additions and copies
     * (docs/int16x8.md, "Speed"). The same sums as gemv_s16. */
    int32_t *ax = (int32_t *)(void *)sc->ax, *ah = (int32_t *)(void *)sc->ah;
    for (size_t r0 = 0; r0 < H4; r0 += 16) {
        const int8_t *panel = cell->wq + (r0 / 16) * groups * 64;
        lstm_s16_panel_armv6m(panel, sc->xq, (uint32_t)cell->gx, ax + r0);
        lstm_s16_panel_armv6m(panel + cell->gx * 64, sc->hq, (uint32_t)cell->gh, ah + r0);
    }
#else
    const int64_t *ax = sc->ax, *ah = sc->ah;
    m->kern->gemv_s16(cell->wq, H4, groups, 0, cell->gx, sc->xq, sc->ax);
    m->kern->gemv_s16(cell->wq, H4, groups, cell->gx, groups, sc->hq, sc->ah);
#endif
    for (size_t u = 0; u < H; u++) {
        int32_t act[4];
        for (size_t g = 0; g < 4; g++) {
            size_t r = g * H + u;
            int32_t z = requant(ax[r], mx[r], sx[r]) + requant(ah[r], mh[r], sh[r]) + bias[r];
            act[g] = g == 2 ? lstm_tanh_q15(z) : lstm_sigmoid_q15(z);
            sc->gq[r] = (int16_t)act[g];
        }
        /* cell (One step, 4): f c in int64, or in 32-bit operations (lstm_mul_q15_round); i g and, below, o
         * tanh(c) are below 2^30 in magnitude: int32 */
#if LSTM_INT_ARITH32
        int64_t fc = lstm_mul_q15_round(act[1], c[u]);
#else
        int64_t fc = lstm_rshift_round((int64_t)act[1] * c[u], 15);
#endif
        int64_t cn = fc + lstm_rshift_round32(act[0] * act[2], 10);
        c[u] = (int32_t)lstm_clamp64(cn, -INT_C_LIMIT, INT_C_LIMIT);
        h[u] = lstm_rshift_round32(act[3] * lstm_tanh_q15(c[u]), 15);
    }
    load_int16(sc->xq, h, H); /* the next layer's input (or the head's) */
}

static int16_t sat16(int32_t v) { return (int16_t)(v < -32767 ? -32767 : v > 32767 ? 32767 : v); }

void lstm_int_head(const lstm_model *m, const lstm_int_scratch *sc, int16_t *y) {
    size_t n = m->info.head_size, H = m->info.hidden_size;
    if (n == 0) {
        memcpy(y, sc->xq, H * sizeof(int16_t));
        return;
    }
    size_t groups = lstm_r4(m->layer_out) / 4;
    const int32_t *q = m->head_qp;
    m->kern->gemv_s16(m->head_wq, n, groups, 0, groups, sc->xq, sc->ax);
    for (size_t j = 0; j < n; j++) {
        int32_t z = requant(sc->ax[j], q[LSTM_HQP_M * n + j], q[LSTM_HQP_S * n + j]) + q[LSTM_HQP_B * n + j];
        switch (m->info.head_activation) {
        case LSTM_ACT_SIGMOID: y[j] = (int16_t)lstm_sigmoid_q15(z); break;
        case LSTM_ACT_TANH: y[j] = (int16_t)lstm_tanh_q15(z); break;
        case LSTM_ACT_RELU: y[j] = sat16(z > 0 ? z : 0); break;
        case LSTM_ACT_SOFTMAX: sc->z[j] = z; break;
        default: y[j] = sat16(z); break;
        }
    }
    if (m->info.head_activation == LSTM_ACT_SOFTMAX) lstm_softmax_q15(sc->z, sc->e, y, (uint32_t)n);
}

lstm_status lstm_step_int(lstm_state *state, const int16_t *x, int16_t *y) {
    lstm_status st = lstm_check_state(state);
    if (st != LSTM_OK) return st;
    if (!x || !y) return LSTM_E_INVALID_ARGUMENT;
    const lstm_model *m = state->model;
    if (!m->is_int) return LSTM_E_UNSUPPORTED;
    float *scratch = lstm_state_scratch(state);
    if (!scratch) return LSTM_E_BUFFER_TOO_SMALL; /* a compact state: no scratch */
    lstm_int_forward(m, (int32_t *)(void *)lstm_state_data(state), x, y, scratch);
    return LSTM_OK;
}

void lstm_int_forward(const lstm_model *m, int32_t *data, const int16_t *x, int16_t *y, float *scratch) {
    lstm_int_scratch sc = lstm_int_scratch_at(m, scratch);
    lstm_int_load_input(m, x, &sc);
    for (uint32_t l = 0; l < m->info.num_layers; l++) lstm_int_layer(m, l, data, &sc);
    lstm_int_head(m, &sc, y);
}
