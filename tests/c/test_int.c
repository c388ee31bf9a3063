/* test_int.c - integer-only int16x8 models (docs/int16x8.md):
 *  - the math primitives: the two tables recomputed from double tanh and exp; rshift_round against a
 *    division-based rounding and hand-worked values (negative ties); sigmoid and tanh against the table
 *    formula written out here, against double within their interpolation error, and at the saturation
 *    edges (|v| = 8.0 and 16.0); the softmax's hand-worked values and sums;
 *  - lstm_step_int against an independent straightforward loop written here from the specification
 *    (unpadded row-major weights, int64 everywhere, only the tables T and E shared), every head
 *    activation, widths at the LSTM_INT_MAX_WIDTH edge, inputs over the whole int16 range;
 *  - the float entry points: lstm_step == lstm_step_int bits (x quantised here), run (with and without a
 *    workspace, compact states) == step_many == step, the trace in real units, no allocation;
 *  - every ISA this CPU supports gives the same bits;
 *  - malformed files refused with the right status, snapshot restore ranges, API statuses. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_count.h"
#include "int_math.h"
#include "kernels.h"
#include "lstm_format.h"
#include "testlib.h"

/* ---- the independent reference ------------------------------------------------------------------------ */

static int16_t ref_T[LSTM_INT_TABLE_SIZE], ref_E[LSTM_INT_TABLE_SIZE];

static void make_ref_tables(void) {
    for (int k = 0; k < LSTM_INT_TABLE_SIZE; k++) { /* nearbyint in the default mode: round half to even */
        ref_T[k] = (int16_t)nearbyint(32767.0 * tanh(k / 64.0));
        ref_E[k] = (int16_t)nearbyint(32767.0 * exp(-k / 32.0));
    }
}

/* v / 2^s to nearest, ties away from zero, by division and remainder. */
static int64_t ref_rsr(int64_t v, int s) {
    int64_t d = (int64_t)1 << s, a = v < 0 ? -v : v, q = a / d;
    if (2 * (a % d) >= d) q++;
    return v < 0 ? -q : q;
}
static int64_t ref_clamp(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

static int64_t ref_tanh(int64_t v) {
    int64_t a = v < 0 ? -v : v, t;
    if (a >= 8 * 1048576) t = ref_T[512];
    else t = ref_T[a / 16384] + ((ref_T[a / 16384 + 1] - ref_T[a / 16384]) * (a % 16384) + 8192) / 16384;
    return v < 0 ? -t : t;
}
static int64_t ref_sigmoid(int64_t v) {
    int64_t a = v < 0 ? -v : v, t;
    if (a >= 16 * 1048576) t = ref_T[512];
    else t = ref_T[a / 32768] + ((ref_T[a / 32768 + 1] - ref_T[a / 32768]) * (a % 32768) + 16384) / 32768;
    return v >= 0 ? (32768 + t) / 2 : (32768 - t) / 2;
}
static int64_t ref_exp(int64_t d) {
    if (d >= 16 * 1048576) return 0;
    int64_t k = d / 32768, f = d % 32768;
    return ref_E[k] - ((ref_E[k] - ref_E[k + 1]) * f + 16384) / 32768;
}

/* The reference's state: h and c per layer. */
typedef struct ref_state {
    int64_t h[LSTM_MAX_LAYERS][LSTM_INT_MAX_WIDTH], c[LSTM_MAX_LAYERS][LSTM_INT_MAX_WIDTH];
} ref_state;

static int64_t ref_t(int64_t acc, int32_t mult, int32_t shift) {
    return ref_clamp(ref_rsr(acc * mult, shift), -(1 << 29), 1 << 29);
}

/* One step of the specification, straight from the unpadded weights. */
static void ref_step(const int_net *n, ref_state *s, const int16_t *x, int16_t *y) {
    size_t H = n->hidden_size, H4 = 4 * H;
    int64_t in[LSTM_INT_MAX_WIDTH];
    size_t width = n->input_size;
    for (size_t k = 0; k < width; k++) in[k] = x[k];
    for (uint32_t l = 0; l < n->num_layers; l++) {
        const int8_t *w = n->w[l];
        const int32_t *qp = n->qp[l];
        size_t ld = width + H;
        int64_t z[4 * LSTM_INT_MAX_WIDTH];
        for (size_t r = 0; r < H4; r++) {
            int64_t ax = 0, ah = 0;
            for (size_t k = 0; k < width; k++) ax += (int64_t)w[r * ld + k] * in[k];
            for (size_t k = 0; k < H; k++) ah += (int64_t)w[r * ld + width + k] * s->h[l][k];
            z[r] = ref_t(ax, qp[r], qp[H4 + r]) + ref_t(ah, qp[2 * H4 + r], qp[3 * H4 + r]) + qp[4 * H4 + r];
        }
        for (size_t u = 0; u < H; u++) {
            int64_t i = ref_sigmoid(z[u]), f = ref_sigmoid(z[H + u]), g = ref_tanh(z[2 * H + u]);
            int64_t o = ref_sigmoid(z[3 * H + u]);
            int64_t c = ref_clamp(ref_rsr(f * s->c[l][u], 15) + ref_rsr(i * g, 10), -2147483647LL, 2147483647LL);
            s->c[l][u] = c;
            s->h[l][u] = ref_rsr(o * ref_tanh(c), 15);
        }
        for (size_t k = 0; k < H; k++) in[k] = s->h[l][k];
        width = H;
    }
    if (!n->head_size) {
        for (size_t k = 0; k < H; k++) y[k] = (int16_t)in[k];
        return;
    }
    size_t hs = n->head_size;
    int64_t zy[LSTM_INT_MAX_WIDTH], e[LSTM_INT_MAX_WIDTH], mx = INT64_MIN, sum = 0;
    for (size_t j = 0; j < hs; j++) {
        int64_t a = 0;
        for (size_t k = 0; k < H; k++) a += (int64_t)n->head_w[j * H + k] * in[k];
        zy[j] = ref_t(a, n->head_qp[j], n->head_qp[hs + j]) + n->head_qp[2 * hs + j];
        mx = zy[j] > mx ? zy[j] : mx;
    }
    for (size_t j = 0; j < hs; j++) {
        int64_t v = zy[j];
        switch (n->head_activation) {
        case LSTM_ACT_NONE: y[j] = (int16_t)ref_clamp(v, -32767, 32767); break;
        case LSTM_ACT_RELU: y[j] = (int16_t)ref_clamp(v, 0, 32767); break;
        case LSTM_ACT_SIGMOID: y[j] = (int16_t)ref_sigmoid(v); break;
        case LSTM_ACT_TANH: y[j] = (int16_t)ref_tanh(v); break;
        default: e[j] = ref_exp(mx - v); sum += e[j]; break;
        }
    }
    if (n->head_activation == LSTM_ACT_SOFTMAX)
        for (size_t j = 0; j < hs; j++) y[j] = (int16_t)ref_clamp((e[j] * 32768 + sum / 2) / sum, 0, 32767);
}

/* ---- helpers ------------------------------------------------------------------------------------------- */

typedef struct imodel {
    int_net n;
    unsigned char *bytes;
    size_t len;
    lstm_model *m;
} imodel;

static int imodel_open(imodel *t, uint32_t I, uint32_t H, uint32_t L, uint32_t head, uint32_t act, uint64_t seed) {
    int_net_make(&t->n, I, H, L, head, act, seed);
    t->bytes = int_net_write(&t->n, -1, &t->len);
    t->m = NULL;
    lstm_status st = lstm_model_open(t->bytes, t->len, &t->m);
    CHECK_STATUS(st, LSTM_OK);
    return st == LSTM_OK;
}
static void imodel_close(imodel *t) {
    lstm_model_close(t->m);
    free(t->bytes);
    int_net_free(&t->n);
}

/* Random int16 inputs over the whole range, with the extremes now and then. */
static void random_int16(rng *r, int16_t *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint64_t v = rng_next(r);
        x[i] = (int16_t)(int32_t)((v >> 16) % 65536 - 32768);
        if (v % 16 == 0) x[i] = (v >> 8) % 2 ? 32767 : -32768;
        if (v % 16 == 1) x[i] = (int16_t)((int32_t)(v >> 8) % 512 - 256);
    }
}

