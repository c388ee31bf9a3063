/*
 * bench_floor.c - the C-level floor of the benchmark (tools/bench.py builds and runs it).
 *
 *     bench_floor MODEL_FILE MS_PER_SAMPLE SAMPLES
 *
 * Opens a model file written by bench.py and times, single-threaded, in a plain C loop:
 *   - lstm_step on one stream (the engine without any Python in the way);
 *   - one CBLAS sgemv per layer over the same fp32 weight tensors [4H, in + H] read from the file (the
 *     matrix-vector product every step must do, i.e. the distance to the memory-bandwidth floor).
 * Each measurement is a warm-up, then SAMPLES samples of at least MS_PER_SAMPLE milliseconds; it prints
 * the mean nanoseconds per call of every sample, in the order taken (bench.py pools them over rounds):
 *     step_ns S1 S2 ...
 *     sgemv_ns S1 S2 ...             (omitted when the model has no fp32 weight tensor)
 *     weight_bytes N                 (bytes of the layers' weight tensors, int8 at one byte an element)
 *     blas_core NAME                 (the OpenBLAS kernel set in use)
 * Exit status 0 on success, 1 with a message on stderr otherwise.
 */
#define _DEFAULT_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef __linux__
#include <sys/mman.h>
#endif

#include <cblas.h>

#include "lstm.h"
#include "lstm_format.h"

#ifdef BLAS_SYMBOL_PREFIX
#define FLOOR_PASTE(a, b) a##b
#define FLOOR_PREFIXED(prefix, name) FLOOR_PASTE(prefix, name)
#define FLOOR_BLAS(name) FLOOR_PREFIXED(BLAS_SYMBOL_PREFIX, name)
#else
#define FLOOR_BLAS(name) name
#endif

#define MAX_SAMPLES 1000

/* The kernel set and thread count of OpenBLAS (prefixed like the CBLAS symbols). */
char *FLOOR_BLAS(openblas_get_corename)(void);
void FLOOR_BLAS(openblas_set_num_threads)(int num_threads);

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static uint32_t read_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t read_u64(const unsigned char *p) {
    return (uint64_t)read_u32(p) | (uint64_t)read_u32(p + 4) << 32;
}

/* What one timed call does: a step of the stream, or the sgemvs of every fp32 weight tensor. */
typedef struct {
    lstm_state *state;
    const float *x;
    float *y;
    size_t n_weights;
    const float *w[LSTM_MAX_TENSORS];
    uint32_t rows[LSTM_MAX_TENSORS], cols[LSTM_MAX_TENSORS];
    const float *v; /* sgemv input, long enough for any weight's columns */
    float *out;     /* sgemv output, long enough for any weight's rows */
} job;

static void do_step(job *j) {
    if (lstm_step(j->state, j->x, j->y) != LSTM_OK) {
        fprintf(stderr, "lstm_step failed\n");
        exit(1);
    }
}

static void do_sgemv(job *j) {
    for (size_t k = 0; k < j->n_weights; k++)
        FLOOR_BLAS(cblas_sgemv)(CblasRowMajor, CblasNoTrans, (int)j->rows[k], (int)j->cols[k], 1.0f, j->w[k],
                                (int)j->cols[k], j->v, 1, 0.0f, j->out, 1);
}

/* Warm up for ~50 ms, pick a call count per sample of at least ms_per_sample, print "label s1 s2 ...". */
static void measure(const char *label, void (*fn)(job *), job *j, double ms_per_sample, int samples) {
    long calls = 0;
    double t0 = now_ns();
    while (now_ns() - t0 < 50e6 || calls < 10) {
        fn(j);
        calls++;
    }
    double per_call = (now_ns() - t0) / (double)calls;
    long n = (long)(ms_per_sample * 1e6 / per_call) + 1;
    double t[MAX_SAMPLES];
    for (int s = 0; s < samples; s++) {
        double start = now_ns();
        for (long i = 0; i < n; i++) fn(j);
        t[s] = (now_ns() - start) / (double)n;
    }
    printf("%s", label);
    for (int s = 0; s < samples; s++) printf(" %.2f", t[s]);
    printf("\n");
}

/* Read the whole file into memory aligned to 2 MiB; returns NULL on failure. On Linux the memory is
 * offered for transparent huge pages, as numpy does for the large buffer our Python binding copies the
 * model into: streaming megabytes of weights every step otherwise pays for TLB misses. */
