/*
 * bench_floor.c - the C-level floor of the benchmark (tools/bench.py builds and runs it).
 *
 *     bench_floor MODEL_FILE MS_PER_SAMPLE SAMPLES [ISA ...]
 *     bench_floor --read BYTES MS_PER_SAMPLE SAMPLES
 *
 * The first form opens a model file written by bench.py and times, single-threaded, in a plain C loop:
 *   - lstm_step on one stream (the engine without any Python in the way), once with the kernels of each
 *     ISA named ("reference", "avx2", "avx512_vnni", "blas", ... as lstm_isa_name spells them; none
 *     named: the one lstm_model_open picks);
 *   - one CBLAS sgemv per layer over the same fp32 weight bytes, as a row-major [4H, in + H] matrix (the
 *     matrix-vector product every step must do).
 * It prints the mean nanoseconds per call of every sample, in the order taken (bench.py pools them over
 * rounds):
 *     step_ns ISA S1 S2 ...          (one line per ISA)
 *     sgemv_ns S1 S2 ...             (omitted when the model has no fp32 weight tensor)
 *     weight_bytes N                 (bytes of the layers' weight tensors as stored: what a step reads)
 *     blas_core NAME                 (the OpenBLAS kernel set in use)
 *
 * The second form measures the single-thread read bandwidth over one buffer of BYTES bytes (rounded up
 * to 512), read again and again, with the widest loads of each width this CPU has: it prints
 *     read_ns BITS S1 S2 ...         (nanoseconds per pass over the buffer; BITS = 512, 256, 128 or 64)
 * A buffer that fits a cache level is read from that level once the first pass has brought it in, so
 * BYTES picks the level (L1, L2, L3, DRAM); BYTES = the weight bytes of a model gives the floor of a step
 * that reads those weights once: BYTES / bandwidth. The loads are XORed into 8 independent accumulators
 * (no dependency chain, no arithmetic limit), so the loop runs at what the load ports and the cache or
 * memory deliver.
 *
 * Each measurement is a warm-up, then SAMPLES samples of at least MS_PER_SAMPLE milliseconds.
 * Exit status 0 on success, 1 with a message on stderr otherwise.
 */
#define _DEFAULT_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef __linux__
#include <sys/mman.h>
#endif
#if defined(__x86_64__) /* SSE2 is baseline there; AVX2 and AVX-512 loads are picked at run time */
#include <immintrin.h>
#define FLOOR_X86 1
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
    const unsigned char *buf; /* --read: the buffer and its size (a multiple of 512) */
    size_t buf_len;
} job;

/* --read: where each pass stores the XOR of what it read, so that the loads cannot be optimised away. */
static volatile uint64_t read_sink;

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

/* ---- read bandwidth: one pass over j->buf per call, XOR of every word into 8 accumulators ---------- */

#ifndef FLOOR_X86
static void read64(job *j) {
    const uint64_t *p = (const uint64_t *)j->buf;
    size_t n = j->buf_len / 8;
    uint64_t a[8] = {0};
    for (size_t i = 0; i < n; i += 8)
        for (int k = 0; k < 8; k++) a[k] ^= p[i + k];
    read_sink = a[0] ^ a[1] ^ a[2] ^ a[3] ^ a[4] ^ a[5] ^ a[6] ^ a[7];
}
#else
static void read128(job *j) {
    const unsigned char *p = j->buf;
    __m128i a0 = _mm_setzero_si128(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    for (size_t i = 0; i < j->buf_len; i += 128) {
        a0 = _mm_xor_si128(a0, _mm_load_si128((const __m128i *)(p + i)));
        a1 = _mm_xor_si128(a1, _mm_load_si128((const __m128i *)(p + i + 16)));
        a2 = _mm_xor_si128(a2, _mm_load_si128((const __m128i *)(p + i + 32)));
        a3 = _mm_xor_si128(a3, _mm_load_si128((const __m128i *)(p + i + 48)));
        a4 = _mm_xor_si128(a4, _mm_load_si128((const __m128i *)(p + i + 64)));
        a5 = _mm_xor_si128(a5, _mm_load_si128((const __m128i *)(p + i + 80)));
        a6 = _mm_xor_si128(a6, _mm_load_si128((const __m128i *)(p + i + 96)));
        a7 = _mm_xor_si128(a7, _mm_load_si128((const __m128i *)(p + i + 112)));
    }
    __m128i a = _mm_xor_si128(_mm_xor_si128(_mm_xor_si128(a0, a1), _mm_xor_si128(a2, a3)),
                              _mm_xor_si128(_mm_xor_si128(a4, a5), _mm_xor_si128(a6, a7)));
    uint64_t v[2];
    _mm_storeu_si128((__m128i *)v, a);
    read_sink = v[0] ^ v[1];
}

__attribute__((target("avx2"))) static void read256(job *j) {
    const unsigned char *p = j->buf;
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    for (size_t i = 0; i < j->buf_len; i += 256) {
        a0 = _mm256_xor_si256(a0, _mm256_load_si256((const __m256i *)(p + i)));
        a1 = _mm256_xor_si256(a1, _mm256_load_si256((const __m256i *)(p + i + 32)));
        a2 = _mm256_xor_si256(a2, _mm256_load_si256((const __m256i *)(p + i + 64)));
        a3 = _mm256_xor_si256(a3, _mm256_load_si256((const __m256i *)(p + i + 96)));
        a4 = _mm256_xor_si256(a4, _mm256_load_si256((const __m256i *)(p + i + 128)));
        a5 = _mm256_xor_si256(a5, _mm256_load_si256((const __m256i *)(p + i + 160)));
        a6 = _mm256_xor_si256(a6, _mm256_load_si256((const __m256i *)(p + i + 192)));
        a7 = _mm256_xor_si256(a7, _mm256_load_si256((const __m256i *)(p + i + 224)));
    }
    __m256i a = _mm256_xor_si256(_mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3)),
                                 _mm256_xor_si256(_mm256_xor_si256(a4, a5), _mm256_xor_si256(a6, a7)));
    uint64_t v[4];
    _mm256_storeu_si256((__m256i *)v, a);
    read_sink = v[0] ^ v[1] ^ v[2] ^ v[3];
}