static int same_bits(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof(float)) == 0; }

/* The snapshot of a state, malloc'd. */
static unsigned char *snap(const lstm_state *s, const lstm_model *m) {
    unsigned char *b = (unsigned char *)xmalloc(lstm_snapshot_size(m));
    CHECK_OK(lstm_state_snapshot(s, b, lstm_snapshot_size(m)));
    return b;
}

/* The state's h and c words (int32: h of every layer, then c of every layer), read from its snapshot (the
 * public layout of lstm_format.h), into d[persist words]. */
static void state_words(const lstm_state *s, const lstm_model *m, int32_t *d) {
    unsigned char *p = snap(s, m);
    uint32_t n = get32(p + LSTM_SNAP_FLOATS);
    for (uint32_t i = 0; i < n; i++) d[i] = (int32_t)get32(p + LSTM_SNAP_HEADER_SIZE + 4 * i);
    free(p);
}

/* The float x that the float entry point quantises: q = clamp(rne(x * inv), +-32767) in float32 (volatile:
 * no excess precision on x87). */
static int16_t quantise_float(float x, float inv) {
    volatile float v = x * inv;
    float c = v > 32767.0f ? 32767.0f : v < -32767.0f ? -32767.0f : v;
    return (int16_t)nearbyintf(c);
}

/* ---- math primitives ----------------------------------------------------------------------------------- */

static void test_tables(void) {
    const int16_t *T = lstm_int_tanh_table(), *E = lstm_int_exp_table();
    CHECK(memcmp(T, ref_T, sizeof ref_T) == 0);
    CHECK(memcmp(E, ref_E, sizeof ref_E) == 0);
    CHECK(T[0] == 0 && T[512] == 32767 && E[0] == 32767 && E[512] == 0);
    for (int k = 0; k < 512; k++) CHECK(T[k + 1] >= T[k] && E[k + 1] <= E[k]);
}

static void test_rshift_round(void) {
    static const struct { int64_t v; unsigned s; int64_t want; } hand[] = {
        {5, 1, 3}, {-5, 1, -3}, {3, 1, 2}, {-3, 1, -2}, {1, 1, 1}, {-1, 1, -1}, {0, 1, 0}, {2, 1, 1}, {-2, 1, -1},
        {-6, 2, -2}, {-2, 2, -1}, {-7, 2, -2}, {-9, 2, -2}, {-10, 2, -3}, {10, 2, 3}, {-1, 2, 0}, {1, 2, 0},
        {(int64_t)1 << 61, 62, 1}, {-((int64_t)1 << 61), 62, -1}, {((int64_t)1 << 61) - 1, 62, 0},
        {-(((int64_t)1 << 61) - 1), 62, 0}, {-49152, 15, -2}, {-16384, 15, -1}, {-16383, 15, 0}};
    for (size_t i = 0; i < sizeof hand / sizeof hand[0]; i++) {
        test_context("v %lld s %u", (long long)hand[i].v, hand[i].s);
        CHECK(lstm_rshift_round(hand[i].v, hand[i].s) == hand[i].want);
    }
    rng r = {11};
    for (int i = 0; i < 100000; i++) {
        int s = 1 + (int)(rng_next(&r) % 62);
        int64_t v = (int64_t)(rng_next(&r) >> 2) - ((int64_t)1 << 61); /* |v| <= 2^61 */
        if (i % 3 == 0) v = (v / ((int64_t)1 << (s - 1))) * ((int64_t)1 << (s - 1)); /* ties and exact ones */
        test_context("v %lld s %d", (long long)v, s);
        CHECK(lstm_rshift_round(v, (unsigned)s) == ref_rsr(v, s));
    }
    test_context("");
}

/* The 32-bit requantisation (lstm_requant32, the step's on ARMv6-M) against the spec's int64 formula, here
 * (ref_t: division-based rounding) and the library's (lstm_requant64), on edge and random operands: |A| up
 * to 2^31, M from 0 to 2^31 - 1, every S from 1 to 62, products that are exact ties. */
static void check_requant(int32_t a, int32_t m, int32_t s) {
    int32_t got = lstm_requant32(a, m, s);
    if (got != ref_t(a, m, s) || got != lstm_requant64(a, m, s)) {
        test_context("A %ld M %ld S %ld: 32-bit %ld, spec %lld", (long)a, (long)m, (long)s, (long)got,
                     (long long)ref_t(a, m, s));
        CHECK(got == ref_t(a, m, s));
        CHECK(got == lstm_requant64(a, m, s));
    }
}

static void test_requant32(void) {
    static const int32_t as[] = {0, 1, -1, 2, -2, 3, 65535, 65536, -65536, 65537, 1 << 24, -(1 << 24),
                                 (1 << 30) - 1, 1 << 30, 2147483647 - (1 << 24), -(2147483647 - (1 << 24)),
                                 2147483646, 2147483647, -2147483647, INT32_MIN};
    static const int32_t ms[] = {0, 1, 2, 65535, 65536, 1 << 29, 1 << 30, (1 << 30) + 1, 2147483646, 2147483647};
    for (size_t i = 0; i < sizeof as / sizeof as[0]; i++)
        for (size_t j = 0; j < sizeof ms / sizeof ms[0]; j++)
            for (int32_t s = 1; s <= 62; s++) check_requant(as[i], ms[j], s);
    rng r = {23};
    for (int i = 0; i < 300000; i++) {
        int32_t s = 1 + (int32_t)(rng_next(&r) % 62), m, a;
        uint64_t bits = rng_next(&r);
        switch (i % 4) {
        case 0: /* anything */
            a = (int32_t)(uint32_t)bits;
            m = (int32_t)((bits >> 32) & 0x7fffffffU);
            break;
        case 1: /* |A| near 2^31, M in [2^30, 2^31) (the converter's usual multipliers) */
            a = 2147483647 - (int32_t)(bits & 0xffffff);
            a = (bits >> 63) ? -a : a;
            m = (int32_t)(0x40000000U | ((bits >> 24) & 0x3fffffffU));
            break;
        case 2: { /* a tie: A = a 2^j, M = m 2^k with a, m odd, j and k <= 30, j + k = S - 1 (so S <= 61;
                   * S = 62's tie, |A| = 2^31 with M = 2^30, is among the edges above) */
            if (s > 61) s = 61;
            int32_t j = (int32_t)((bits >> 40) % 31), k = s - 1 - j;
            if (k < 0) { j = s - 1; k = 0; }
            if (k > 30) { k = 30; j = s - 1 - k; }
            a = (int32_t)(((uint32_t)bits | 1U) & (0xffffffffU >> (j + 1))) << j; /* |a 2^j| < 2^31 */
            m = (int32_t)(((uint32_t)(bits >> 32) | 1U) & (0x7fffffffU >> k)) << k;
            a = (bits >> 63) ? -a : a;
            break;
        }
        default: /* small products: the rounding bits, not the clamp, decide */
            a = (int32_t)(bits & 0xfffff) - 0x80000;
            m = (int32_t)((bits >> 32) & 0xfffff);
            break;
        }
        check_requant(a, m, s);
    }
    test_context("");
}

