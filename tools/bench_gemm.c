/* bench_gemm.c - the batched products against the same ISA's matrix-vector kernel run vector by vector
 * (issue 11): gemm_s8 (int8 x int8) and gemm_f32 (int8 weights x float activations) of every x86 table this
 * CPU runs, W = [4H, 2H] (an LSTM layer with I = H), n vectors. Prints per-call thread CPU times (the best
 * of many repetitions: the least disturbed by other load on a shared machine) and the ratio by-vectors /
 * batched. Checks on the way
 * that both give the same bits. For scale, the table's fp32 products on the same shapes (f32_gemv vector by
 * vector, f32_gemm batched, over packed panels; same bits checked too): the float layer the int8 ones
 * replace, with its rate in GMAC/s. First it measures this core's peaks (12 independent chains of vfmadd231ps
 * ymm and zmm, vpdpbusd zmm, and ymm with AVX-VNNI) so the rates can be read as fractions of what the core
 * can do.
 *
 *   cc -std=c99 -O2 -ffp-contract=off -Isrc/lstm_c tools/bench_gemm.c src/lstm_c/[a-z]*.c -lm -o /tmp/bench_gemm
 *   /tmp/bench_gemm [n]            (default n = 64; H = 64 and 256) */
#define _POSIX_C_SOURCE 200112L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels.h"
#ifdef LSTM_HAVE_X86_KERNELS
#include "kernels_x86.h"
#endif

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); /* this thread's CPU time: time descheduled not counted */
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static unsigned long long seed = 88172645463325252ULL;
static unsigned rnd(void) {
    seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
    return (unsigned)(seed >> 32);
}

typedef void (*gemv_s8_fn)(const int8_t *, size_t, size_t, size_t, size_t, const int8_t *, const int32_t *, int32_t *);
typedef void (*gemv_f32_fn)(const int8_t *, size_t, size_t, size_t, size_t, const float *, const float *, float *);

/* best time of `reps` rounds of `inner` calls, per call */
#define TIME_BEST(reps, inner, call, out)                                                                    \
    do {                                                                                                     \
        double best_ = 1e30;                                                                                 \
        for (int r_ = 0; r_ < (reps); r_++) {                                                                \
            double t0_ = now();                                                                              \
            for (int k_ = 0; k_ < (inner); k_++) { call; }                                                   \
            double dt_ = (now() - t0_) / (inner);                                                            \
            if (dt_ < best_) best_ = dt_;                                                                    \
        }                                                                                                    \
        out = best_;                                                                                         \
    } while (0)

#ifdef LSTM_HAVE_X86_KERNELS
#include <immintrin.h>
/* Peak multiply-accumulates per second of one instruction form: 12 independent accumulator chains (more than
 * latency x ports), 20 M rounds. */
#define PEAK(NAME, TARGET, TYPE, INIT, OP, MACS)                                                              \
    __attribute__((target(TARGET))) static double NAME(void) {                                               \
        TYPE a[12], b = INIT, c = INIT;                                                                      \
        for (int i = 0; i < 12; i++) a[i] = INIT;                                                            \
        long rounds = 20000000;                                                                              \
        double t0 = now();                                                                                   \
        for (long k = 0; k < rounds; k++) {                                                                  \
            _Pragma("GCC unroll 12") for (int i = 0; i < 12; i++) a[i] = OP;                                 \
            __asm__ volatile("" : "+v"(b), "+v"(c));                                                         \
        }                                                                                                    \
        double dt = now() - t0;                                                                              \
        for (int i = 1; i < 12; i++) __asm__ volatile("" : : "v"(a[i]));                                     \
        __asm__ volatile("" : : "v"(a[0]));                                                                  \
        return 12.0 * rounds * (MACS) / dt;                                                                  \
    }
