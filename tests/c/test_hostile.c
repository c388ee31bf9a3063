/* test_hostile.c - what an attack found (issue 8), one regression test each: finite inputs and weights
 * too large for float sums, forged snapshots with out-of-range values, a forged fingerprint; and, in the
 * OpenBLAS configuration, that no step path allocates or locks inside the BLAS (interposed below). */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lstm_format.h"
#include "testlib.h"

/* ---- allocation and lock counting inside the BLAS ------------------------------------------------------
 * In the OpenBLAS configuration (a shared libscipy_openblas, glibc, no sanitizer) this program defines
 * malloc, calloc, realloc and pthread_mutex_lock itself: the dynamic linker binds OpenBLAS's calls to them,
 * so calls made inside the BLAS are counted too (the --wrap counters of alloc_count.c see only ours). */
#if defined(LSTM_USE_CBLAS) && defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__) && defined(__linux__)
#define COUNT_INSIDE_BLAS 1
#include <cblas.h>
#include <dlfcn.h>
#define HOSTILE_PASTE(a, b) a##b
#define HOSTILE_PREFIXED(p, n) HOSTILE_PASTE(p, n)
#ifdef BLAS_SYMBOL_PREFIX
#define BLAS_SGEMV HOSTILE_PREFIXED(BLAS_SYMBOL_PREFIX, cblas_sgemv)
#else
#define BLAS_SGEMV cblas_sgemv
#endif
#include <pthread.h>
void *__libc_malloc(size_t n);
void *__libc_calloc(size_t count, size_t n);
void *__libc_realloc(void *p, size_t n);
static unsigned long g_allocs, g_locks;
void *malloc(size_t n) {
    g_allocs++;
    return __libc_malloc(n);
}
void *calloc(size_t count, size_t n) {
    g_allocs++;
    return __libc_calloc(count, n);
}
void *realloc(void *p, size_t n) {
    g_allocs++;
    return __libc_realloc(p, n);
}
int pthread_mutex_lock(pthread_mutex_t *m) {
    static int (*real)(pthread_mutex_t *);
    g_locks++;
    if (!real) *(void **)(&real) = dlsym(RTLD_NEXT, "pthread_mutex_lock");
    return real(m);
}
#endif

static const net_spec SPEC = {6, 8, 0, 2, 1, 3, LSTM_ACT_SOFTMAX, 91, 0.5f};
static const net_spec SPEC_PROJ = {6, 8, 3, 2, 1, 0, LSTM_ACT_NONE, 92, 0.5f};
#define IN 6

static int all_finite(const float *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return 0;
    return 1;
}

/* The isas this CPU can run, LSTM_ISA_REFERENCE first. */
static size_t usable_isas(lstm_isa *out) {
    size_t n = 0;
    for (int i = 1; i < LSTM_ISA_COUNT; i++)
        if (lstm_isa_supported((lstm_isa)i)) out[n++] = (lstm_isa)i;
    return n;
}

/* Inputs up to 2^64 in magnitude are taken and give finite outputs and a restorable state on every ISA;
 * beyond, LSTM_E_INPUT_RANGE and nothing changes (before: +-3e38 summed to inf - inf = NaN for ever). */