/* The cell's 32-bit pieces (ARMv6-M) against the spec's int64 roundings: lstm_mul_q15_round(f, c) =
 * rshift_round(f c, 15) for f in [0, 32767] and any int32 c; lstm_rshift_round32 for the products below 2^30
 * (i g >> 10, o tanh(c) >> 15) and any s. */
static void check_fc(int32_t f, int32_t c) {
    int64_t want = ref_rsr((int64_t)f * c, 15);
    int32_t got = lstm_mul_q15_round(f, c);
    if (got != want || want != lstm_rshift_round((int64_t)f * c, 15)) {
        test_context("f %ld c %ld: 32-bit %ld, spec %lld", (long)f, (long)c, (long)got, (long long)want);
        CHECK(got == want);
    }
}

static void test_cell32(void) {
    static const int32_t fs[] = {0, 1, 2, 16383, 16384, 32766, 32767};
    static const int32_t cs[] = {0, 1, -1, 16384, -16384, 49152, -49152, 65535, 65536, -65536, 65537,
                                 1 << 30, -(1 << 30), 2147483647, -2147483647, INT32_MIN};
    for (size_t i = 0; i < sizeof fs / sizeof fs[0]; i++)
        for (size_t j = 0; j < sizeof cs / sizeof cs[0]; j++) check_fc(fs[i], cs[j]);
    rng r = {29};
    for (int i = 0; i < 300000; i++) {
        uint64_t bits = rng_next(&r);
        int32_t f = (int32_t)(bits % 32768), c = (int32_t)(uint32_t)(bits >> 32);
        if (i % 3 == 1) { /* a tie: f c = odd 2^14 */
            f = (int32_t)((bits % 16384) * 2 + 1);
            c = (int32_t)(((bits >> 32) & 0xffff) * 2 + 1) * 16384;
            c = (bits >> 63) ? -c : c;
        }
        check_fc(f, c);
        /* i g and o tanh(c): |v| <= 32767^2 < 2^30 */
        int32_t v = (int32_t)((bits >> 17) % (32767 * 32767 + 1)) * ((bits & 1) ? -1 : 1);
        unsigned s = i % 2 ? 10 : 15;
        if (i % 5 == 0) { /* ties */
            v = (int32_t)(((bits >> 20) % 2048) * 2 + 1) << (s - 1);
            v = (bits & 2) ? -v : v;
        }
        if (i % 7 == 0) s = 1 + (unsigned)((bits >> 8) % 30); /* any s with |v| + 2^(s-1) < 2^31 */
        if (lstm_rshift_round32(v, s) != ref_rsr(v, (int)s)) {
            test_context("v %ld s %u", (long)v, s);
            CHECK(lstm_rshift_round32(v, s) == ref_rsr(v, (int)s));
        }
    }
    test_context("");
}

static void test_activations(void) {
    /* the saturation edges: tanh at |v| = 8.0 (2^23), sigmoid at 16.0 (2^24), and the int32 extremes */
    CHECK(lstm_tanh_q15(0) == 0 && lstm_sigmoid_q15(0) == 16384);
    CHECK(lstm_tanh_q15(1 << 23) == 32767 && lstm_tanh_q15(-(1 << 23)) == -32767);
    CHECK(lstm_tanh_q15((1 << 23) - 1) == 32767 && lstm_tanh_q15(-(1 << 23) + 1) == -32767);
    CHECK(lstm_tanh_q15(INT32_MIN) == -32767 && lstm_tanh_q15(INT32_MAX) == 32767);
    CHECK(lstm_sigmoid_q15(1 << 24) == 32767 && lstm_sigmoid_q15(-(1 << 24)) == 0);
    CHECK(lstm_sigmoid_q15(INT32_MAX) == 32767 && lstm_sigmoid_q15(INT32_MIN) == 0);
    /* on the table's grid the interpolation is the table: tanh(k / 64) = T[k], sigmoid(2k / 64) */
    for (int k = 0; k < 512; k++) {
        CHECK(lstm_tanh_q15(k << 14) == ref_T[k] && lstm_tanh_q15(-(k << 14)) == -ref_T[k]);
        CHECK(lstm_sigmoid_q15(k << 15) == (32768 + ref_T[k]) >> 1);
        CHECK(lstm_sigmoid_q15(-(k << 15)) == (32768 - ref_T[k]) >> 1);
    }
    /* hand-worked: tanh(1/128) halfway between T[0] = 0 and T[1] = 512 -> 256; sigmoid of 1/64 (half a step)
     * -> t = 256, (32768 + 256) / 2 = 16512 */
    CHECK(lstm_tanh_q15(1 << 13) == 256 && lstm_sigmoid_q15(1 << 14) == 16512 && lstm_sigmoid_q15(-(1 << 14)) == 16256);
    rng r = {12};
    double worst_t = 0, worst_s = 0;
    for (int i = 0; i < 200000; i++) {
        int32_t v = (int32_t)(rng_next(&r) % (40u << 20)) - (20 << 20);
        if (i % 4 == 0) v = (int32_t)(uint32_t)rng_next(&r); /* anywhere in int32 */
        test_context("v %ld", (long)v);
        int32_t t = lstm_tanh_q15(v), s = lstm_sigmoid_q15(v);
        CHECK(t == ref_tanh(v) && s == ref_sigmoid(v));
        CHECK(t >= -32767 && t <= 32767 && s >= 0 && s <= 32767);
        double dt = fabs(t - 32767.0 * tanh(v / 1048576.0)), ds = fabs(s - 32768.0 / (1.0 + exp(-v / 1048576.0)));
        worst_t = dt > worst_t ? dt : worst_t;
        worst_s = ds > worst_s ? ds : worst_s;
    }
    test_context("");
    /* interpolation error h^2 / 8 max|tanh''| (h = 1/64: 0.75 units of 2^-15) plus the table's and the
     * interpolation's roundings */
    CHECK_ERR(worst_t, 2.0);
    CHECK_ERR(worst_s, 2.0);
    /* monotonic across a stretch with every fraction */
    for (int32_t v = -(1 << 16); v < (1 << 16); v++) {
        CHECK(lstm_tanh_q15(v + 1) >= lstm_tanh_q15(v));
        CHECK(lstm_sigmoid_q15(v + 1) >= lstm_sigmoid_q15(v));
    }
}

