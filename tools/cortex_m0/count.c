/* count.c - instructions per LSTM step on the Cortex-M0 (qemu-system-arm -M microbit -icount shift=0,
 * soft float): the model of count_model.h (one layer, I = H, no head; in flash), the reference kernel
 * table (the only one a Cortex-M0 has). Under -icount shift=0 virtual time advances exactly 1 ns per
 * executed instruction and the microbit clocks SysTick from its 16 MHz processor clock, so one tick is
 * 62.5 instructions; the firmware first checks that on a loop of known length (calibration line). Each
 * figure is the mean over REPS calls, the timing loop's own cost subtracted. Besides the whole step
 * (lstm_step with its input check), the int8-dynamic step's kernels are timed as engine.c calls them, as
 * tools/cortex_m4/count.c does; an int16x8 model's step (lstm_step_int) and parts by count_int.c. Output:
 * one line per measurement,
 *   count <isa> <dtype> H=<H> <what> <instructions> [<per weight> per weight] */
#include <stdio.h>
#include <string.h>

#include "count_int.h"
#include "count_model.h"
#include "cycles.h"
#include "kernels.h"
#include "lstm_format.h"

#define REPS 32
#define MAX_H 64
/* instructions = ticks * 62.5; kept in thousandths of an instruction (integers: no soft float here) */
#define MILLI_INSNS_PER_TICK 62500u
#define CALIBRATION_ITERATIONS (1u << 20) /* of a 2-instruction loop */

static uint64_t g_overhead; /* thousandths of an instruction per call of an empty body */

/* thousandths of an instruction per call of `body`, averaged over REPS calls, the loop's cost removed */
#define MEASURE(result, body)                                                                                \
    do {                                                                                                     \
        uint64_t t0_ = cycles_now();                                                                         \
        for (int rep_ = 0; rep_ < REPS; rep_++) {                                                            \
            body;                                                                                            \
            __asm__ volatile("" ::: "memory");                                                               \
        }                                                                                                    \
        uint64_t t1_ = cycles_now();                                                                         \
        uint64_t m_ = (t1_ - t0_) * MILLI_INSNS_PER_TICK / REPS;                                             \
        result = m_ > g_overhead ? m_ - g_overhead : 0;                                                      \
    } while (0)

static void spin(uint32_t n) { /* exactly 2 n instructions (subs, bne) */
    __asm__ volatile(".syntax unified\n1:\tsubs %0, %0, #1\n\tbne 1b" : "+l"(n) : : "cc");
}

static void report(const char *isa, const char *dtype, unsigned h, const char *what, uint64_t milli, uint64_t weights) {
    unsigned long insns = (unsigned long)((milli + 500) / 1000);
    if (weights) {
        uint64_t pw = (milli + weights / 2) / weights; /* thousandths per weight */
        printf("count %-12s %-12s H=%-4u %-10s %10lu  %lu.%03lu per weight\n", isa, dtype, h, what, insns,
               (unsigned long)(pw / 1000), (unsigned long)(pw % 1000));
    } else
        printf("count %-12s %-12s H=%-4u %-10s %10lu\n", isa, dtype, h, what, insns);
}

