/* bench_elementwise.c - CPU time (CLOCK_THREAD_CPUTIME_ID) of one cell update at hidden size H: the float
 * kernel (cell_update: quantised layers) and the precise one of fp32 layers (cell_update_f32), for the
 * AVX-512 and AVX2 tables; best of 20 x 2000 calls, with the gate pre-activations spread over [-4, 4)
 * (docs/accuracy.md, "Precise elementwise"). x86-64 with AVX-512 only.
 *
 *     cc -std=c99 -O3 -ffp-contract=off -fno-math-errno -fno-trapping-math -D_GNU_SOURCE -Isrc/lstm_c \
 *        tools/bench_elementwise.c src/lstm_c/elementwise_x86.c src/lstm_c/cell_f32_x86.c -o bench_elementwise
 *     ./bench_elementwise 64 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels_x86.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

typedef void (*cell_fn)(size_t, float *, float *, float *);

int main(int argc, char **argv) {
    size_t H = argc > 1 ? (size_t)atoi(argv[1]) : 64;
    if (H == 0 || H > 4096) return 1;
    float *g0 = malloc(16 * H), *g = malloc(16 * H), *c = malloc(4 * H), *h = malloc(4 * H);
    for (size_t i = 0; i < 4 * H; i++) g0[i] = (float)((i * 2654435761u) % 1000) / 125.0f - 4.0f;
    for (size_t i = 0; i < H; i++) c[i] = 0.5f;
    cell_fn f[4] = {lstm_cell_update_avx512, lstm_cell_update_f32_avx512, lstm_cell_update_avx2,
                    lstm_cell_update_f32_avx2};
    const char *name[4] = {"avx512 float", "avx512 precise", "avx2 float", "avx2 precise"};
    for (int k = 0; k < 4; k++) {
        double best = 1e30;
        for (int r = 0; r < 20; r++) {
            double t0 = now();
            for (int it = 0; it < 2000; it++) {
                memcpy(g, g0, 16 * H);
                f[k](H, g, c, h);
                memcpy(c, h, 4 * H); /* c stays in [-1, 1] */
            }
            double t = (now() - t0) / 2000;
            best = t < best ? t : best;
        }
        printf("H=%zu %-15s %8.1f ns (%.2f ns per unit)\n", H, name[k], best, best / (double)H);
    }
    free(g0), free(g), free(c), free(h);
    return 0;
}