static void test_softmax(void) {
    int16_t y[LSTM_INT_MAX_WIDTH];
    uint32_t e[LSTM_INT_MAX_WIDTH];
    int32_t z[LSTM_INT_MAX_WIDTH];
    /* hand-worked: two equal -> e = 32767 each, S = 65534, (32767 * 32768 + 32767) / 65534 = 16384 */
    z[0] = z[1] = 12345;
    lstm_softmax_q15(z, e, y, 2);
    CHECK(y[0] == 16384 && y[1] == 16384);
    /* one far below (d >= 16.0): e = {32767, 0} -> {min(32767, 32768), 0} */
    z[0] = 0;
    z[1] = -(1 << 24);
    lstm_softmax_q15(z, e, y, 2);
    CHECK(y[0] == 32767 && y[1] == 0);
    lstm_softmax_q15(z, e, y, 1);
    CHECK(y[0] == 32767);
    /* d = 1/32 exactly: E[1] = 31759; S = 64526; y = (32767 * 32768 + 32263) / 64526 = 16640,
     * (31759 * 32768 + 32263) / 64526 = 16128 */
    z[0] = 1 << 15;
    z[1] = 0;
    lstm_softmax_q15(z, e, y, 2);
    CHECK(e[0] == 32767 && e[1] == 31759 && y[0] == 16640 && y[1] == 16128);
    CHECK(lstm_exp_neg_q15(0) == 32767 && lstm_exp_neg_q15((1 << 24) - 1) == 0 && lstm_exp_neg_q15(1U << 24) == 0);
    CHECK(lstm_exp_neg_q15(0xffffffffU) == 0);
    rng r = {13};
    for (int trial = 0; trial < 2000; trial++) {
        uint32_t n = 1 + (uint32_t)(rng_next(&r) % (trial < 1000 ? 10 : 512));
        int32_t spread = 1 << (20 + (int)(rng_next(&r) % 5));
        for (uint32_t j = 0; j < n; j++) z[j] = (int32_t)(rng_next(&r) % (2u * (uint32_t)spread)) - spread;
        lstm_softmax_q15(z, e, y, n);
        test_context("trial %d n %u", trial, n);
        double zmax = -1e300, s = 0, worst = 0;
        long sum = 0;
        for (uint32_t j = 0; j < n; j++) zmax = z[j] / 1048576.0 > zmax ? z[j] / 1048576.0 : zmax;
        for (uint32_t j = 0; j < n; j++) s += exp(z[j] / 1048576.0 - zmax);
        for (uint32_t j = 0; j < n; j++) {
            CHECK(y[j] >= 0 && y[j] <= 32767);
            sum += y[j];
            double want = 32768.0 * exp(z[j] / 1048576.0 - zmax) / s, d = fabs(y[j] - want);
            worst = d > worst ? d : worst;
        }
        /* each output within the table's interpolation error (exp'' = exp, h = 1/32: 1.2e-4 relative, 4
         * units) plus roundings; the sum within one unit per output of 32768 */
        CHECK_ERR(worst, 8.0);
        CHECK(labs(sum - 32768) <= (long)n);
    }
    test_context("");
}

/* ---- the step against the reference --------------------------------------------------------------------- */

typedef struct shape {
    uint32_t I, H, L, head, act;
} shape;
static const shape shapes[] = {
    {5, 7, 2, 3, LSTM_ACT_SIGMOID}, {1, 1, 1, 0, LSTM_ACT_NONE},     {9, 16, 3, 5, LSTM_ACT_SOFTMAX},
    {3, 5, 1, 4, LSTM_ACT_RELU},    {8, 12, 2, 6, LSTM_ACT_NONE},    {6, 9, 1, 7, LSTM_ACT_TANH},
    {4, 4, 2, 1, LSTM_ACT_SOFTMAX}, {13, 33, 2, 0, LSTM_ACT_NONE},   {2, 3, 4, 2, LSTM_ACT_SIGMOID},
};

/* `steps` steps of lstm_step_int against ref_step: outputs and every h and c word; inputs random (fill 0)
 * or every input `fill`. */
static void check_against_reference(imodel *t, size_t steps, uint64_t seed, int fill) {
    const int_net *n = &t->n;
    void *buf;
    lstm_state *s = new_state(t->m, &buf, NULL);
    ref_state *rs = (ref_state *)xmalloc(sizeof *rs);
    memset(rs, 0, sizeof *rs);
    size_t out = n->head_size ? n->head_size : n->hidden_size;
    int16_t *x = (int16_t *)xmalloc(n->input_size * 2), *y = (int16_t *)xmalloc(out * 2), *yr = (int16_t *)xmalloc(out * 2);
    rng r = {seed};
    int bad = 0;
    for (size_t step = 0; step < steps && !bad; step++) {
        random_int16(&r, x, n->input_size);
        for (size_t k = 0; fill && k < n->input_size; k++) x[k] = (int16_t)fill;
        CHECK_OK(lstm_step_int(s, x, y));
        ref_step(n, rs, x, yr);
        bad |= memcmp(y, yr, out * 2) != 0;
        int32_t d[2 * LSTM_MAX_LAYERS * LSTM_INT_MAX_WIDTH];
        state_words(s, t->m, d);
        for (uint32_t l = 0; l < n->num_layers; l++)
            for (size_t u = 0; u < n->hidden_size; u++) {
                bad |= d[(size_t)l * n->hidden_size + u] != rs->h[l][u];
                bad |= d[((size_t)n->num_layers + l) * n->hidden_size + u] != rs->c[l][u];
            }
        if (bad) test_context("step %zu differs from the reference", step);
        CHECK(!bad);
    }
    test_context("");
    free(x);
    free(y);
    free(yr);
    free(rs);
    free(buf);
}

static void test_step_matches_reference(void) {
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const shape *sh = &shapes[i];
        imodel t;
        test_context("shape %zu", i);
        if (!imodel_open(&t, sh->I, sh->H, sh->L, sh->head, sh->act, 100 + i)) continue;
        check_against_reference(&t, 40, 200 + i, 0);
        imodel_close(&t);
    }
}

/* The widest model: r4(input) = 512 (input 509), hidden 512, head 512; and the largest accepted sums. */
static void test_widest(void) {
    imodel t;
    if (imodel_open(&t, 509, 512, 1, 512, LSTM_ACT_SOFTMAX, 7)) {
        check_against_reference(&t, 3, 8, 0);
        imodel_close(&t);
    }
    /* every weight +127 or -127 and inputs at -32768: |A| = 127 * 32768 * 512 = 2^31 - 2^24 (int32 holds it) */
    int_net n;
    int_net_make(&n, 512, 64, 1, 64, LSTM_ACT_NONE, 9);
    for (size_t i = 0; i < 4 * 64 * (512 + 64); i++) n.w[0][i] = (int8_t)(i % 7 == 0 ? -127 : 127);
    size_t len;
    unsigned char *b = int_net_write(&n, -1, &len);
    lstm_model *m = NULL;
    CHECK_OK(lstm_model_open(b, len, &m));
    if (m) {
        imodel tt = {n, b, len, m};
        check_against_reference(&tt, 3, 10, -32768);
        check_against_reference(&tt, 3, 10, 32767);
        lstm_model_close(m);
    }
    free(b);
    int_net_free(&n);
}

/* ---- float entry points, run, many streams, ISAs --------------------------------------------------------- */

static float *float_inputs(rng *r, size_t n, float in_scale) {
    float *x = (float *)xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        x[i] = rng_uniform(r, 40000.0f * in_scale);
        if (i % 17 == 0) x[i] = rng_uniform(r, 1e6f);
        if (i % 29 == 0) x[i] = (float)(int)(x[i] / in_scale) * in_scale + 0.5f * in_scale; /* near ties */
    }
    return x;
}

