/* elementwise_impl.h - the elementwise kernels of the table (quantize, q8_gates, cell_update, activate),
 * instantiated once per ISA: define LSTM_EW_SUFFIX (name suffix) and LSTM_EW_ATTR (a target attribute, or
 * nothing) and include this file; it defines lstm_quantize_<suffix> and the others. The source is the
 * same for every ISA, so every ISA computes the same bits (elementwise.h). Define LSTM_EW_SCALAR for a
 * scalar FPU (Cortex-M): the branching form of exp (elementwise.h) and one pass over the gates per hidden
 * unit, the same operations on the same values. */
/* GCC vectorises these loops at -O3 only: at -O1 and -O2 its "very cheap" cost model refuses loops that
 * need an epilogue, and the kernels ran 5-8x slower (tools/bench_elementwise.c at H = 64, GCC 12: 1743 ns
 * at -O2 against 227 at -O3 for the float cell update on AVX-512, 2368 against 421 for the precise one).
 * The same IEEE operations either way, so the same bits. -Os stays unvectorised (size is what it asks for).
 * Clang vectorises the cell loops at -O2 once their arrays are known not to overlap (restrict below). */
#if defined(__GNUC__) && !defined(__clang__) && !defined(__OPTIMIZE_SIZE__) && defined(__OPTIMIZE__)
#pragma GCC push_options
#pragma GCC optimize("tree-vectorize", "vect-cost-model=dynamic")
#define LSTM_EW_POP_OPTIONS 1
#endif
#include "elementwise.h"

#ifdef LSTM_EW_SCALAR
#define LSTM_EW_EXP lstm_exp_branch
#else
#define LSTM_EW_EXP lstm_exp_clamped
#endif

#define LSTM_EW_PASTE2(a, b) a##_##b
#define LSTM_EW_PASTE(a, b) LSTM_EW_PASTE2(a, b)
#define LSTM_EW(name) LSTM_EW_PASTE(name, LSTM_EW_SUFFIX)

LSTM_EW_ATTR float LSTM_EW(lstm_quantize)(const float *v, size_t n, int8_t *q, size_t padded) {
    uint32_t max_bits = lstm_max_abs_bits_inline(v, n); /* inputs are finite: checked on entry */
    float amax;
    memcpy(&amax, &max_bits, 4);
    memset(q + n, 0, padded - n);
    if (!(amax >= LSTM_Q8_MIN_AMAX)) { /* zero, or so small that 127 / amax would overflow */
        memset(q, 0, n);
        return 0.0f;
    }
    const float inv = LSTM_R(127.0f / amax);
    /* |v| <= amax, so |v * inv| stays within 127 plus a rounding error: no clamp needed */
#ifdef LSTM_EW_SCALAR
    /* t = v * inv + 1.5 * 2^23 is the float 1.5 * 2^23 + q exactly, whose low byte is q's (two's
     * complement): no subtraction and no float-to-int conversion */
    for (size_t i = 0; i < n; i++) {
        float t = LSTM_R(LSTM_R(v[i] * inv) + LSTM_ROUND_MAGIC);
        uint32_t bits;
        memcpy(&bits, &t, 4);
        q[i] = (int8_t)(uint8_t)bits;
    }
#else
    for (size_t i = 0; i < n; i++)
        q[i] = (int8_t)(int32_t)LSTM_R(LSTM_R(LSTM_R(v[i] * inv) + LSTM_ROUND_MAGIC) - LSTM_ROUND_MAGIC);
#endif
    return LSTM_R(amax / 127.0f);
}

#ifndef LSTM_EW_OWN_Q8_GATES /* else the including file defines it (elementwise_cortex_m.c) */
LSTM_EW_ATTR void LSTM_EW(lstm_q8_gates)(float *y, const float *bias, const int32_t *acc_x, float sx,
                                         const float *scale_x, const int32_t *acc_h, float sh,
                                         const float *scale_h, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float px = LSTM_R((float)acc_x[i] * LSTM_R(sx * scale_x[i]));
        float ph = LSTM_R((float)acc_h[i] * LSTM_R(sh * scale_h[i]));
        y[i] = LSTM_R(LSTM_R(bias[i] + px) + ph);
    }
}
#endif

#ifndef LSTM_EW_SCALAR
/* c = f c + i g and hfull = o tanh(c) over the activations. restrict: the buffers are distinct (kernels.h's
 * callers), and without it clang's cost model, weighing the runtime overlap checks of six pointers, left
 * this loop scalar (3x slower cell update with clang); GCC versioned it. */
LSTM_EW_ATTR static void LSTM_EW(cell_state)(size_t hidden, const float *restrict gi,
                                             const float *restrict gf, const float *restrict gg,
                                             const float *restrict go, float *restrict c,
                                             float *restrict hfull) {
    for (size_t j = 0; j < hidden; j++) {
        float cj = LSTM_R(LSTM_R(gf[j] * c[j]) + LSTM_R(gi[j] * gg[j]));
        c[j] = cj;
        hfull[j] = LSTM_R(go[j] * lstm_tanh1(cj));
    }
}
#endif

