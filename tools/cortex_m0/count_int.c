/* count_int.c - see count_int.h. Measured on the library's own code: the step, the layer
 * (lstm_int_layer: products, requantisation, activations, cell) and the product kernel of the model's
 * table on its weights; so "epilogue" (the layer less its products) and "other" (the step less the layer:
 * state check, input copy, output copy) are exact. The epilogue's split into requantisation, activations
 * and cell is measured on the arithmetic as int_step.c writes it (the same helpers of int_math.h over the
 * same types, the 32-bit forms where int_step.c uses them: LSTM_INT_ARITH32), on the values of a real step
 * (the sums, pre-activations and cell state of the model's own input): indicative, as int_step.c may
 * change. "products" are what lstm_int_layer computes: on ARMv6-M the Thumb-1 panel kernel's int32 sums,
 * elsewhere the table's gemv_s16. */
#include "count_int.h"

#include <stdio.h>
#include <string.h>

#include "cycles.h"
#include "int_math.h"
#include "kernels_arm.h"
#include "lstm_format.h"
#include "lstm_internal.h"

#define REPS 32
#define MAX_H 128
#define C_LIMIT ((int64_t)2147483647)

static uint64_t g_milli_per_tick, g_overhead;

/* thousandths of an instruction per call of `body`, averaged over REPS calls, the loop's cost removed */
#define MEASURE(result, body)                                                                                \
    do {                                                                                                     \
        uint64_t t0_ = cycles_now();                                                                         \
        for (int rep_ = 0; rep_ < REPS; rep_++) {                                                            \
            body;                                                                                            \
            __asm__ volatile("" ::: "memory");                                                               \
        }                                                                                                    \
        uint64_t t1_ = cycles_now();                                                                         \
        uint64_t m_ = (t1_ - t0_) * g_milli_per_tick / REPS;                                                 \
        result = m_ > g_overhead ? m_ - g_overhead : 0;                                                      \
    } while (0)

uint64_t count_loop_overhead(uint64_t milli_per_tick) {
    uint64_t t;
    g_milli_per_tick = milli_per_tick;
    g_overhead = 0;
    MEASURE(t, (void)0);
    return t;
}

/* the data of the tensor with this role (layer 0), NULL if absent */
static const void *tensor(const unsigned char *file, uint32_t role) {
    uint32_t n = 0;
    for (int b = 3; b >= 0; b--) n = n << 8 | file[LSTM_HDR_TENSOR_COUNT + b];
    for (uint32_t i = 0; i < n; i++) {
        const unsigned char *e = file + LSTM_HDR_SIZE + i * LSTM_TENSOR_ENTRY_SIZE;
        if (e[LSTM_TENSOR_ROLE] == role && e[LSTM_TENSOR_INDEX] == 0) {
            uint32_t off = 0;
            for (int b = 3; b >= 0; b--) off = off << 8 | e[LSTM_TENSOR_OFFSET + b]; /* < 4 GB */
            return file + off;
        }
    }
    return NULL;
}

/* int_step.c's requant */
static inline int32_t requant(int64_t acc, int32_t mult, int32_t shift) {
#if LSTM_INT_ARITH32
    return lstm_requant32((int32_t)acc, mult, shift);
#else
    return lstm_requant64(acc, mult, shift);
#endif
}

static int fail(const char *what, lstm_status st) {
    printf("%s: %s\n", what, lstm_status_str(st));
    return 1;
}