static void test_float_entry_points(void) {
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const shape *sh = &shapes[i];
        imodel t;
        test_context("shape %zu", i);
        if (!imodel_open(&t, sh->I, sh->H, sh->L, sh->head, sh->act, 300 + i)) continue;
        const lstm_model *m = t.m;
        size_t I = sh->I, O = sh->head ? sh->head : sh->H, T = 25;
        float in_scale, out_scale;
        CHECK_OK(lstm_model_int_scales(m, &in_scale, &out_scale));
        CHECK(in_scale == t.n.io[0] && out_scale == t.n.io[2]);
        rng r = {400 + i};
        float *xs = float_inputs(&r, T * I, in_scale);
        float *ys_step = (float *)xmalloc(T * O * 4), *ys_run = (float *)xmalloc(T * O * 4);
        float *ys_many = (float *)xmalloc(T * O * 4), *ys_int = (float *)xmalloc(T * O * 4);
        int16_t *xq = (int16_t *)xmalloc(I * 2), *yq = (int16_t *)xmalloc(O * 2);
        void *b1, *b2, *b3, *b4;
        lstm_state *s_step = new_state(m, &b1, NULL), *s_int = new_state(m, &b2, NULL), *s_run = new_state(m, &b3, NULL);
        /* step (float) and step_int (x quantised here) */
        unsigned long allocs = alloc_count();
        for (size_t k = 0; k < T; k++) {
            CHECK_OK(lstm_step(s_step, xs + k * I, ys_step + k * O));
            for (size_t j = 0; j < I; j++) xq[j] = quantise_float(xs[k * I + j], t.n.io[1]);
            CHECK_OK(lstm_step_int(s_int, xq, yq));
            for (size_t j = 0; j < O; j++) {
                volatile float v = (float)yq[j] * out_scale;
                ys_int[k * O + j] = v;
            }
        }
        CHECK(alloc_count() == allocs);
        CHECK(same_bits(ys_step, ys_int, T * O));
        unsigned char *p1 = snap(s_step, m), *p2 = snap(s_int, m);
        CHECK(memcmp(p1, p2, lstm_snapshot_size(m)) == 0);
        /* run without a workspace, then with one of 1 and of 7 steps (compact state) */
        CHECK_OK(lstm_run(s_run, xs, 10, ys_run, NULL, 0));
        size_t wlen = lstm_run_workspace_size(m, 1);
        void *work = xmalloc(wlen);
        CHECK_OK(lstm_run(s_run, xs + 10 * I, 5, ys_run + 10 * O, work, wlen));
        free(work);
        size_t clen = lstm_compact_state_size(m);
        void *cbuf = xmalloc(clen);
        lstm_state *cs;
        CHECK_OK(lstm_compact_state_init(m, cbuf, clen, &cs));
        CHECK_OK(lstm_state_restore(cs, p1, lstm_snapshot_size(m))); /* not used below: overwritten */
        CHECK_OK(lstm_state_reset(cs));
        wlen = lstm_run_workspace_size(m, 7);
        work = xmalloc(wlen);
        CHECK_STATUS(lstm_run(cs, xs, 3, ys_run, NULL, 0), LSTM_E_BUFFER_TOO_SMALL);
        unsigned char *p3 = snap(s_run, m);
        CHECK_OK(lstm_state_restore(cs, p3, lstm_snapshot_size(m)));
        CHECK_OK(lstm_run(cs, xs + 15 * I, T - 15, ys_run + 15 * O, work, wlen));
        CHECK(same_bits(ys_step, ys_run, T * O));
        unsigned char *p4 = snap(cs, m);
        CHECK(memcmp(p1, p4, lstm_snapshot_size(m)) == 0);
        /* step_many: three streams (full, compact, full) at different points of the sequence */
        lstm_state *s_a = new_state(m, &b4, NULL);
        void *cb2 = xmalloc(clen);
        lstm_state *s_b;
        CHECK_OK(lstm_compact_state_init(m, cb2, clen, &s_b));
        size_t mlen = lstm_step_many_workspace_size(m, 2);
        void *mw = xmalloc(mlen);
        float *xx = (float *)xmalloc(2 * I * 4), *yy = (float *)xmalloc(2 * O * 4);
        for (size_t k = 0; k < T; k++) {
            lstm_state *sts[2] = {s_a, s_b};
            memcpy(xx, xs + k * I, I * 4);
            memcpy(xx + I, xs + (T - 1 - k) * I, I * 4);
            allocs = alloc_count();
            CHECK_OK(lstm_step_many(m, sts, 2, xx, yy, mw, mlen));
            CHECK(alloc_count() == allocs);
            memcpy(ys_many + k * O, yy, O * 4);
        }
        CHECK(same_bits(ys_step, ys_many, T * O));
        unsigned char *p5 = snap(s_a, m);
        CHECK(memcmp(p1, p5, lstm_snapshot_size(m)) == 0);
        /* step_ws on a compact state */
        CHECK_OK(lstm_state_reset(s_b));
        size_t slen = lstm_step_workspace_size(m);
        void *sw = xmalloc(slen);
        for (size_t k = 0; k < T; k++) CHECK_OK(lstm_step_ws(s_b, xs + k * I, yy, sw, slen));
        CHECK(same_bits(yy, ys_step + (T - 1) * O, O));
        free(sw);
        free(p1); free(p2); free(p3); free(p4); free(p5);
        free(b1); free(b2); free(b3); free(b4); free(cbuf); free(cb2); free(work); free(mw);
        free(xx); free(yy); free(xs); free(ys_step); free(ys_run); free(ys_many); free(ys_int); free(xq); free(yq);
        imodel_close(&t);
    }
    test_context("");
}

static void test_trace(void) {
    imodel t;
    if (!imodel_open(&t, 6, 10, 2, 3, LSTM_ACT_TANH, 21)) return;
    const lstm_model *m = t.m;
    size_t nt = lstm_trace_floats(m), H = 10;
    float *tr = (float *)xmalloc(nt * 4), y1[3], y2[3];
    void *b1, *b2;
    lstm_state *s1 = new_state(m, &b1, NULL), *s2 = new_state(m, &b2, NULL);
    rng r = {22};
    float *xs = float_inputs(&r, 6 * 8, t.n.io[0]);
    for (int k = 0; k < 8; k++) {
        CHECK_OK(lstm_step_trace(s1, xs + 6 * k, y1, tr));
        CHECK_OK(lstm_step(s2, xs + 6 * k, y2));
        CHECK(same_bits(y1, y2, 3));
    }
    int32_t d[4 * 10];
    state_words(s1, m, d);
    for (uint32_t l = 0; l < 2; l++) {
        const float *tl = tr + l * 6 * H;
        for (size_t u = 0; u < H; u++) {
            CHECK(tl[4 * H + u] == (float)d[(2 + l) * H + u] / 1048576.0f);
            CHECK(tl[5 * H + u] == (float)d[l * H + u] / 32768.0f);
        }
        for (size_t g = 0; g < 4 * H; g++) {
            float v = tl[g] * 32768.0f;
            CHECK(v == (float)(int)v && (g / H == 2 ? fabsf(v) <= 32767.0f : (v >= 0.0f && v <= 32767.0f)));
        }
    }
    free(tr); free(b1); free(b2); free(xs);
    imodel_close(&t);
}

