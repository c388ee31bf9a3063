/* count.c - instructions per LSTM step on the Cortex-M4 (qemu-system-arm -M mps2-an386 -icount shift=0;
 * see cycles.h): one layer, I = H, no projection or head, fp32 / int8 / int8-dynamic / int16x8 weights,
 * the reference table against the Cortex-M DSP table. Besides the whole step (lstm_step, with its input
 * check), the int8-dynamic step's parts are timed kernel by kernel, called as engine.c calls them: the
 * matrix-vector products (gemv_s8 over the W_ih and W_hh column ranges), the two quantisations, the gate
 * epilogue (q8_gates) and the cell update. The int16x8 models (written by
 * tools/cortex_m0/gen_int16x8_model.py, linked in) are timed by tools/cortex_m0/count_int.c: lstm_step_int,
 * lstm_step and the integer step's parts. Output: one line per measurement,
 *   count <isa> <dtype> H=<H> <what> <instructions> [<per weight>] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "count_int.h"
#include "cycles.h"
#include "kernels.h"
#include "lstm_format.h"
#include "testlib.h"

#define INSNS_PER_TICK 40 /* 1 ns per instruction (-icount shift=0), 25 MHz SysTick */
#define REPS 32

/* instructions of one call of `body`, averaged over REPS calls, the loop's own cost removed */
#define MEASURE(result, body)                                                                                \
    do {                                                                                                     \
        uint64_t t0_ = cycles_now();                                                                         \
        for (int rep_ = 0; rep_ < REPS; rep_++) {                                                            \
            body;                                                                                            \
            __asm__ volatile("" ::: "memory");                                                               \
        }                                                                                                    \
        uint64_t t1_ = cycles_now();                                                                         \
        result = (double)(t1_ - t0_) * INSNS_PER_TICK / REPS - g_overhead;                                   \
    } while (0)

static double g_overhead;

/* the int16x8 models, H = 32, 64, 128 (tools/cortex_m0/gen_int16x8_model.py --prefix count_i16_h<H>) */
#define INT16X8_MODEL(p) extern const unsigned char p##_model[]; extern const size_t p##_model_len; extern const float p##_inputs[];
INT16X8_MODEL(count_i16_h32)
INT16X8_MODEL(count_i16_h64)
INT16X8_MODEL(count_i16_h128)

static void report(const char *isa, const char *dtype, unsigned h, const char *what, double insns, double weights) {
    if (weights > 0)
        printf("count %-12s %-12s H=%-4u %-10s %10.0f  %.3f per weight\n", isa, dtype, h, what, insns, insns / weights);
    else
        printf("count %-12s %-12s H=%-4u %-10s %10.0f\n", isa, dtype, h, what, insns);
}

/* count_int.c's reports (thousandths of an instruction) in this file's format */
static void report_milli(const char *isa, const char *dtype, unsigned h, const char *what, uint64_t milli, uint64_t weights) {
    report(isa, dtype, h, what, (double)milli / 1000.0, (double)weights);
}

static int count_int_models(void) {
    static const struct { unsigned h; const unsigned char *model; const size_t *len; const float *inputs; } ms[] = {
        {32, count_i16_h32_model, &count_i16_h32_model_len, count_i16_h32_inputs},
        {64, count_i16_h64_model, &count_i16_h64_model_len, count_i16_h64_inputs},
        {128, count_i16_h128_model, &count_i16_h128_model_len, count_i16_h128_inputs}};
    static const lstm_isa isas[] = {LSTM_ISA_REFERENCE, LSTM_ISA_CORTEX_M_DSP};
    uint64_t overhead = count_loop_overhead(INSNS_PER_TICK * 1000);
    size_t mem_len = 64 * 1024;
    void *mem = malloc(mem_len);
    if (!mem) return 1;
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++)
        for (size_t k = 0; k < sizeof isas / sizeof isas[0]; k++)
            if (count_int16x8(isas[k], ms[i].model, *ms[i].len, ms[i].inputs, ms[i].h, mem, mem_len,
                              INSNS_PER_TICK * 1000, overhead, report_milli))
                return 1;
    free(mem);
    return 0;
}