PEAK(peak_fma_ymm, "avx2,fma", __m256, _mm256_set1_ps(1.0f), _mm256_fmadd_ps(a[i], b, c), 8)
PEAK(peak_fma_zmm, "avx512f", __m512, _mm512_set1_ps(1.0f), _mm512_fmadd_ps(a[i], b, c), 16)
PEAK(peak_vnni_zmm, "avx512f,avx512vnni", __m512i, _mm512_set1_epi32(1), _mm512_dpbusd_epi32(a[i], b, c), 64)
#ifdef LSTM_HAVE_AVX_VNNI_KERNELS
PEAK(peak_vnni_ymm, "avx2,avxvnni", __m256i, _mm256_set1_epi32(1), _mm256_dpbusd_avx_epi32(a[i], b, c), 32)
#endif
#endif

/* 64-byte-aligned memory (posix_memalign: C11's aligned_alloc wants a multiple of 64 as size). Unaligned fp32
 * panels cost the batched fp32 kernels ~25% here (every 64-byte load splits two cache lines). */
static void *aligned64(size_t bytes) {
    void *p = NULL;
    return posix_memalign(&p, 64, bytes) == 0 ? p : NULL;
}

int main(int argc, char **argv) {
    size_t n = argc > 1 ? (size_t)atoi(argv[1]) : 64;
    static const size_t hs[] = {64, 256};
    static const struct {
        lstm_isa isa;
        gemv_s8_fn gemv_s8;
        gemv_f32_fn gemv_f32;
    } isas[] = {
#ifdef LSTM_HAVE_X86_KERNELS
        {LSTM_ISA_AVX2, lstm_s8_gemv_avx2, lstm_s8_gemv_f32_avx2},
        {LSTM_ISA_AVX512_VNNI, lstm_s8_gemv_avx512, lstm_s8_gemv_f32_avx512},
#endif
#ifdef LSTM_HAVE_AVX_VNNI_KERNELS
        {LSTM_ISA_AVX2_VNNI, lstm_s8_gemv_avx2_vnni, lstm_s8_gemv_f32_avx2},
#endif
        {LSTM_ISA_REFERENCE, lstm_s8_gemv_ref, lstm_s8_gemv_f32_ref},
    };
    int bad = 0;
#ifdef LSTM_HAVE_X86_KERNELS
    if (lstm_isa_supported(LSTM_ISA_AVX2)) printf("peak: fma ymm %.1f GMAC/s", 1e-9 * peak_fma_ymm());
    if (lstm_isa_supported(LSTM_ISA_AVX512_VNNI))
        printf(", fma zmm %.1f GMAC/s, vpdpbusd zmm %.1f GMAC/s", 1e-9 * peak_fma_zmm(), 1e-9 * peak_vnni_zmm());
#ifdef LSTM_HAVE_AVX_VNNI_KERNELS
    if (lstm_isa_supported(LSTM_ISA_AVX2_VNNI)) printf(", vpdpbusd ymm %.1f GMAC/s", 1e-9 * peak_vnni_ymm());
#endif
    printf("\n");
#endif
    printf("%-12s %4s %4s %-9s %12s %12s %7s\n", "isa", "H", "n", "kernel", "by-vectors", "batched", "ratio");
    for (size_t hi = 0; hi < sizeof hs / sizeof hs[0]; hi++) {
        size_t H = hs[hi], rows = 4 * H, groups = 2 * H / 4, cols = 4 * groups;
        int8_t *w = malloc(lstm_r16(rows) * cols), *q = malloc(n * cols);
        float *x = malloc(n * cols * sizeof(float)), *scale = malloc(rows * sizeof(float));
        int32_t *rowsum = calloc(rows, sizeof(int32_t)), *a = malloc(n * rows * 4), *b = malloc(n * rows * 4);
        float *ya = malloc(n * rows * sizeof(float)), *yb = malloc(n * rows * sizeof(float));
        float *wf = aligned64(lstm_r16(rows) * cols * sizeof(float)); /* packed panels, 64-byte aligned as a
                                                                         model opened from Python is */
        for (size_t i = 0; i < lstm_r16(rows) * cols; i++) wf[i] = (float)((int)(rnd() % 255) - 127) / 127.0f;
        for (size_t i = 0; i < lstm_r16(rows) * cols; i++) w[i] = (int8_t)((int)(rnd() % 255) - 127);
        for (size_t i = 0; i < n * cols; i++) q[i] = (int8_t)((int)(rnd() % 255) - 127);
        for (size_t i = 0; i < n * cols; i++) x[i] = (float)((int)(rnd() % 2001) - 1000) / 1000.0f;
        for (size_t i = 0; i < rows; i++) scale[i] = 0.01f;
        int inner = H == 64 ? 20 : 2;
        for (size_t s = 0; s < sizeof isas / sizeof isas[0]; s++) {
            if (!lstm_isa_supported(isas[s].isa)) continue;
            const lstm_kernels *k = lstm_kernels_for(isas[s].isa);
            double t1, t2;
            TIME_BEST(41, inner, lstm_s8_gemm_by_vectors(isas[s].gemv_s8, w, rows, groups, 0, groups, n, q, cols, rowsum, a, rows), t1);
            TIME_BEST(41, inner, k->gemm_s8(w, rows, groups, 0, groups, n, q, cols, rowsum, b, rows), t2);
            bad |= memcmp(a, b, n * rows * 4) != 0;
            printf("%-12s %4zu %4zu %-9s %10.1fus %10.1fus %6.2fx  (batched: %.1f GMAC/s)\n", lstm_isa_name(isas[s].isa),
                   H, n, "gemm_s8", 1e6 * t1, 1e6 * t2, t1 / t2, (double)rows * cols * n / t2 * 1e-9);
            memset(ya, 0, n * rows * sizeof(float));
            memset(yb, 0, n * rows * sizeof(float));
            lstm_s8_gemm_f32_by_vectors(isas[s].gemv_f32, w, rows, groups, 0, groups, n, x, cols, scale, ya, rows);
            k->gemm_f32(w, rows, groups, 0, groups, n, x, cols, scale, yb, rows);
            bad |= memcmp(ya, yb, n * rows * sizeof(float)) != 0;
            TIME_BEST(41, inner, lstm_s8_gemm_f32_by_vectors(isas[s].gemv_f32, w, rows, groups, 0, groups, n, x, cols, scale, ya, rows), t1);
            TIME_BEST(41, inner, k->gemm_f32(w, rows, groups, 0, groups, n, x, cols, scale, yb, rows), t2);
            printf("%-12s %4zu %4zu %-9s %10.1fus %10.1fus %6.2fx\n", lstm_isa_name(isas[s].isa), H, n, "gemm_f32",
                   1e6 * t1, 1e6 * t2, t1 / t2);
            memset(ya, 0, n * rows * sizeof(float));
            memset(yb, 0, n * rows * sizeof(float));
            for (size_t i = 0; i < n; i++) k->f32_gemv(wf, rows, cols, 0, cols, x + i * cols, ya + i * rows);
            k->f32_gemm(wf, rows, cols, 0, cols, n, x, cols, yb, rows);
            bad |= memcmp(ya, yb, n * rows * sizeof(float)) != 0;
            TIME_BEST(15, inner, for (size_t i = 0; i < n; i++) k->f32_gemv(wf, rows, cols, 0, cols, x + i * cols, ya + i * rows), t1);
            TIME_BEST(15, inner, k->f32_gemm(wf, rows, cols, 0, cols, n, x, cols, yb, rows), t2);
            printf("%-12s %4zu %4zu %-9s %10.1fus %10.1fus %6.2fx  (batched: %.1f GMAC/s)\n", lstm_isa_name(isas[s].isa),
                   H, n, "fp32", 1e6 * t1, 1e6 * t2, t1 / t2, (double)rows * cols * n / t2 * 1e-9);
        }
        free(w), free(q), free(x), free(scale), free(rowsum), free(a), free(b), free(ya), free(yb), free(wf);
    }
    if (bad) printf("MISMATCH between by-vectors and batched results\n");
    return bad;
}