static uint64_t get64le(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* The model descriptor and the state, then (once the step is measured) the int8-dynamic kernels'
 * operands in the state's place: 16 KB of RAM hold the two one after the other, not side by side. An
 * int16x8 model's descriptor, state and operands (count_int.c) in the whole arena. */
static union {
    uint64_t align;
    unsigned char all[11 * 1024];
    struct {
        unsigned char desc[(LSTM_MODEL_MEM_SIZE + 7) / 8 * 8];
        struct {
            int32_t acc[2][4 * MAX_H];
            float gates[4 * MAX_H], g0[4 * MAX_H], bias[4 * MAX_H], sc[4 * MAX_H], c[MAX_H], c0[MAX_H], hv[MAX_H];
            int8_t q[2][MAX_H];
        } k; /* where the state was */
    } f;
} arena;

static int fail(const char *what, lstm_status st) {
    printf("%s: %s\n", what, lstm_status_str(st));
    return 1;
}

static void int8_dynamic_kernels(unsigned H, const char *dtype, uint64_t weights) {
    const lstm_kernels *kt = lstm_kernels_for(LSTM_ISA_REFERENCE);
    int32_t(*acc)[4 * MAX_H] = arena.f.k.acc;
    int8_t(*q)[MAX_H] = arena.f.k.q;
    float *gates = arena.f.k.gates, *g0 = arena.f.k.g0, *bias = arena.f.k.bias, *sc = arena.f.k.sc;
    float *c = arena.f.k.c, *c0 = arena.f.k.c0, *hv = arena.f.k.hv;
    size_t rows = 4 * (size_t)H, g = H / 4, groups = 2 * g;
    for (size_t i = 0; i < rows; i++) bias[i] = 0.01f * (float)(i % 7);
    for (size_t i = 0; i < rows; i++) sc[i] = 0.001f; /* the scales of both parts */
    for (size_t i = 0; i < H; i++) c[i] = 0.1f * (float)(i % 5);
    /* tensor 1 of net_write_q8: the blocked weights */
    const int8_t *w = (const int8_t *)(count_model +
                                       get64le(count_model + LSTM_HDR_SIZE + LSTM_TENSOR_ENTRY_SIZE + LSTM_TENSOR_OFFSET));
    const float *xs = count_inputs;
    uint64_t t, tc;
    float sx = 0, sh = 0;
    MEASURE(t, (sx = kt->quantize(xs, H, q[0], H), sh = kt->quantize(xs + H, H, q[1], H)));
    report("reference", dtype, H, "quantize", t, 0);
    MEASURE(t, (kt->gemv_s8(w, rows, groups, 0, g, q[0], NULL, acc[0]),
                kt->gemv_s8(w, rows, groups, g, groups, q[1], NULL, acc[1])));
    report("reference", dtype, H, "matvec", t, weights);
    MEASURE(t, kt->q8_gates(gates, bias, acc[0], sx, sc, acc[1], sh, sc, rows));
    report("reference", dtype, H, "q8_gates", t, 0);
    /* the cell update on pre-activations spread over [-4, 4] and states over [-2, 2], copied in before
     * each call (the kernel overwrites them), the copies' cost subtracted */
    for (size_t i = 0; i < rows; i++) g0[i] = -4.0f + 8.0f * (float)((i * 37) % 101) / 100.0f;
    for (size_t i = 0; i < H; i++) c0[i] = -2.0f + 4.0f * (float)((i * 53) % 97) / 96.0f;
    MEASURE(tc, (memcpy(gates, g0, rows * sizeof(float)), memcpy(c, c0, H * sizeof(float))));
    MEASURE(t, (memcpy(gates, g0, rows * sizeof(float)), memcpy(c, c0, H * sizeof(float)),
                kt->cell_update(H, gates, c, hv)));
    report("reference", dtype, H, "cell", t > tc ? t - tc : 0, 0);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    cycles_start();
    uint64_t t0 = cycles_now();
    spin(CALIBRATION_ITERATIONS);
    uint64_t t1 = cycles_now();
    /* the expected ticks: 2 * 2^20 / 62.5 = 33554.4 (plus the few instructions around the loop) */
    printf("calibration: %lu instructions in %lu ticks (62.5 instructions per tick expected)\n",
           (unsigned long)(2 * CALIBRATION_ITERATIONS), (unsigned long)(t1 - t0));
    g_overhead = 0;
    uint64_t overhead;
    MEASURE(overhead, (void)0);
    g_overhead = overhead;
    printf("loop overhead %lu instructions (subtracted)\n", (unsigned long)((overhead + 500) / 1000));

    unsigned H = count_hidden;
    if (H > MAX_H) {
        printf("H=%u above this firmware's %u\n", H, MAX_H);
        return 1;
    }
    if (strcmp(count_dtype, "int16x8") == 0)
        return count_int16x8(LSTM_ISA_REFERENCE, count_model, count_model_len, count_inputs, H, arena.all,
                             sizeof arena.all, MILLI_INSNS_PER_TICK, g_overhead, report);
    lstm_model *m;
    lstm_state *s;
    lstm_status st = lstm_model_init(arena.f.desc, sizeof arena.f.desc, count_model, count_model_len, &m);
    if (st != LSTM_OK) return fail("lstm_model_init", st);
    size_t state_room = sizeof arena.all - sizeof arena.f.desc;
    if (lstm_state_size(m) > state_room) {
        printf("the state needs %lu bytes, the firmware has %lu\n", (unsigned long)lstm_state_size(m),
               (unsigned long)state_room);
        return 1;
    }
    if ((st = lstm_model_set_isa(m, LSTM_ISA_REFERENCE)) != LSTM_OK) return fail("lstm_model_set_isa", st);
    if ((st = lstm_state_init(m, arena.all + sizeof arena.f.desc, state_room, &s)) != LSTM_OK) return fail("lstm_state_init", st);
    uint64_t weights = 8u * H * H;
    const float *xs = count_inputs;
    float y[MAX_H];
    for (int i = 0; i < 4; i++) /* a state away from zero */
        if ((st = lstm_step(s, xs + i * H, y)) != LSTM_OK) return fail("lstm_step", st);
    uint64_t t;
    MEASURE(t, lstm_step(s, xs + (rep_ & 3) * H, y));
    report("reference", count_dtype, H, "step", t, weights);
    if (strcmp(count_dtype, "int8-dynamic") == 0) int8_dynamic_kernels(H, count_dtype, weights); /* reuses the state's memory */
    lstm_model_close(m);
    return 0;
}