int main(void) {
    static const unsigned hs[] = {32, 64, 128};
    static const lstm_isa isas[] = {LSTM_ISA_REFERENCE, LSTM_ISA_CORTEX_M_DSP};
    static const char *dtypes[] = {"fp32", "int8", "int8-dynamic"};
    cycles_start();
    MEASURE(g_overhead, (void)0);
    printf("loop overhead %.0f instructions (subtracted)\n", g_overhead);
    for (size_t hi = 0; hi < sizeof hs / sizeof hs[0]; hi++)
        for (int d = 0; d < 3; d++) {
            unsigned H = hs[hi];
            net_spec spec = {H, H, 0, 1, 1, 0, LSTM_ACT_NONE, 42 + H, 0.3f};
            net n;
            net_make(&n, &spec);
            size_t len;
            unsigned char *bytes = d == 0 ? net_write(&n, 0, &len)
                                          : net_write_q8(&n, d == 1 ? LSTM_LAYER_INT8 : LSTM_LAYER_INT8_DYNAMIC, &len);
            lstm_model *m = NULL;
            if (lstm_model_open(bytes, len, &m) != LSTM_OK) {
                printf("cannot open the H=%u model\n", H);
                return 1;
            }
            float *xs = random_inputs(7, 4, H, 1.0f), y[128];
            double weights = 4.0 * H * (2.0 * H);
            for (size_t k = 0; k < sizeof isas / sizeof isas[0]; k++) {
                const char *name = lstm_isa_name(isas[k]);
                if (lstm_model_set_isa(m, isas[k]) != LSTM_OK) {
                    printf("isa %s unavailable\n", name);
                    return 1;
                }
                void *buf;
                lstm_state *s = new_state(m, &buf, NULL);
                for (int i = 0; i < 4; i++) lstm_step(s, xs + i * H, y); /* a state away from zero */
                double step;
                MEASURE(step, lstm_step(s, xs + (rep_ & 3) * H, y));
                report(name, dtypes[d], H, "step", step, weights);
                if (d == 2) { /* the int8-dynamic step's kernels, called as engine.c calls them */
                    const lstm_kernels *kt = lstm_kernels_for(isas[k]);
                    size_t rows = 4 * (size_t)H, g = H / 4, groups = 2 * g;
                    int8_t q[2][128];
                    int32_t acc[2][512];
                    float gates[512], c[128], hv[128], bias[512], sc[1024];
                    for (size_t i = 0; i < rows; i++) bias[i] = 0.01f * (float)(i % 7);
                    for (size_t i = 0; i < 2 * rows; i++) sc[i] = 0.001f;
                    for (size_t i = 0; i < H; i++) c[i] = 0.1f * (float)(i % 5);
                    const int8_t *w = (const int8_t *)(bytes + get64(bytes + LSTM_HDR_SIZE + LSTM_TENSOR_ENTRY_SIZE + LSTM_TENSOR_OFFSET));
                    /* tensor 1 of net_write_q8: the blocked weights */
                    double t;
                    float sx = 0, sh = 0;
                    MEASURE(t, (sx = kt->quantize(xs, H, q[0], H), sh = kt->quantize(xs + H, H, q[1], H)));
                    report(name, dtypes[d], H, "quantize", t, 0);
                    MEASURE(t, (kt->gemv_s8(w, rows, groups, 0, g, q[0], NULL, acc[0]),
                                kt->gemv_s8(w, rows, groups, g, groups, q[1], NULL, acc[1])));
                    report(name, dtypes[d], H, "matvec", t, weights);
                    MEASURE(t, kt->q8_gates(gates, bias, acc[0], sx, sc, acc[1], sh, sc + rows, rows));
                    report(name, dtypes[d], H, "q8_gates", t, 0);
                    /* the cell update on pre-activations spread over [-4, 4] and states over [-2, 2] (the
                     * float sigmoid and tanh no longer branch on |x|, so the count barely depends on the
                     * data now), copied in before each call (the kernel overwrites them), the copies' cost
                     * subtracted */
                    float g0[512], c0[128], tc;
                    for (size_t i = 0; i < rows; i++) g0[i] = -4.0f + 8.0f * (float)((i * 37) % 101) / 100.0f;
                    for (size_t i = 0; i < H; i++) c0[i] = -2.0f + 4.0f * (float)((i * 53) % 97) / 96.0f;
                    MEASURE(tc, (memcpy(gates, g0, rows * sizeof(float)), memcpy(c, c0, H * sizeof(float))));
                    MEASURE(t, (memcpy(gates, g0, rows * sizeof(float)), memcpy(c, c0, H * sizeof(float)),
                                kt->cell_update(H, gates, c, hv)));
                    report(name, dtypes[d], H, "cell", t - tc, 0);
                }
                free(buf);
            }
            free(xs);
            lstm_model_close(m);
            free(bytes);
            net_free(&n);
        }
    return count_int_models();
}