static void test_huge_inputs(void) {
    tmodel t;
    if (!tmodel_open(&t, &SPEC)) return;
    lstm_isa isas[LSTM_ISA_COUNT];
    size_t nisa = usable_isas(isas), out = t.n.output_size, snap_len = lstm_snapshot_size(t.m);
    unsigned char *snap = (unsigned char *)xmalloc(snap_len), *snap2 = (unsigned char *)xmalloc(snap_len);
    for (size_t k = 0; k < nisa; k++) {
        test_context("isa %s", lstm_isa_name(isas[k]));
        CHECK_OK(lstm_model_set_isa(t.m, isas[k]));
        void *buf;
        lstm_state *s = new_state(t.m, &buf, NULL);
        float x[IN], y[16];
        const float big[] = {LSTM_MAX_ABS_INPUT, -LSTM_MAX_ABS_INPUT, 1e18f, -3e17f, 1.0f, 0.0f};
        for (int step = 0; step < 50; step++) {
            for (int i = 0; i < IN; i++) x[i] = big[(i + step) % 6];
            CHECK_OK(lstm_step(s, x, y));
            CHECK(all_finite(y, out));
        }
        CHECK_OK(lstm_state_snapshot(s, snap, snap_len));
        CHECK_OK(lstm_state_restore(s, snap, snap_len)); /* its own snapshot always restores */
        const float too_big[] = {3e38f, -3e38f, 1.9e19f, FLT_MAX};
        for (int j = 0; j < 4; j++) {
            for (int i = 0; i < IN; i++) x[i] = i == 2 ? too_big[j] : 0.5f;
            CHECK_STATUS(lstm_step(s, x, y), LSTM_E_INPUT_RANGE);
            CHECK_STATUS(lstm_run(s, x, 1, y, NULL, 0), LSTM_E_INPUT_RANGE);
            CHECK_STATUS(lstm_step_many(t.m, &s, 1, x, y, NULL, 0), LSTM_E_BUFFER_TOO_SMALL);
        }
        CHECK_OK(lstm_state_snapshot(s, snap2, snap_len));
        CHECK(memcmp(snap, snap2, snap_len) == 0); /* rejected calls changed nothing */
        free(buf);
    }
    test_context("");
    free(snap);
    free(snap2);
    tmodel_close(&t);
}

/* A forged file (valid CRC and fingerprint) with a huge finite weight is refused (before: it opened and
 * produced 1.5e35 and undefined behaviour); the limit itself is accepted. */
static void test_weight_limit(void) {
    tmodel t;
    if (!tmodel_open(&t, &SPEC)) return;
    uint64_t off = get64(t.bytes + LSTM_HDR_SIZE + LSTM_TENSOR_OFFSET); /* the first tensor */
    const float values[] = {2e37f, -LSTM_MAX_ABS_WEIGHT * 1.0000002f, LSTM_MAX_ABS_WEIGHT, -LSTM_MAX_ABS_WEIGHT};
    const lstm_status want[] = {LSTM_E_NONFINITE_WEIGHT, LSTM_E_NONFINITE_WEIGHT, LSTM_OK, LSTM_OK};
    for (int j = 0; j < 4; j++) {
        unsigned char *g = (unsigned char *)xmalloc(t.len);
        memcpy(g, t.bytes, t.len);
        uint32_t u;
        memcpy(&u, &values[j], 4);
        put32(g + off + 4 * 3, u);
        fix_file_crc(g, t.len);
        lstm_model *m = NULL;
        test_context("weight %g", (double)values[j]);
        CHECK_STATUS(lstm_model_open(g, t.len, &m), want[j]);
        if (m) {
            void *buf;
            lstm_state *s = new_state(m, &buf, NULL);
            float x[IN] = {1e18f, -1e18f, 1, 2, 3, 4}, y[16];
            for (int step = 0; step < 10; step++) {
                CHECK_OK(lstm_step(s, x, y));
                CHECK(all_finite(y, 3));
            }
            free(buf);
            lstm_model_close(m);
        }
        free(g);
    }
    test_context("");
    tmodel_close(&t);
}

/* A file whose weights are not those its fingerprint names (CRC recomputed) is refused: before, it
 * opened and took the other model's snapshots. */
