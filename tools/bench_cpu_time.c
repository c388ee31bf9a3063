/* bench_cpu_time.c - CPU time (CLOCK_THREAD_CPUTIME_ID, so time the thread spends descheduled on a loaded
 * machine is not counted) per lstm_step, per lstm_run step (64 steps) and per lstm_step_many call (8 streams)
 * of one model file under one ISA; prints "step_min step_median run_min run_median many_min many_median" in ns.
 *
 *     cc -std=c99 -O3 -ffp-contract=off -fno-math-errno -fno-trapping-math -D_GNU_SOURCE -Isrc/lstm_c \
 *        tools/bench_cpu_time.c src/lstm_c/*.c -lm -o bench_cpu_time
 *     ./bench_cpu_time MODEL.lstm ISA_NUMBER SAMPLES        (ISA_NUMBER: lstm_isa, e.g. 2 avx2, 3 avx512_vnni)
 *
 * docs/accuracy.md: two builds (before and after a change) run alternately, median over rounds. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "lstm.h"
static double now(void) { struct timespec t; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return t.tv_sec * 1e9 + t.tv_nsec; }
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }
int main(int argc, char **argv) {
    FILE *f = fopen(argv[1], "rb"); fseek(f, 0, SEEK_END); long n = ftell(f); fseek(f, 0, SEEK_SET);
    /* 64-byte aligned, as Model.from_bytes copies it: unaligned fp32 panels cost the SIMD kernels ~25% */
    void *data = NULL; if (posix_memalign(&data, 64, n) || fread(data, 1, n, f) != (size_t)n) return 1; fclose(f);
    lstm_model *m; if (lstm_model_open(data, n, &m)) return 1;
    lstm_model_set_isa(m, (lstm_isa)atoi(argv[2]));
    int samples = atoi(argv[3]);
    lstm_model_info inf; lstm_model_get_info(m, &inf);
    size_t in = inf.input_size, out = inf.output_size;
    enum { T = 64, NS = 8 };
    float *xs = malloc(T * NS * in * 4), *ys = malloc(T * NS * out * 4);
    for (size_t i = 0; i < T * NS * in; i++) xs[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
    lstm_state *s[NS]; void *buf[NS];
    for (int i = 0; i < NS; i++) { buf[i] = malloc(lstm_state_size(m)); lstm_state_init(m, buf[i], lstm_state_size(m), &s[i]); }
    size_t wr = lstm_run_workspace_size(m, T), wm = lstm_step_many_workspace_size(m, NS);
    void *work = malloc(wr > wm ? wr : wm);
    double st[200], ru[200], ma[200];
    int reps = in >= 512 ? 20 : in >= 256 ? 100 : 1000;
    for (int k = 0; k < samples + 1; k++) {
        double t0 = now();
        for (int r = 0; r < reps; r++) lstm_step(s[0], xs + (r % T) * in, ys);
        double t1 = now();
        lstm_run(s[0], xs, T, ys, work, wr); lstm_run(s[0], xs, T, ys, work, wr);
        double t2 = now();
        for (int r = 0; r < reps / 4 + 1; r++) lstm_step_many(m, s, NS, xs, ys, work, wm);
        double t3 = now();
        if (k) { st[k - 1] = (t1 - t0) / reps; ru[k - 1] = (t2 - t1) / (2 * T); ma[k - 1] = (t3 - t2) / (reps / 4 + 1); }
    }
    qsort(st, samples, 8, cmp); qsort(ru, samples, 8, cmp); qsort(ma, samples, 8, cmp);
    printf("%.1f %.1f %.1f %.1f %.1f %.1f\n", st[0], st[samples / 2], ru[0], ru[samples / 2], ma[0], ma[samples / 2]);
    return 0;
}
