/* bench_amx.c - avx512_vnni against amx_int8 (docs/amx.md), the two tables run alternately round after
 * round; per-call thread CPU time (CLOCK_THREAD_CPUTIME_ID: time descheduled on a shared machine is not
 * counted), the minimum over all rounds and the median of the rounds' medians, in microseconds.
 *
 *   cc -std=c99 -O3 -ffp-contract=off -fno-math-errno -fno-trapping-math -D_GNU_SOURCE -Isrc/lstm_c \
 *      tools/bench_amx.c src/lstm_c/[a-z]*.c -lm -o /tmp/bench_amx
 *   /tmp/bench_amx gemm H N ROUNDS        the batched products alone: gemm_s8 and gemm_s16 of the W_hh part
 *                                         of an LSTM layer with I = H (W = [4H, 2H], columns [H, 2H)), N vectors
 *   /tmp/bench_amx many MODEL N ROUNDS    lstm_step_many over N compact states
 *   /tmp/bench_amx run MODEL T ROUNDS     lstm_run over T steps from a zero state (one pass)
 *
 * Models: e.g. lstm_embed.convert_torch(torch.nn.LSTM(H, H), dtype="int8-dynamic" or "int8-a16"). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels.h"

#define REPS 100 /* timed calls per round */

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec * 1e6 + t.tv_nsec * 1e-3;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* One benchmark: a call to time, its state, and per ISA (0: avx512_vnni, 1: amx_int8) the rounds' results. */
typedef struct bench {
    int (*call)(struct bench *b, int which);
    lstm_model *model[2];
    size_t n;
    /* gemm */
    size_t rows, groups, g0, g1;
    int8_t *w, *q8;
    int16_t *q16;
    int32_t *rowsum, *acc32;
    int64_t *acc64;
    int s16;
    /* models */
    lstm_state **states[2];
    lstm_state *state[2];
    float *xs, *ys;
    void *work;
    size_t work_len;
} bench;

static const lstm_isa isas[2] = {LSTM_ISA_AVX512_VNNI, LSTM_ISA_AMX_INT8};

static int call_gemm(bench *b, int which) {
    const lstm_kernels *k = lstm_kernels_for(isas[which]);
    size_t ldq = 4 * (b->g1 - b->g0);
    if (b->s16)
        k->gemm_s16(b->w, b->rows, b->groups, b->g0, b->g1, b->n, b->q16, ldq, b->acc64, b->rows);
    else
        k->gemm_s8(b->w, b->rows, b->groups, b->g0, b->g1, b->n, b->q8, ldq, b->rowsum, b->acc32, b->rows);
    return 0;
}

static int call_many(bench *b, int which) {
    return lstm_step_many(b->model[which], b->states[which], b->n, b->xs, b->ys, b->work, b->work_len) != LSTM_OK;
}

static int call_run(bench *b, int which) {
    lstm_state *s = b->state[which];
    lstm_state_reset(s);
    return lstm_run(s, b->xs, b->n, b->ys, b->work, b->work_len) != LSTM_OK;
}

/* rounds x (REPS calls of each table, alternately); prints "isa min median" per table */
static int measure(bench *b, int rounds, const char *what) {
    double *med[2], best[2] = {1e300, 1e300}, t[REPS];
    for (int i = 0; i < 2; i++) med[i] = (double *)malloc(rounds * sizeof(double));
    for (int r = 0; r < rounds; r++)
        for (int which = 0; which < 2; which++) {
            if (b->call(b, which)) return 1; /* warm-up */
            for (int k = 0; k < REPS; k++) {
                double t0 = now_us();
                if (b->call(b, which)) return 1;
                t[k] = now_us() - t0;
            }
            qsort(t, REPS, sizeof t[0], cmp);
            if (t[0] < best[which]) best[which] = t[0];
            med[which][r] = t[REPS / 2];
        }
    for (int which = 0; which < 2; which++) {
        qsort(med[which], rounds, sizeof(double), cmp);
        printf("%s %s: min %.2f us, median %.2f us\n", what, lstm_isa_name(isas[which]), best[which],
               med[which][rounds / 2]);
        free(med[which]);
    }
    return 0;
}