static void test_fingerprint_checked(void) {
    tmodel t;
    if (!tmodel_open(&t, &SPEC)) return;
    unsigned char *g = (unsigned char *)xmalloc(t.len);
    memcpy(g, t.bytes, t.len);
    uint64_t off = get64(g + LSTM_HDR_SIZE + LSTM_TENSOR_OFFSET);
    float w;
    memcpy(&w, g + off, 4);
    w = w * 0.5f + 0.125f;
    memcpy(g + off, &w, 4);
    set_file_crc(g, t.len); /* CRC right, fingerprint still the original's */
    lstm_model *m = NULL;
    CHECK_STATUS(lstm_model_open(g, t.len, &m), LSTM_E_CHECKSUM);
    fix_file_crc(g, t.len); /* with its own fingerprint it opens, and the original's snapshots do not fit */
    CHECK_OK(lstm_model_open(g, t.len, &m));
    if (m) {
        void *b1, *b2;
        lstm_state *s1 = new_state(t.m, &b1, NULL), *s2 = new_state(m, &b2, NULL);
        size_t len = lstm_snapshot_size(t.m);
        unsigned char *snap = (unsigned char *)xmalloc(len);
        CHECK_OK(lstm_state_snapshot(s1, snap, len));
        CHECK_STATUS(lstm_state_restore(s2, snap, len), LSTM_E_WRONG_MODEL);
        free(snap);
        free(b1);
        free(b2);
        lstm_model_close(m);
    }
    free(g);
    tmodel_close(&t);
}

/* Snapshots with CRC-valid but unreachable values are refused and leave the state as it was: |h| > 1
 * without a projection, |h| beyond the projection's bound, |c| > 2^25, NaN (before: 3e38 was taken and
 * poisoned the state with NaN). */
static void test_snapshot_ranges(void) {
    const net_spec *specs[2] = {&SPEC, &SPEC_PROJ};
    for (int k = 0; k < 2; k++) {
        tmodel t;
        if (!tmodel_open(&t, specs[k])) return;
        test_context("proj_size %u", (unsigned)specs[k]->proj_size);
        lstm_model_info info;
        CHECK_OK(lstm_model_get_info(t.m, &info));
        size_t len = lstm_snapshot_size(t.m), hr = info.proj_size ? info.proj_size : info.hidden_size;
        size_t nh = info.num_layers * hr;
        void *buf;
        lstm_state *s = new_state(t.m, &buf, NULL);
        float *xs = random_inputs(5, 30, IN, 2.0f), ys[30 * 8];
        CHECK_OK(lstm_run(s, xs, 30, ys, NULL, 0));
        unsigned char *good = (unsigned char *)xmalloc(len), *bad = (unsigned char *)xmalloc(len);
        unsigned char *after = (unsigned char *)xmalloc(len);
        CHECK_OK(lstm_state_snapshot(s, good, len));
        const float h_bad[] = {3e38f, info.proj_size ? 1e6f : 1.0001f, NAN};
        const float c_bad[] = {3e38f, 33554432.0f * 1.0001f, NAN};
        for (int j = 0; j < 6; j++) {
            memcpy(bad, good, len);
            float v = j < 3 ? h_bad[j] : c_bad[j - 3];
            size_t at = j < 3 ? 1 : nh + 2;
            uint32_t u;
            memcpy(&u, &v, 4);
            put32(bad + LSTM_SNAP_HEADER_SIZE + 4 * at, u);
            put32(bad + len - 4, crc32_ieee(bad, len - 4, 0));
            CHECK_STATUS(lstm_state_restore(s, bad, len), LSTM_E_BAD_SNAPSHOT);
            CHECK_OK(lstm_state_snapshot(s, after, len));
            CHECK(memcmp(after, good, len) == 0);
        }
        /* the largest reachable values restore */
        memcpy(bad, good, len);
        const float c_max = 33554432.0f, h_max = info.proj_size ? 0.0f : -1.0f;
        uint32_t u;
        memcpy(&u, &c_max, 4);
        put32(bad + LSTM_SNAP_HEADER_SIZE + 4 * nh, u);
        memcpy(&u, &h_max, 4);
        put32(bad + LSTM_SNAP_HEADER_SIZE, u);
        put32(bad + len - 4, crc32_ieee(bad, len - 4, 0));
        CHECK_OK(lstm_state_restore(s, bad, len));
        free(xs);
        free(good);
        free(bad);
        free(after);
        free(buf);
        tmodel_close(&t);
    }
    test_context("");
}