static void test_every_isa_same_bits(void) {
    static const lstm_isa isas[] = {LSTM_ISA_REFERENCE, LSTM_ISA_AVX2, LSTM_ISA_AVX512_VNNI, LSTM_ISA_NEON,
                                    LSTM_ISA_NEON_DOT, LSTM_ISA_CORTEX_M_DSP, LSTM_ISA_BLAS,
                                    LSTM_ISA_AMX_INT8, LSTM_ISA_AVX2_VNNI};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const shape *sh = &shapes[i];
        imodel t;
        if (!imodel_open(&t, sh->I, sh->H, sh->L, sh->head, sh->act, 500 + i)) continue;
        size_t O = sh->head ? sh->head : sh->H, T = 12;
        int16_t *want = (int16_t *)xmalloc(T * O * 2), *got = (int16_t *)xmalloc(T * O * 2);
        int16_t *xs = (int16_t *)xmalloc(T * sh->I * 2);
        rng r = {600 + i};
        random_int16(&r, xs, T * sh->I);
        int tested = 0;
        for (size_t a = 0; a < sizeof isas / sizeof isas[0]; a++) {
            if (!lstm_isa_supported(isas[a])) continue;
            test_context("shape %zu isa %s", i, lstm_isa_name(isas[a]));
            CHECK_OK(lstm_model_set_isa(t.m, isas[a]));
            void *buf;
            lstm_state *s = new_state(t.m, &buf, NULL);
            for (size_t k = 0; k < T; k++) CHECK_OK(lstm_step_int(s, xs + k * sh->I, (a ? got : want) + k * O));
            if (a) CHECK(memcmp(want, got, T * O * 2) == 0);
            tested++;
            free(buf);
        }
        CHECK(tested >= 1);
        free(want); free(got); free(xs);
        imodel_close(&t);
    }
    test_context("");
}

/* ---- API statuses, snapshots, malformed files ------------------------------------------------------------ */

static void test_api_statuses(void) {
    imodel t;
    if (!imodel_open(&t, 4, 5, 1, 0, LSTM_ACT_NONE, 31)) return;
    void *buf;
    lstm_state *s = new_state(t.m, &buf, NULL);
    int16_t x[4] = {1, 2, 3, 4}, y[5];
    float fi, fo;
    CHECK_STATUS(lstm_step_int(NULL, x, y), LSTM_E_INVALID_ARGUMENT);
    CHECK_STATUS(lstm_step_int(s, NULL, y), LSTM_E_INVALID_ARGUMENT);
    CHECK_STATUS(lstm_step_int(s, x, NULL), LSTM_E_INVALID_ARGUMENT);
    CHECK_STATUS(lstm_model_int_scales(NULL, &fi, &fo), LSTM_E_INVALID_ARGUMENT);
    CHECK_STATUS(lstm_model_int_scales(t.m, NULL, &fo), LSTM_E_INVALID_ARGUMENT);
    size_t clen = lstm_compact_state_size(t.m);
    void *cbuf = xmalloc(clen);
    lstm_state *cs;
    CHECK_OK(lstm_compact_state_init(t.m, cbuf, clen, &cs));
    CHECK_STATUS(lstm_step_int(cs, x, y), LSTM_E_BUFFER_TOO_SMALL);
    CHECK_OK(lstm_step_int(s, x, y));
    /* the float checks of x come first */
    float xf[4] = {0.0f, NAN, 0.0f, 0.0f}, yf[5];
    CHECK_STATUS(lstm_step(s, xf, yf), LSTM_E_NONFINITE_INPUT);
    xf[1] = 1e30f;
    CHECK_STATUS(lstm_step(s, xf, yf), LSTM_E_INPUT_RANGE);
    xf[1] = 1e19f; /* within LSTM_MAX_ABS_INPUT: clamps to 32767 */
    CHECK_OK(lstm_step(s, xf, yf));
    /* a broken state */
    uint32_t magic = *(uint32_t *)(void *)s;
    *(uint32_t *)(void *)s = 0;
    CHECK_STATUS(lstm_step_int(s, x, y), LSTM_E_BAD_STATE);
    *(uint32_t *)(void *)s = magic;
    /* a float model */
    tmodel f;
    net_spec spec = {4, 5, 0, 1, 1, 0, LSTM_ACT_NONE, 1, 0.5f};
    if (tmodel_open(&f, &spec)) {
        void *fb;
        lstm_state *fs = new_state(f.m, &fb, NULL);
        CHECK_STATUS(lstm_step_int(fs, x, y), LSTM_E_UNSUPPORTED);
        CHECK_STATUS(lstm_model_int_scales(f.m, &fi, &fo), LSTM_E_UNSUPPORTED);
        free(fb);
        tmodel_close(&f);
    }
    lstm_model_info info;
    CHECK_OK(lstm_model_get_info(t.m, &info));
    CHECK(info.layer_dtype[0] == LSTM_LAYER_INT16X8 && info.output_size == 5);
    /* a closed model (lstm_model_init: the descriptor memory stays) */
    void *mem = xmalloc(lstm_model_mem_size()), *buf2;
    lstm_model *m2 = NULL;
    CHECK_OK(lstm_model_init(mem, lstm_model_mem_size(), t.bytes, t.len, &m2));
    lstm_state *s2 = new_state(m2, &buf2, NULL);
    CHECK_OK(lstm_step_int(s2, x, y));
    lstm_model_close(m2);
    CHECK_STATUS(lstm_step_int(s2, x, y), LSTM_E_BAD_STATE);
    CHECK_STATUS(lstm_model_int_scales(m2, &fi, &fo), LSTM_E_INVALID_ARGUMENT);
    free(mem);
    free(buf2);
    free(buf);
    free(cbuf);
    imodel_close(&t);
}

/* Set snapshot word i (after the header) and fix the CRC. */
static void snap_word(unsigned char *p, size_t len, size_t i, uint32_t v) {
    put32(p + LSTM_SNAP_HEADER_SIZE + 4 * i, v);
    put32(p + len - 4, crc32_ieee(p, len - 4, 0));
}