static void *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *data = aligned_alloc(64, ((size_t)n + 63) / 64 * 64);
    if (!data || fread(data, 1, (size_t)n, f) != (size_t)n) return NULL;
    fclose(f);
    *len = (size_t)n;
    return data;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s gemm H N ROUNDS | many MODEL N ROUNDS | run MODEL T ROUNDS\n", argv[0]);
        return 2;
    }
    for (int i = 0; i < 2; i++)
        if (!lstm_isa_supported(isas[i])) {
            printf("%s: not supported on this CPU or build\n", lstm_isa_name(isas[i]));
            return 0;
        }
    bench b;
    memset(&b, 0, sizeof b);
    int rounds = atoi(argv[4]);
    b.n = (size_t)atoi(argv[3]);
    char what[64];
    if (strcmp(argv[1], "gemm") == 0) {
        size_t h = (size_t)atoi(argv[2]);
        b.rows = 4 * h, b.groups = 2 * h / 4, b.g0 = h / 4, b.g1 = 2 * h / 4;
        size_t wlen = lstm_r16(b.rows) * b.groups * 4, ldq = 4 * (b.g1 - b.g0);
        b.w = (int8_t *)malloc(wlen), b.q8 = (int8_t *)malloc(b.n * ldq), b.q16 = (int16_t *)malloc(2 * b.n * ldq);
        b.rowsum = (int32_t *)calloc(lstm_r16(b.rows), 4);
        b.acc32 = (int32_t *)malloc(4 * b.n * b.rows), b.acc64 = (int64_t *)malloc(8 * b.n * b.rows);
        for (size_t i = 0; i < wlen; i++) b.w[i] = (int8_t)((i * 7919u) % 255u - 127u);
        for (size_t i = 0; i < b.n * ldq; i++) {
            b.q8[i] = (int8_t)((i * 104729u) % 255u - 127u);
            b.q16[i] = (int16_t)((i * 104729u) % 65535u - 32767u);
        }
        b.call = call_gemm;
        for (b.s16 = 0; b.s16 < 2; b.s16++) {
            snprintf(what, sizeof what, "%s H %lu n %lu", b.s16 ? "gemm_s16" : "gemm_s8", (unsigned long)h,
                     (unsigned long)b.n);
            if (measure(&b, rounds, what)) return 1;
        }
        return 0;
    }
    size_t len;
    void *data = read_file(argv[2], &len);
    if (!data) return 1;
    for (int i = 0; i < 2; i++)
        if (lstm_model_open(data, len, &b.model[i]) || lstm_model_set_isa(b.model[i], isas[i])) return 1;
    lstm_model_info info;
    lstm_model_get_info(b.model[0], &info);
    b.xs = (float *)malloc(b.n * info.input_size * sizeof(float));
    b.ys = (float *)malloc(b.n * info.output_size * sizeof(float));
    for (size_t i = 0; i < b.n * info.input_size; i++) b.xs[i] = (float)((i * 2654435761u) % 1000u) / 500.0f - 1.0f;
    if (strcmp(argv[1], "many") == 0) {
        size_t z = (lstm_compact_state_size(b.model[0]) + 63) / 64 * 64;
        for (int m = 0; m < 2; m++) { /* one set of states per table */
            b.states[m] = (lstm_state **)malloc(b.n * sizeof(lstm_state *));
            for (size_t i = 0; i < b.n; i++)
                if (lstm_compact_state_init(b.model[m], aligned_alloc(64, z), z, &b.states[m][i])) return 1;
        }
        b.work_len = lstm_step_many_workspace_size(b.model[0], b.n);
        b.call = call_many;
    } else {
        size_t z = (lstm_state_size(b.model[0]) + 63) / 64 * 64;
        for (int i = 0; i < 2; i++)
            if (lstm_state_init(b.model[i], aligned_alloc(64, z), z, &b.state[i])) return 1;
        b.work_len = lstm_run_workspace_size(b.model[0], b.n);
        b.call = call_run;
    }
    b.work = aligned_alloc(64, (b.work_len + 63) / 64 * 64);
    snprintf(what, sizeof what, "%s %s %lu", argv[1], argv[2], (unsigned long)b.n);
    return measure(&b, rounds, what);
}