__attribute__((target("avx512f"))) static void read512(job *j) {
    const unsigned char *p = j->buf;
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    for (size_t i = 0; i < j->buf_len; i += 512) {
        a0 = _mm512_xor_si512(a0, _mm512_load_si512((const void *)(p + i)));
        a1 = _mm512_xor_si512(a1, _mm512_load_si512((const void *)(p + i + 64)));
        a2 = _mm512_xor_si512(a2, _mm512_load_si512((const void *)(p + i + 128)));
        a3 = _mm512_xor_si512(a3, _mm512_load_si512((const void *)(p + i + 192)));
        a4 = _mm512_xor_si512(a4, _mm512_load_si512((const void *)(p + i + 256)));
        a5 = _mm512_xor_si512(a5, _mm512_load_si512((const void *)(p + i + 320)));
        a6 = _mm512_xor_si512(a6, _mm512_load_si512((const void *)(p + i + 384)));
        a7 = _mm512_xor_si512(a7, _mm512_load_si512((const void *)(p + i + 448)));
    }
    __m512i a = _mm512_xor_si512(_mm512_xor_si512(_mm512_xor_si512(a0, a1), _mm512_xor_si512(a2, a3)),
                                 _mm512_xor_si512(_mm512_xor_si512(a4, a5), _mm512_xor_si512(a6, a7)));
    uint64_t v[8];
    _mm512_storeu_si512((void *)v, a);
    read_sink = v[0] ^ v[1] ^ v[2] ^ v[3] ^ v[4] ^ v[5] ^ v[6] ^ v[7];
}
#endif

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

/* `size` bytes aligned to 2 MiB (NULL on failure). On Linux the memory is offered for transparent huge
 * pages, as numpy does for the large buffer our Python binding copies the model into: streaming megabytes
 * of weights every step otherwise pays for TLB misses. posix_memalign, not C11's aligned_alloc: the
 * program is built with the extension's -std=c99. */
static unsigned char *alloc_huge(size_t size) {
    const size_t huge = 2u << 20;
    size_t alloc = (size + huge - 1) / huge * huge;
    void *data = NULL;
    if (alloc == 0 || posix_memalign(&data, huge, alloc) != 0) return NULL;
#ifdef MADV_HUGEPAGE
    madvise(data, alloc, MADV_HUGEPAGE);
#endif
    return data;
}

