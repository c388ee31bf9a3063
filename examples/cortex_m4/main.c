/* main.c - Cortex-M4F firmware (QEMU mps2-an386, semihosting): opens the H = 64 int8-dynamic model from
 * flash (model_data.c, written by `lstm-embed export-c`) into static memory (no malloc), steps it over the
 * inputs of golden.h and compares each output with the value the host computed; then prints the
 * cross-target lines of tests/c/xcheck. Prints the stack lstm_model_init and lstm_step used (measured
 * by painting the stack) and "RESULT PASS" or "RESULT FAIL"; exits 0 on success. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "golden.h"
#include "lstm.h"
#include "model_data.h"
#include "xcheck.h"

#define TOL 1e-5f /* |device - host| allowed, relative to max(1, |host|) */
#define PAINT_BYTES 16384u
#define PAINT 0xC5C5C5C5u

static unsigned char model_mem[LSTM_MODEL_MEM_SIZE];
static unsigned char state_buf[MODEL_DATA_STATE_SIZE];

static float from_bits(unsigned long b) {
    uint32_t u = (uint32_t)b;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void emit(const char *line) { printf("%s\n", line); }

/* Stack measurement: paint the PAINT_BYTES below `top` (main's stack pointer, less the painter's own
 * small frame), call, then find the lowest word that changed: bytes used below main's frame. */
static inline uint32_t *current_sp(void) {
    uint32_t *sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    return sp;
}
static __attribute__((noinline)) void paint_stack(uint32_t *top) {
    uint32_t *p = top - PAINT_BYTES / 4;
    while (p < top - 16) *p++ = PAINT; /* the top 64 bytes hold this function's frame */
}
static __attribute__((noinline)) unsigned stack_used(uint32_t *top) {
    uint32_t *p = top - PAINT_BYTES / 4;
    while (p < top - 16 && *p == PAINT) p++;
    return (unsigned)((char *)top - (char *)p);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    printf("lstm_embed %s on Cortex-M4F: model %u bytes at %p, state %u bytes, descriptor %u bytes\n",
           lstm_version(), (unsigned)MODEL_DATA_LEN, (const void *)model_data, (unsigned)MODEL_DATA_STATE_SIZE,
           (unsigned)LSTM_MODEL_MEM_SIZE);
    lstm_model *m;
    lstm_state *s;
    uint32_t *top = current_sp();
    paint_stack(top);
    lstm_status st = lstm_model_init(model_mem, sizeof model_mem, model_data, MODEL_DATA_LEN, &m);
    unsigned init_stack = stack_used(top);
    if (st != LSTM_OK) {
        printf("lstm_model_init: %s\nRESULT FAIL\n", lstm_status_str(st));
        return 1;
    }
    if ((st = lstm_state_init(m, state_buf, sizeof state_buf, &s)) != LSTM_OK) {
        printf("lstm_state_init: %s\nRESULT FAIL\n", lstm_status_str(st));
        return 1;
    }
    int bad = 0, same = 0;
    float worst = 0;
    unsigned step_stack = 0;
    for (int t = 0; t < GOLDEN_STEPS; t++) {
        float x[GOLDEN_IN], y[GOLDEN_OUT];
        for (int i = 0; i < GOLDEN_IN; i++) x[i] = from_bits(golden_x[t * GOLDEN_IN + i]);
        paint_stack(top);
        st = lstm_step(s, x, y);
        unsigned used = stack_used(top);
        if (used > step_stack) step_stack = used;
        if (st != LSTM_OK) {
            printf("lstm_step %d: %s\nRESULT FAIL\n", t, lstm_status_str(st));
            return 1;
        }
        for (int j = 0; j < GOLDEN_OUT; j++) {
            float want = from_bits(golden_y[t * GOLDEN_OUT + j]);
            float err = fabsf(y[j] - want) / (fabsf(want) > 1.0f ? fabsf(want) : 1.0f);
            if (err > worst) worst = err;
            if (!(err <= TOL)) bad++;
            if (memcmp(&y[j], &want, 4) == 0) same++;
        }
    }
    printf("golden: %d steps x %d outputs, %d bit-identical to the host, max rel error %g, %d above %g\n",
           GOLDEN_STEPS, GOLDEN_OUT, same, (double)worst, bad, (double)TOL);
    printf("stack measured (painted, below main's frame): lstm_model_init %u bytes, lstm_step %u bytes\n", init_stack, step_stack);
    lstm_model_close(m);
    int xerr = xcheck_run(emit);
    printf("RESULT %s\n", bad == 0 && xerr == 0 ? "PASS" : "FAIL");
    return bad == 0 && xerr == 0 ? 0 : 1;
}