static void test_snapshot_ranges(void) {
    imodel t;
    if (!imodel_open(&t, 3, 4, 2, 0, LSTM_ACT_NONE, 41)) return;
    void *buf;
    lstm_state *s = new_state(t.m, &buf, NULL);
    int16_t x[3] = {30000, -30000, 1234}, y[4];
    for (int k = 0; k < 5; k++) CHECK_OK(lstm_step_int(s, x, y));
    size_t len = lstm_snapshot_size(t.m), nh = 2 * 4;
    unsigned char *p = snap(s, t.m), *q = (unsigned char *)xmalloc(len);
    CHECK_OK(lstm_state_restore(s, p, len));
    static const struct { uint32_t v; int h_ok, c_ok; } cases[] = {
        {32767, 1, 1}, {32768, 0, 1}, {(uint32_t)-32767, 1, 1}, {(uint32_t)-32768, 0, 1}, {0, 1, 1},
        {0x7fffffffU, 0, 1}, {0x80000000U, 0, 0}, {0x80000001U, 0, 1}, {0xffffffffU, 1, 1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        test_context("word 0x%08lx", (unsigned long)cases[i].v);
        memcpy(q, p, len);
        snap_word(q, len, 1, cases[i].v); /* an h */
        CHECK_STATUS(lstm_state_restore(s, q, len), cases[i].h_ok ? LSTM_OK : LSTM_E_BAD_SNAPSHOT);
        memcpy(q, p, len);
        snap_word(q, len, nh + 2, cases[i].v); /* a c */
        CHECK_STATUS(lstm_state_restore(s, q, len), cases[i].c_ok ? LSTM_OK : LSTM_E_BAD_SNAPSHOT);
    }
    test_context("");
    /* a restored state steps exactly as the one it came from */
    CHECK_OK(lstm_state_restore(s, p, len));
    void *buf2;
    lstm_state *s2 = new_state(t.m, &buf2, NULL);
    CHECK_OK(lstm_state_restore(s2, p, len));
    int16_t y2[4];
    CHECK_OK(lstm_step_int(s, x, y));
    CHECK_OK(lstm_step_int(s2, x, y2));
    CHECK(memcmp(y, y2, sizeof y) == 0);
    CHECK_OK(lstm_state_reset(s2));
    int32_t d[16];
    state_words(s2, t.m, d);
    int zero = 1;
    for (size_t i = 0; i < 16; i++) zero &= d[i] == 0;
    CHECK(zero);
    free(p); free(q); free(buf); free(buf2);
    imodel_close(&t);
}

/* A tensor's data in a file: the first entry of this role (index 0 unless layer tensors of layer 1). */
static unsigned char *tensor_data(unsigned char *f, uint32_t role, uint32_t index) {
    uint32_t count = get32(f + LSTM_HDR_TENSOR_COUNT);
    for (uint32_t i = 0; i < count; i++) {
        unsigned char *e = f + LSTM_HDR_SIZE + i * LSTM_TENSOR_ENTRY_SIZE;
        if (get32(e + LSTM_TENSOR_ROLE) == role && get32(e + LSTM_TENSOR_INDEX) == index)
            return f + get64(e + LSTM_TENSOR_OFFSET);
    }
    return NULL;
}

static lstm_status open_status(const unsigned char *f, size_t len) {
    lstm_model *m = NULL;
    lstm_status st = lstm_model_open(f, len, &m);
    lstm_model_close(m);
    return st;
}

/* The model of n, with word `word` of tensor (role, index) set to v: the status it opens with. */
static lstm_status with_word(const int_net *n, uint32_t role, uint32_t index, size_t word, uint32_t v) {
    size_t len;
    unsigned char *f = int_net_write(n, -1, &len);
    unsigned char *d = tensor_data(f, role, index);
    CHECK(d != NULL);
    if (!d) {
        free(f);
        return LSTM_OK;
    }
    put32(d + 4 * word, v);
    fix_file_crc(f, len);
    lstm_status st = open_status(f, len);
    free(f);
    return st;
}

static uint32_t fbits(float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    return u;
}

static void test_malformed_values(void) {
    int_net n;
    int_net_make(&n, 5, 6, 2, 3, LSTM_ACT_SIGMOID, 51);
    size_t H4 = 24, hs = 3, len;
    unsigned char *f = int_net_write(&n, -1, &len);
    CHECK_STATUS(open_status(f, len), LSTM_OK);
    free(f);
    const uint32_t bad = LSTM_E_BAD_TENSOR;
    for (uint32_t index = 0; index <= 2; index += 2) { /* layers 0 and 1 */
        test_context("layer %u", index / 2);
        for (size_t part = 0; part < 2; part++) { /* M_x, S_x or M_h, S_h */
            size_t m_row = part ? LSTM_QP_MH : LSTM_QP_MX, s_row = part ? LSTM_QP_SH : LSTM_QP_SX;
            CHECK_STATUS(with_word(&n, LSTM_ROLE_QPARAMS, index, m_row * H4 + 3, 0x80000000U), bad); /* M = 2^31 */
            CHECK_STATUS(with_word(&n, LSTM_ROLE_QPARAMS, index, m_row * H4 + 3, 0xffffffffU), bad); /* M = -1 */
            CHECK_STATUS(with_word(&n, LSTM_ROLE_QPARAMS, index, m_row * H4 + 3, 0x7fffffffU), LSTM_OK);
            CHECK_STATUS(with_word(&n, LSTM_ROLE_QPARAMS, index, m_row * H4 + 3, 0), LSTM_OK);
            CHECK_STATUS(with_word(&n, LSTM_ROLE_QPARAMS, index, s_row * H4 + H4 - 1, 0), bad);
            CHECK_STATUS(with_word(&n, LSTM_ROLE_QPARAMS, index, s_row * H4 + H4 - 1, 63), bad);
            CHECK_STATUS(with_word(&n, LSTM_ROLE_QPARAMS, index, s_row * H4 + H4 - 1, 0xffffffffU), bad);
            CHECK_STATUS(with_word(&n, LSTM_ROLE_QPARAMS, index, s_row * H4, 1), LSTM_OK);
            CHECK_STATUS(with_word(&n, LSTM_ROLE_QPARAMS, index, s_row * H4, 62), LSTM_OK);
        }
        CHECK_STATUS(with_word(&n, LSTM_ROLE_QPARAMS, index, 4 * H4 + 5, (1U << 29) + 1), bad);
        CHECK_STATUS(with_word(&n, LSTM_ROLE_QPARAMS, index, 4 * H4 + 5, (uint32_t)-((1 << 29) + 1)), bad);
        CHECK_STATUS(with_word(&n, LSTM_ROLE_QPARAMS, index, 4 * H4 + 5, 1U << 29), LSTM_OK);
        CHECK_STATUS(with_word(&n, LSTM_ROLE_QPARAMS, index, 4 * H4 + 5, (uint32_t)-(1 << 29)), LSTM_OK);
    }
    test_context("head");
    CHECK_STATUS(with_word(&n, LSTM_ROLE_HEAD_QPARAMS, 0, 1, 0x80000000U), bad);
    CHECK_STATUS(with_word(&n, LSTM_ROLE_HEAD_QPARAMS, 0, hs + 1, 0), bad);
    CHECK_STATUS(with_word(&n, LSTM_ROLE_HEAD_QPARAMS, 0, hs + 1, 63), bad);
    CHECK_STATUS(with_word(&n, LSTM_ROLE_HEAD_QPARAMS, 0, 2 * hs + 2, (1U << 29) + 1), bad);
    CHECK_STATUS(with_word(&n, LSTM_ROLE_HEAD_QPARAMS, 0, 2 * hs + 2, (uint32_t)-((1 << 29) + 1)), bad);
    test_context("io scales");
    for (uint32_t col = 0; col < 3; col++) {
        CHECK_STATUS(with_word(&n, LSTM_ROLE_IO_SCALES, 0, col, fbits(NAN)), bad);
        CHECK_STATUS(with_word(&n, LSTM_ROLE_IO_SCALES, 0, col, fbits(INFINITY)), bad);
        CHECK_STATUS(with_word(&n, LSTM_ROLE_IO_SCALES, 0, col, fbits(0.0f)), bad);
        CHECK_STATUS(with_word(&n, LSTM_ROLE_IO_SCALES, 0, col, fbits(-1.0f)), bad);
        CHECK_STATUS(with_word(&n, LSTM_ROLE_IO_SCALES, 0, col, fbits(1e20f)), bad); /* > 2^64 */
        CHECK_STATUS(with_word(&n, LSTM_ROLE_IO_SCALES, 0, col, fbits(1e-30f)), LSTM_OK);
        CHECK_STATUS(with_word(&n, LSTM_ROLE_IO_SCALES, 0, col, fbits(3e6f)), LSTM_OK); /* beyond 2^20: fine */
    }
    CHECK_STATUS(with_word(&n, LSTM_ROLE_IO_SCALES, 0, 3, fbits(1.0f)), bad);
    CHECK_STATUS(with_word(&n, LSTM_ROLE_IO_SCALES, 0, 3, fbits(-0.0f)), bad);
    test_context("head weights");
    /* H = 6: columns 6, 7 of the blocked head are padding; rows 3..15 too */
    f = int_net_write(&n, -1, &len);
    unsigned char *hw = tensor_data(f, LSTM_ROLE_HEAD_W, 0);
    hw[0] = 0x80; /* -128 */
    fix_file_crc(f, len);
    CHECK_STATUS(open_status(f, len), bad);
    free(f);
    f = int_net_write(&n, -1, &len);
    hw = tensor_data(f, LSTM_ROLE_HEAD_W, 0);
    hw[64 + 2] = 1; /* row 0, column 6 (group 1, k % 4 = 2): padding */
    fix_file_crc(f, len);
    CHECK_STATUS(open_status(f, len), bad);
    free(f);
    f = int_net_write(&n, -1, &len);
    hw = tensor_data(f, LSTM_ROLE_HEAD_W, 0);
    hw[4 * 5] = 1; /* row 5 (past head 3) */
    fix_file_crc(f, len);
    CHECK_STATUS(open_status(f, len), bad);
    free(f);
    /* the header: mixed dtypes, projection, two directions */
    test_context("header");
    f = int_net_write(&n, LSTM_LAYER_INT8_A16, &len); /* layer 0 int8-a16, layer 1 int16x8 */
    CHECK_STATUS(open_status(f, len), LSTM_E_BAD_HEADER);
    free(f);
    f = int_net_write(&n, -1, &len);
    f[LSTM_HDR_LAYER_DTYPES + 1] = LSTM_LAYER_FP32;
    fix_file_crc(f, len);
    CHECK_STATUS(open_status(f, len), LSTM_E_BAD_HEADER);
    free(f);
    f = int_net_write(&n, -1, &len);
    put32(f + LSTM_HDR_PROJ_SIZE, 2);
    fix_file_crc(f, len);
    CHECK_STATUS(open_status(f, len), LSTM_E_BAD_HEADER);
    free(f);
    f = int_net_write(&n, -1, &len);
    put32(f + LSTM_HDR_NUM_DIRECTIONS, 2);
    fix_file_crc(f, len);
    CHECK_STATUS(open_status(f, len), LSTM_E_BAD_HEADER);
    free(f);
    /* a missing QPARAMS (its entry's role changed to one this model has no place for) */
    f = int_net_write(&n, -1, &len);
    for (uint32_t i = 0; i < get32(f + LSTM_HDR_TENSOR_COUNT); i++) {
        unsigned char *e = f + LSTM_HDR_SIZE + i * LSTM_TENSOR_ENTRY_SIZE;
        if (get32(e + LSTM_TENSOR_ROLE) == LSTM_ROLE_QPARAMS) {
            put32(e + LSTM_TENSOR_ROLE, LSTM_ROLE_PROJ_SCALE);
            break;
        }
    }
    fix_file_crc(f, len);
    CHECK_STATUS(open_status(f, len), bad);
    free(f);
    int_net_free(&n);
    /* widths: r4(input) 512 opens, 513 (input 510 -> 512 is fine, 513 -> 516) and hidden or head 513 do not */
    static const struct { uint32_t I, H, head; lstm_status want; } widths[] = {
        {512, 4, 2, LSTM_OK}, {513, 4, 2, LSTM_E_BAD_HEADER}, {3, 513, 0, LSTM_E_BAD_HEADER},
        {3, 4, 513, LSTM_E_BAD_HEADER}, {3, 4, 512, LSTM_OK}};
    for (size_t i = 0; i < sizeof widths / sizeof widths[0]; i++) {
        test_context("widths %u %u %u", widths[i].I, widths[i].H, widths[i].head);
        int_net_make(&n, widths[i].I, widths[i].H, 1, widths[i].head, LSTM_ACT_NONE, 60 + i);
        f = int_net_write(&n, -1, &len);
        CHECK_STATUS(open_status(f, len), widths[i].want);
        free(f);
        int_net_free(&n);
    }
    test_context("");
    /* a float model with an IO_SCALES tensor it has no place for */
    net fn;
    net_spec spec = {3, 4, 0, 1, 1, 0, LSTM_ACT_NONE, 2, 0.5f};
    net_make(&fn, &spec);
    f = net_write(&fn, 0, &len);
    CHECK_STATUS(open_status(f, len), LSTM_OK);
    put32(f + LSTM_HDR_SIZE + LSTM_TENSOR_ROLE, LSTM_ROLE_IO_SCALES); /* the first entry */
    fix_file_crc(f, len);
    CHECK_STATUS(open_status(f, len), bad);
    free(f);
    net_free(&fn);
}

/* Every single-bit flip of a small int16x8 file, with the CRC and fingerprint fixed afterwards, opens or
 * is refused (never a crash; ASan runs this too), and a model that opens steps without trouble. */
static void test_bit_flips_never_crash(void) {
    int_net n;
    int_net_make(&n, 3, 4, 1, 2, LSTM_ACT_SOFTMAX, 71);
    size_t len;
    unsigned char *f = int_net_write(&n, -1, &len), *g = (unsigned char *)xmalloc(len);
    int opened = 0, refused = 0;
    for (size_t bit = 0; bit < len * 8; bit++) {
        memcpy(g, f, len);
        g[bit / 8] ^= (unsigned char)(1U << (bit % 8));
        fix_file_crc(g, len);
        lstm_model *m = NULL;
        if (lstm_model_open(g, len, &m) != LSTM_OK) {
            refused++;
            continue;
        }
        opened++;
        void *buf;
        lstm_state *s = new_state(m, &buf, NULL);
        int16_t x[LSTM_INT_MAX_WIDTH] = {-32768, 32767, 100}, y[LSTM_INT_MAX_WIDTH];
        float xf[LSTM_INT_MAX_WIDTH] = {1.0f, -2.0f, 3.0f}, yf[LSTM_INT_MAX_WIDTH];
        lstm_model_info info;
        lstm_model_get_info(m, &info);
        lstm_status st = lstm_step_int(s, x, y);
        CHECK(st == LSTM_OK || (st == LSTM_E_UNSUPPORTED && info.layer_dtype[0] != LSTM_LAYER_INT16X8));
        if (st == LSTM_OK) CHECK_OK(lstm_step(s, xf, yf));
        free(buf);
        lstm_model_close(m);
    }
    CHECK(opened > 0 && refused > 0);
    free(f);
    free(g);
    int_net_free(&n);
}

int main(void) {
    make_ref_tables();
    run_test("tables", test_tables);
    run_test("rshift_round", test_rshift_round);
    run_test("requant32", test_requant32);
    run_test("cell32", test_cell32);
    run_test("activations", test_activations);
    run_test("softmax", test_softmax);
    run_test("step_matches_reference", test_step_matches_reference);
    run_test("widest", test_widest);
    run_test("float_entry_points", test_float_entry_points);
    run_test("trace", test_trace);
    run_test("every_isa_same_bits", test_every_isa_same_bits);
    run_test("api_statuses", test_api_statuses);
    run_test("snapshot_ranges", test_snapshot_ranges);
    run_test("malformed_values", test_malformed_values);
    run_test("bit_flips_never_crash", test_bit_flips_never_crash);
    return test_summary();
}