LSTM_EW_ATTR void LSTM_EW(lstm_cell_update)(size_t hidden, float *gates, float *c, float *hfull) {
    float *gi = gates, *gf = gates + hidden, *gg = gates + 2 * hidden, *go = gates + 3 * hidden;
#ifdef LSTM_EW_SCALAR
    for (size_t j = 0; j < hidden; j++) { /* one unit at a time: each value loaded and stored once */
        float i = lstm_sigmoid1(gi[j]), f = lstm_sigmoid1(gf[j]), g = lstm_tanh1(gg[j]);
        float o = lstm_sigmoid1(go[j]);
        gi[j] = i, gf[j] = f, gg[j] = g, go[j] = o;
        float cj = LSTM_R(LSTM_R(f * c[j]) + LSTM_R(i * g));
        c[j] = cj;
        hfull[j] = LSTM_R(o * lstm_tanh1(cj));
    }
#else
    /* the gates first, as long simple loops; then the state, with one more tanh per unit */
    for (size_t j = 0; j < 2 * hidden; j++) gi[j] = lstm_sigmoid1(gi[j]);
    for (size_t j = 0; j < hidden; j++) gg[j] = lstm_tanh1(gg[j]);
    for (size_t j = 0; j < hidden; j++) go[j] = lstm_sigmoid1(go[j]);
    LSTM_EW(cell_state)(hidden, gi, gf, gg, go, c, hfull);
#endif
}

LSTM_EW_ATTR static void LSTM_EW(softmax)(float *v, size_t n) {
    if (n == 0) return;
    float mx = v[0];
    for (size_t i = 1; i < n; i++) mx = v[i] > mx ? v[i] : mx;
    for (size_t i = 0; i < n; i++) v[i] = LSTM_EW_EXP(LSTM_R(v[i] - mx));
    float sum = 0.0f; /* in index order, on every ISA */
    for (size_t i = 0; i < n; i++) sum = LSTM_R(sum + v[i]);
    float inv = LSTM_R(1.0f / sum);
    for (size_t i = 0; i < n; i++) v[i] = LSTM_R(v[i] * inv);
}

LSTM_EW_ATTR void LSTM_EW(lstm_activate)(unsigned activation, float *v, size_t n) {
    switch (activation) {
    case LSTM_ACT_SIGMOID:
        for (size_t i = 0; i < n; i++) v[i] = lstm_sigmoid1(v[i]);
        break;
    case LSTM_ACT_TANH:
        for (size_t i = 0; i < n; i++) v[i] = lstm_tanh1(v[i]);
        break;
    case LSTM_ACT_RELU:
        for (size_t i = 0; i < n; i++) v[i] = v[i] > 0.0f ? v[i] : 0.0f;
        break;
    case LSTM_ACT_SOFTMAX: LSTM_EW(softmax)(v, n); break;
    default: break;
    }
}

/* Cortex-M (scalar form) and cores without double hardware: fp32 layers keep the float kernels (dispatch.c) */
#if !defined(LSTM_EW_SCALAR) && !defined(LSTM_F32_FLOAT_ELEMENTWISE)
/* fp32 layers: the precise cell update (elementwise_cell_f32.h; an includer with its own vector form
 * defines LSTM_EW_OWN_CELL_F32) */
#ifndef LSTM_EW_OWN_CELL_F32
#include "elementwise_cell_f32.h"
#endif

/* softmax with exp in double: the sum in double in index order, then each exp again times 1 / sum, rounded
 * once (recomputing costs less than a double buffer the caller would have to provide) */
LSTM_EW_ATTR static void LSTM_EW(softmax_f32)(float *v, size_t n) {
    if (n == 0) return;
    float mx = v[0];
    for (size_t i = 1; i < n; i++) mx = v[i] > mx ? v[i] : mx;
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)v[i] - (double)mx;
        sum += lstm_exp_d(d > -150.0 ? d : -150.0); /* exp(-150) is 0 in the float result */
    }
    double inv = 1.0 / sum;
    for (size_t i = 0; i < n; i++) {
        double d = (double)v[i] - (double)mx;
        v[i] = LSTM_R((float)(lstm_exp_d(d > -150.0 ? d : -150.0) * inv));
    }
}

/* the head of a model whose top layer is fp32 */
LSTM_EW_ATTR void LSTM_EW(lstm_activate_f32)(unsigned activation, float *v, size_t n) {
    switch (activation) {
    case LSTM_ACT_SIGMOID:
        for (size_t i = 0; i < n; i++) v[i] = lstm_sigmoid_p(v[i]);
        break;
    case LSTM_ACT_TANH:
        for (size_t i = 0; i < n; i++) v[i] = lstm_tanh_p(v[i]);
        break;
    case LSTM_ACT_SOFTMAX: LSTM_EW(softmax_f32)(v, n); break;
    default: LSTM_EW(lstm_activate)(activation, v, n); break; /* relu, none: exact either way */
    }
}
#endif

/* int8-a16 layers: in their own file */
#include "elementwise_q16_impl.h"

#ifdef LSTM_EW_POP_OPTIONS
#pragma GCC pop_options
#undef LSTM_EW_POP_OPTIONS
#endif
#undef LSTM_EW
#undef LSTM_EW_EXP
#undef LSTM_EW_PASTE
#undef LSTM_EW_PASTE2