static unsigned char *read_file(const char *path, size_t *len) {
    const size_t huge = 2u << 20;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *data = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        if (size > 0 && fseek(f, 0, SEEK_SET) == 0) {
            size_t alloc = ((size_t)size + huge - 1) / huge * huge;
            data = aligned_alloc(huge, alloc);
#ifdef MADV_HUGEPAGE
            if (data) madvise(data, alloc, MADV_HUGEPAGE);
#endif
            if (data && fread(data, 1, (size_t)size, f) != (size_t)size) {
                free(data);
                data = NULL;
            }
            *len = (size_t)size;
        }
    }
    fclose(f);
    return data;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s MODEL_FILE MS_PER_SAMPLE SAMPLES\n", argv[0]);
        return 1;
    }
    double ms = atof(argv[2]);
    int samples = atoi(argv[3]);
    if (ms <= 0 || samples < 1 || samples > MAX_SAMPLES) {
        fprintf(stderr, "MS_PER_SAMPLE must be > 0 and SAMPLES in 1..%d\n", MAX_SAMPLES);
        return 1;
    }
    size_t len = 0;
    unsigned char *data = read_file(argv[1], &len);
    if (!data) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 1;
    }
    FLOOR_BLAS(openblas_set_num_threads)(1);

    lstm_model *model;
    lstm_status st = lstm_model_open(data, len, &model);
    if (st != LSTM_OK) {
        fprintf(stderr, "cannot open %s: %s\n", argv[1], lstm_status_str(st));
        return 1;
    }
    lstm_model_info info;
    lstm_model_get_info(model, &info);
    size_t state_len = lstm_state_size(model);
    void *state_buf = aligned_alloc(64, (state_len + 63) / 64 * 64);
    job j;
    memset(&j, 0, sizeof j);
    float *x = malloc(sizeof(float) * info.input_size);
    j.y = malloc(sizeof(float) * info.output_size);
    if (!state_buf || !x || !j.y || lstm_state_init(model, state_buf, state_len, &j.state) != LSTM_OK) {
        fprintf(stderr, "cannot create a stream\n");
        return 1;
    }
    srand(1);
    for (uint32_t i = 0; i < info.input_size; i++) x[i] = (float)rand() / (float)RAND_MAX * 2.0f - 1.0f;
    j.x = x;

    /* The layers' weight tensors, straight from the tensor table. */
    uint32_t count = read_u32(data + LSTM_HDR_TENSOR_COUNT);
    uint64_t weight_bytes = 0;
    uint32_t max_rows = 1, max_cols = 1;
    for (uint32_t t = 0; t < count; t++) {
        const unsigned char *e = data + LSTM_HDR_SIZE + (size_t)t * LSTM_TENSOR_ENTRY_SIZE;
        if (read_u32(e + LSTM_TENSOR_ROLE) != LSTM_ROLE_WEIGHT) continue;
        uint32_t rows = read_u32(e + LSTM_TENSOR_ROWS), cols = read_u32(e + LSTM_TENSOR_COLS);
        uint32_t dtype = read_u32(e + LSTM_TENSOR_DTYPE);
        weight_bytes += (uint64_t)rows * cols * (dtype == LSTM_DTYPE_F32 ? 4u : 1u);
        if (dtype != LSTM_DTYPE_F32) continue;
        j.w[j.n_weights] = (const float *)(data + read_u64(e + LSTM_TENSOR_OFFSET));
        j.rows[j.n_weights] = rows;
        j.cols[j.n_weights] = cols;
        j.n_weights++;
        if (rows > max_rows) max_rows = rows;
        if (cols > max_cols) max_cols = cols;
    }
    float *v = malloc(sizeof(float) * max_cols);
    j.out = malloc(sizeof(float) * max_rows);
    if (!v || !j.out) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    for (uint32_t i = 0; i < max_cols; i++) v[i] = (float)rand() / (float)RAND_MAX * 2.0f - 1.0f;
    j.v = v;

    measure("step_ns", do_step, &j, ms, samples);
    if (j.n_weights) measure("sgemv_ns", do_sgemv, &j, ms, samples);
    printf("weight_bytes %llu\n", (unsigned long long)weight_bytes);
    printf("blas_core %s\n", FLOOR_BLAS(openblas_get_corename)());

    free(v);
    free(j.out);
    free(x);
    free(j.y);
    free(state_buf);
    lstm_model_close(model);
    free(data);
    return 0;
}