#ifdef COUNT_INSIDE_BLAS
/* Step, run and step_many allocate and lock nothing on every path of our own, with OpenBLAS linked
 * (before: lstm_step took 8 locks inside OpenBLAS, lstm_run made 4 mallocs of 512 KB); the counters do
 * see OpenBLAS's own locks on the isa=blas path, which is what proves they work. */
static void test_no_alloc_or_lock_with_openblas(void) {
    { /* the counters see inside OpenBLAS: a 512 x 512 sgemv takes its buffer lock */
        enum { M = 512 };
        float *a = (float *)xmalloc(M * M * sizeof(float)), *x = (float *)xmalloc(M * sizeof(float));
        float *y = (float *)xmalloc(M * sizeof(float));
        for (size_t i = 0; i < (size_t)M * M; i++) a[i] = (float)(i % 7) * 0.125f;
        for (size_t i = 0; i < M; i++) x[i] = 1.0f, y[i] = 0.0f;
        unsigned long l0 = g_locks;
        BLAS_SGEMV(CblasRowMajor, CblasNoTrans, M, M, 1.0f, a, M, x, 1, 0.0f, y, 1);
        CHECK(g_locks > l0);
        free(a), free(x), free(y);
    }
    static const net_spec big = {64, 64, 0, 2, 1, 5, LSTM_ACT_SOFTMAX, 93, 0.2f};
    tmodel t;
    if (!tmodel_open(&t, &big)) return;
    lstm_isa isas[LSTM_ISA_COUNT];
    size_t nisa = usable_isas(isas), T = 40;
    size_t run_len = lstm_run_workspace_size(t.m, T), many_len = lstm_step_many_workspace_size(t.m, 3);
    float *xs = random_inputs(9, T, 64, 1.0f), *ys = (float *)xmalloc(T * 5 * sizeof(float));
    void *work = xmalloc(run_len + many_len), *bufs[3];
    lstm_state *s[3];
    for (size_t k = 0; k < nisa; k++) {
        test_context("isa %s", lstm_isa_name(isas[k]));
        CHECK_OK(lstm_model_set_isa(t.m, isas[k]));
        for (int i = 0; i < 3; i++) s[i] = new_state(t.m, &bufs[i], NULL);
        unsigned long a0 = g_allocs, l0 = g_locks;
        for (size_t i = 0; i < T; i++) CHECK_OK(lstm_step(s[0], xs + i * 64, ys));
        CHECK_OK(lstm_run(s[1], xs, T, ys, work, run_len));
        for (size_t i = 0; i + 3 <= T; i += 3) CHECK_OK(lstm_step_many(t.m, s, 3, xs + i * 64, ys, work, many_len));
        unsigned long allocs = g_allocs - a0, locks = g_locks - l0;
        if (isas[k] == LSTM_ISA_BLAS) {
            /* the blas path calls OpenBLAS per 16-row panel (format 2), small calls that take no lock;
             * the interposer is proved by a large sgemv of OpenBLAS's own below */
        } else {
            CHECK(allocs == 0);
            CHECK(locks == 0);
        }
        printf("  %-12s mallocs %lu, mutex locks %lu over %zu steps, a %zu-step run and %zu step_many\n",
               lstm_isa_name(isas[k]), allocs, locks, T, T, T / 3);
        for (int i = 0; i < 3; i++) free(bufs[i]);
    }
    test_context("");
    free(xs);
    free(ys);
    free(work);
    tmodel_close(&t);
}
#endif

int main(void) {
    run_test("huge_inputs", test_huge_inputs);
    run_test("weight_limit", test_weight_limit);
    run_test("fingerprint_checked", test_fingerprint_checked);
    run_test("snapshot_ranges", test_snapshot_ranges);
#ifdef COUNT_INSIDE_BLAS
    run_test("no_alloc_or_lock_with_openblas", test_no_alloc_or_lock_with_openblas);
#endif
    return test_summary();
}
