/*
 * bench_a16.c - CPU time of lstm_step for several model files under several ISAs, interleaved
 * (tools/bench_a16.py builds and runs it).
 *
 *     bench_a16 ROUNDS CALLS ISA[,ISA...] MODEL_FILE...
 *
 * For each round, for each ISA, for each model: CALLS calls of lstm_step on one stream, timed with
 * CLOCK_PROCESS_CPUTIME_ID (time this process ran: on a shared machine it leaves out the time other
 * processes held the CPU, which wall-clock samples do not). Prints, per model and ISA, the minimum and the
 * median over the rounds of the CPU nanoseconds per call:
 *     step_cpu_ns ISA MODEL_INDEX MIN MEDIAN
 */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lstm.h"

#define MAX_MODELS 8
#define MAX_ISAS 8
#define MAX_ROUNDS 1000

static double cpu_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void *load(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    void *buf = malloc((size_t)n + 64), *data = (void *)(((size_t)buf + 63) & ~(size_t)63);
    if (fread(data, 1, (size_t)n, f) != (size_t)n) data = NULL;
    fclose(f);
    *len = (size_t)n;
    return data;
}

static lstm_isa isa_named(const char *name) {
    for (int i = 0; i < LSTM_ISA_COUNT; i++)
        if (strcmp(lstm_isa_name((lstm_isa)i), name) == 0) return (lstm_isa)i;
    return LSTM_ISA_COUNT;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: bench_a16 ROUNDS CALLS ISA[,ISA...] MODEL_FILE...\n");
        return 1;
    }
    int rounds = atoi(argv[1]), calls = atoi(argv[2]), n = argc - 4, ni = 0;
    if (rounds < 1 || rounds > MAX_ROUNDS || calls < 1 || n > MAX_MODELS) return 1;
    lstm_isa isas[MAX_ISAS];
    char names[256];
    snprintf(names, sizeof names, "%s", argv[3]);
    for (char *tok = strtok(names, ","); tok && ni < MAX_ISAS; tok = strtok(NULL, ",")) {
        isas[ni] = isa_named(tok);
        if (isas[ni] == LSTM_ISA_COUNT || !lstm_isa_supported(isas[ni])) {
            fprintf(stderr, "ISA %s not supported here\n", tok);
            return 1;
        }
        ni++;
    }
    lstm_model *m[MAX_MODELS];
    lstm_state *s[MAX_MODELS];
    float x[65536], y[65536];
    static double t[MAX_MODELS][MAX_ISAS][MAX_ROUNDS];
    for (int i = 0; i < n; i++) {
        size_t len;
        void *data = load(argv[4 + i], &len);
        if (!data || lstm_model_open(data, len, &m[i]) != LSTM_OK) {
            fprintf(stderr, "cannot open %s\n", argv[4 + i]);
            return 1;
        }
        size_t sz = lstm_state_size(m[i]);
        if (lstm_state_init(m[i], malloc(sz), sz, &s[i]) != LSTM_OK) return 1;
    }
    lstm_model_info info;
    lstm_model_get_info(m[0], &info);
    if (info.input_size > 65536 || info.output_size > 65536) return 1;
    for (size_t k = 0; k < info.input_size; k++) x[k] = (float)((k * 37) % 17) / 8.0f - 1.0f;
    for (int r = 0; r < rounds; r++)
        for (int j = 0; j < ni; j++)
            for (int i = 0; i < n; i++) {
                lstm_model_set_isa(m[i], isas[j]);
                lstm_step(s[i], x, y); /* warm */
                double t0 = cpu_ns();
                for (int c = 0; c < calls; c++) lstm_step(s[i], x, y);
                t[i][j][r] = (cpu_ns() - t0) / calls;
            }
    for (int j = 0; j < ni; j++)
        for (int i = 0; i < n; i++) {
            qsort(t[i][j], (size_t)rounds, sizeof(double), cmp);
            printf("step_cpu_ns %s %d %.1f %.1f\n", lstm_isa_name(isas[j]), i, t[i][j][0], t[i][j][rounds / 2]);
        }
    return 0;
}
