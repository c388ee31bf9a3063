/*
 * bench_a16_kernels.c - CPU time of the int8 x int16 product (gemv_s16: int8-a16 layers) against the
 * int8 x int8 one (gemv_s8: int8-dynamic) of the same kernel table, on the matrices of a 3-layer LSTM step:
 * per layer W = [ROWS, 4 (GX + GH)] in the blocked layout, the x part (groups [0, GX)) and the h part
 * ([GX, GX + GH)) each a call, as the engine makes them. The two are interleaved round after round (CLOCK_THREAD_CPUTIME_ID: time descheduled not counted);
 * prints per SIMD ISA this CPU runs the minimum and the median over the rounds of the CPU nanoseconds per 3-layer pass and
 * the ratios to gemv_s8.
 *
 *   cc -std=c99 -O3 -ffp-contract=off -fno-math-errno -fno-trapping-math -Isrc/lstm_c \
 *      tools/bench_a16_kernels.c src/lstm_c/[a-z]*.c -lm -o /tmp/bench_a16_kernels
 *   /tmp/bench_a16_kernels [ROUNDS REPS ROWS GX GH]     (default 15 2000 256 10 16: H = 64, I = 40)
 */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels.h"

#define LAYERS 3
#define MAX_ROUNDS 1000

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void *xalloc(size_t n) {
    void *p = malloc(n + 64);
    if (!p) exit(1);
    return (void *)(((size_t)p + 63) & ~(size_t)63); /* never freed: the process ends */
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 15, reps = argc > 2 ? atoi(argv[2]) : 2000;
    size_t rows = argc > 3 ? (size_t)atoi(argv[3]) : 256, gx = argc > 4 ? (size_t)atoi(argv[4]) : 10;
    size_t gh = argc > 5 ? (size_t)atoi(argv[5]) : 16, groups = gx + gh, pr = lstm_r16(rows);
    if (rounds < 1 || rounds > MAX_ROUNDS || reps < 1 || rows < 1 || gx < 1 || gh < 1) return 1;
    int8_t *w[LAYERS];
    int32_t *rowsum = (int32_t *)xalloc(2 * rows * sizeof(int32_t));
    unsigned seed = 12345;
    for (int l = 0; l < LAYERS; l++) {
        w[l] = (int8_t *)xalloc(pr * groups * 4);
        memset(w[l], 0, pr * groups * 4);
        for (size_t i = 0; i < rows / 16 * 16 * groups * 4; i++) /* whole panels random, as real weights */
            w[l][i] = (int8_t)((int)((seed = seed * 1103515245u + 12345u) >> 16) % 255 - 127);
    }
    for (size_t r = 0; r < rows; r++) { /* the row sums of layer 0 (the values do not change the time) */
        int32_t sx = 0, sh = 0;
        for (size_t k = 0; k < 4 * groups; k++) {
            int8_t v = w[0][((r / 16) * groups + k / 4) * 64 + (r % 16) * 4 + k % 4];
            if (k < 4 * gx) sx += v; else sh += v;
        }
        rowsum[r] = sx, rowsum[rows + r] = sh;
    }
    int16_t *q16 = (int16_t *)xalloc(4 * groups * sizeof(int16_t));
    int8_t *q8 = (int8_t *)xalloc(4 * groups);
    for (size_t k = 0; k < 4 * groups; k++) {
        q16[k] = (int16_t)((int)((seed = seed * 1103515245u + 12345u) >> 8) % 65535 - 32767);
        q8[k] = (int8_t)(q16[k] / 258);
    }
    int64_t *acc64 = (int64_t *)xalloc(2 * pr * sizeof(int64_t));
    int32_t *acc32 = (int32_t *)xalloc(2 * pr * sizeof(int32_t));
    static double t[2][MAX_ROUNDS];
    static const char *names[2] = {"gemv_s8", "gemv_s16"};
    for (int isa = 0; isa < LSTM_ISA_COUNT; isa++) {
        if (isa == LSTM_ISA_AUTO || isa == LSTM_ISA_REFERENCE || isa == LSTM_ISA_BLAS || !lstm_isa_supported((lstm_isa)isa)) continue;
        const lstm_kernels *k = lstm_kernels_for((lstm_isa)isa);
        for (int r = 0; r < rounds; r++)
            for (int kind = 0; kind < 2; kind++) {
                double t0 = now();
                for (int n = 0; n < reps; n++)
                    for (int l = 0; l < LAYERS; l++) {
                        if (kind == 0) {
                            k->gemv_s8(w[l], rows, groups, 0, gx, q8, rowsum, acc32);
                            k->gemv_s8(w[l], rows, groups, gx, groups, q8, rowsum + rows, acc32 + pr);
                        } else {
                            k->gemv_s16(w[l], rows, groups, 0, gx, q16, acc64);
                            k->gemv_s16(w[l], rows, groups, gx, groups, q16, acc64 + pr);
                        }
                    }
                t[kind][r] = (now() - t0) / reps;
            }
        double lo[2], med[2];
        for (int kind = 0; kind < 2; kind++) {
            qsort(t[kind], (size_t)rounds, sizeof(double), cmp);
            lo[kind] = t[kind][0], med[kind] = t[kind][rounds / 2];
        }
        for (int kind = 0; kind < 2; kind++)
            printf("%-12s rows %zu groups %zu + %zu x %d  %-18s min %9.0f ns  median %9.0f ns  / gemv_s8 %.2fx / %.2fx\n",
                   lstm_isa_name((lstm_isa)isa), rows, gx, gh, LAYERS, names[kind], lo[kind], med[kind],
                   lo[kind] / lo[0], med[kind] / med[0]);
    }
    return 0;
}