int count_int16x8(lstm_isa isa, const unsigned char *model, size_t len, const float *inputs, unsigned H,
                  void *mem, size_t mem_len, uint64_t milli_per_tick, uint64_t overhead_milli, count_report_fn report) {
    const char *isa_name = lstm_isa_name(isa), *dt = "int16x8";
    g_milli_per_tick = milli_per_tick;
    g_overhead = overhead_milli;
    lstm_model *m;
    lstm_state *s;
    size_t desc_len = (LSTM_MODEL_MEM_SIZE + 7) / 8 * 8; /* the descriptor first, in mem */
    if (mem_len < desc_len) {
        printf("count_int16x8: %lu bytes of memory do not hold the model descriptor\n", (unsigned long)mem_len);
        return 1;
    }
    lstm_status st = lstm_model_init(mem, LSTM_MODEL_MEM_SIZE, model, len, &m);
    mem = (unsigned char *)mem + desc_len;
    mem_len -= desc_len;
    if (st != LSTM_OK) return fail("lstm_model_init (int16x8)", st);
    if ((st = lstm_model_set_isa(m, isa)) != LSTM_OK) return fail("lstm_model_set_isa", st);
    if (H > MAX_H) {
        printf("int16x8 H=%u above this tool's %u\n", H, MAX_H);
        return 1;
    }
    size_t H4 = 4 * (size_t)H, state_len = (lstm_state_size(m) + 7) / 8 * 8;
    /* then xq[4][H] and hq[H] (int16), then the state; once the steps are timed, the parts' operands
     * in the state's place: ax[4H], ah[4H] (int64), z[4H], act[4H], c[H], tc[H], cn[H], hn[H] (int32) */
    size_t io_len = (5 * H * sizeof(int16_t) + 7) / 8 * 8;
    size_t parts_len = 2 * H4 * sizeof(int64_t) + (2 * H4 + 4 * H) * sizeof(int32_t);
    size_t need = io_len + (state_len > parts_len ? state_len : parts_len);
    if (need > mem_len) {
        printf("int16x8 H=%u needs %lu bytes of memory besides the descriptor, the firmware gives %lu\n", H,
               (unsigned long)need, (unsigned long)mem_len);
        return 1;
    }
    int16_t *xq = (int16_t *)mem, *hq = xq + 4 * H;
    void *work = (unsigned char *)mem + io_len;
    if ((st = lstm_state_init(m, work, state_len, &s)) != LSTM_OK) return fail("lstm_state_init", st);
    int64_t *ax = (int64_t *)work, *ah = ax + H4;
    int32_t *z = (int32_t *)(void *)(ah + H4), *act = z + H4, *c = act + H4, *tc = c + H, *cn = tc + H, *hn = cn + H;
    float in_scale, out_scale;
    if ((st = lstm_model_int_scales(m, &in_scale, &out_scale)) != LSTM_OK) return fail("lstm_model_int_scales", st);
    for (size_t i = 0; i < 4 * (size_t)H; i++) { /* the inputs in int16: x / input_scale, to nearest */
        float v = inputs[i] / in_scale;
        v = v > 32767.0f ? 32767.0f : v < -32767.0f ? -32767.0f : v;
        xq[i] = (int16_t)(v >= 0 ? (int32_t)(v + 0.5f) : -(int32_t)(0.5f - v));
    }
    int16_t yq[MAX_H];
    float y[MAX_H];
    for (int i = 0; i < 4; i++) /* a state away from zero */
        if ((st = lstm_step_int(s, xq + i * H, yq)) != LSTM_OK) return fail("lstm_step_int", st);
    if ((st = lstm_step(s, inputs, y)) != LSTM_OK) return fail("lstm_step (int16x8)", st);
    uint64_t weights = 8u * H * H, t, step;
    MEASURE(step, lstm_step_int(s, xq + (rep_ & 3) * H, yq));
    report(isa_name, dt, H, "step", step, weights);
    MEASURE(t, lstm_step(s, inputs + (rep_ & 3) * H, y));
    report(isa_name, dt, H, "step_f32io", t, weights);
    uint64_t layer;
    {
        lstm_int_scratch sc = lstm_int_scratch_at(m, lstm_state_scratch(s));
        int32_t *data = (int32_t *)(void *)lstm_state_data(s);
        lstm_int_load_input(m, xq, &sc);
        MEASURE(layer, (memcpy(sc.xq, xq, H * sizeof(int16_t)), lstm_int_layer(m, 0, data, &sc)));
        MEASURE(t, memcpy(sc.xq, xq, H * sizeof(int16_t)));
        layer = layer > t ? layer - t : 0; /* the input copy (the layer overwrites sc.xq with its h) */
    }

    /* the parts, on the operands of a real step: x the first input, h the last step's output; the
     * state's memory is theirs from here */
    for (size_t i = 0; i < H; i++) hq[i] = yq[i];
    lstm_model_close(m);
    const int8_t *w = (const int8_t *)tensor(model, LSTM_ROLE_WEIGHT);
    const int32_t *qp = (const int32_t *)tensor(model, LSTM_ROLE_QPARAMS);
    if (!w || !qp) {
        printf("int16x8 model without WEIGHT or QPARAMS\n");
        return 1;
    }
    const int32_t *mx = qp + LSTM_QP_MX * H4, *sx = qp + LSTM_QP_SX * H4, *mh = qp + LSTM_QP_MH * H4;
    const int32_t *sh = qp + LSTM_QP_SH * H4, *bias = qp + LSTM_QP_B * H4;
    const lstm_kernels *kt = lstm_kernels_for(isa);
    size_t gx = (H + 3) / 4, groups = 2 * gx;
#ifdef LSTM_HAVE_ARMV6M_KERNELS
    (void)kt;
    int32_t *ax32 = (int32_t *)(void *)ax, *ah32 = (int32_t *)(void *)ah; /* as lstm_int_layer */
    MEASURE(t, for (size_t r0 = 0; r0 < H4; r0 += 16) {
        const int8_t *panel = w + (r0 / 16) * groups * 64;
        lstm_s16_panel_armv6m(panel, xq, (uint32_t)gx, ax32 + r0);
        lstm_s16_panel_armv6m(panel + gx * 64, hq, (uint32_t)gx, ah32 + r0);
    });
    report(isa_name, dt, H, "products", t, weights);
    const int32_t *sum_x = ax32, *sum_h = ah32;
#else
    MEASURE(t, (kt->gemv_s16(w, H4, groups, 0, gx, xq, ax), kt->gemv_s16(w, H4, groups, gx, groups, hq, ah)));
    report(isa_name, dt, H, "products", t, weights);
    const int64_t *sum_x = ax, *sum_h = ah;
#endif
    report(isa_name, dt, H, "epilogue", layer > t ? layer - t : 0, 0);
    report(isa_name, dt, H, "other", step > layer ? step - layer : 0, 0);
    MEASURE(t, for (size_t r = 0; r < H4; r++) z[r] = requant(sum_x[r], mx[r], sx[r]) + requant(sum_h[r], mh[r], sh[r]) + bias[r]);
    report(isa_name, dt, H, "requant", t, 0);
    /* a cell state of realistic size: twice the g gate's pre-activations (Q11.20, like c) */
    for (size_t u = 0; u < H; u++) c[u] = z[2 * H + u] * 2;
    MEASURE(t, {
        for (size_t u = 0; u < H; u++) {
            act[u] = lstm_sigmoid_q15(z[u]);
            act[H + u] = lstm_sigmoid_q15(z[H + u]);
            act[2 * H + u] = lstm_tanh_q15(z[2 * H + u]);
            act[3 * H + u] = lstm_sigmoid_q15(z[3 * H + u]);
            tc[u] = lstm_tanh_q15(c[u]);
        }
    });
    report(isa_name, dt, H, "activations", t, 0);
    MEASURE(t, for (size_t u = 0; u < H; u++) {
#if LSTM_INT_ARITH32
        int64_t fc = lstm_mul_q15_round(act[H + u], c[u]);
#else
        int64_t fc = lstm_rshift_round((int64_t)act[H + u] * c[u], 15);
#endif
        int64_t cnew = fc + lstm_rshift_round32(act[u] * act[2 * H + u], 10);
        cn[u] = (int32_t)lstm_clamp64(cnew, -C_LIMIT, C_LIMIT);
        hn[u] = lstm_rshift_round32(act[3 * H + u] * tc[u], 15);
    });
    report(isa_name, dt, H, "cell", t, 0);
    return 0;
}