/* Read the whole file into memory from alloc_huge; returns NULL on failure. */
static unsigned char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *data = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        if (size > 0 && fseek(f, 0, SEEK_SET) == 0) {
            data = alloc_huge((size_t)size);
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

/* --read BYTES MS SAMPLES: the read bandwidth over one buffer, with each load width this CPU has. */
static int read_main(const char *bytes_arg, double ms, int samples) {
    char *end;
    unsigned long long bytes = strtoull(bytes_arg, &end, 10);
    if (*end || bytes == 0 || bytes > (1ull << 36)) {
        fprintf(stderr, "BYTES must be an integer in 1..2^36, got %s\n", bytes_arg);
        return 1;
    }
    job j;
    memset(&j, 0, sizeof j);
    j.buf_len = (size_t)((bytes + 511) / 512 * 512);
    unsigned char *buf = alloc_huge(j.buf_len);
    if (!buf) {
        fprintf(stderr, "cannot allocate %zu bytes\n", j.buf_len);
        return 1;
    }
    for (size_t i = 0; i < j.buf_len; i++) buf[i] = (unsigned char)(i * 131u + 7u);
    j.buf = buf;
#ifdef FLOOR_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) measure("read_ns 512", read512, &j, ms, samples);
    if (__builtin_cpu_supports("avx2")) measure("read_ns 256", read256, &j, ms, samples);
    measure("read_ns 128", read128, &j, ms, samples);
#else
    measure("read_ns 64", read64, &j, ms, samples);
#endif
    free(buf);
    return 0;
}

/* The lstm_isa whose lstm_isa_name is `name`, or -1. */
static int isa_by_name(const char *name) {
    for (int i = 1; i < LSTM_ISA_COUNT; i++)
        if (strcmp(lstm_isa_name((lstm_isa)i), name) == 0) return i;
    return -1;
}

int main(int argc, char **argv) {
    if (argc == 5 && strcmp(argv[1], "--read") == 0) {
        double ms = atof(argv[3]);
        int samples = atoi(argv[4]);
        if (ms <= 0 || samples < 1 || samples > MAX_SAMPLES) {
            fprintf(stderr, "MS_PER_SAMPLE must be > 0 and SAMPLES in 1..%d\n", MAX_SAMPLES);
            return 1;
        }
        return read_main(argv[2], ms, samples);
    }
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL_FILE MS_PER_SAMPLE SAMPLES [ISA ...]\n"
                        "       %s --read BYTES MS_PER_SAMPLE SAMPLES\n", argv[0], argv[0]);
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
    void *state_buf = NULL;
    if (posix_memalign(&state_buf, 64, (state_len + 63) / 64 * 64) != 0) state_buf = NULL;
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
        /* I8_BLOCKED stores r16(rows) x cols bytes, F32_PANELS r16(rows) x cols floats */
        weight_bytes += dtype == LSTM_DTYPE_I8_BLOCKED   ? (uint64_t)(rows + 15) / 16 * 16 * cols
                        : dtype == LSTM_DTYPE_F32_PANELS ? (uint64_t)(rows + 15) / 16 * 16 * cols * 4u
                                                         : (uint64_t)rows * cols * 4u;
        /* the sgemv comparison: a plain row-major CBLAS sgemv of the same shape over the same bytes (the
         * packed panels read as a row-major matrix: the same amount of memory, another order) */
        if (dtype != LSTM_DTYPE_F32 && dtype != LSTM_DTYPE_F32_PANELS) continue;
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

    /* the ISAs named on the command line, checked before anything is timed; none: the one open picked */
    int isas[LSTM_ISA_COUNT], n_isas = 0;
    for (int a = 4; a < argc; a++) {
        int isa = isa_by_name(argv[a]);
        if (isa < 0 || !lstm_isa_supported((lstm_isa)isa)) {
            fprintf(stderr, "ISA %s is unknown or not supported here\n", argv[a]);
            return 1;
        }
        if (n_isas == LSTM_ISA_COUNT) {
            fprintf(stderr, "too many ISAs\n");
            return 1;
        }
        isas[n_isas++] = isa;
    }
    if (n_isas == 0) isas[n_isas++] = (int)info.isa;
    for (int k = 0; k < n_isas; k++) {
        char label[64];
        st = lstm_model_set_isa(model, (lstm_isa)isas[k]);
        if (st == LSTM_OK && lstm_state_size(model) > state_len) { /* scratch may depend on the kernels */
            free(state_buf);
            state_len = lstm_state_size(model);
            if (posix_memalign(&state_buf, 64, (state_len + 63) / 64 * 64) != 0) {
                fprintf(stderr, "out of memory\n");
                return 1;
            }
        }
        if (st == LSTM_OK) st = lstm_state_init(model, state_buf, state_len, &j.state);
        if (st != LSTM_OK) {
            fprintf(stderr, "cannot use ISA %s: %s\n", lstm_isa_name((lstm_isa)isas[k]), lstm_status_str(st));
            return 1;
        }
        snprintf(label, sizeof label, "step_ns %s", lstm_isa_name((lstm_isa)isas[k]));
        measure(label, do_step, &j, ms, samples);
    }
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
