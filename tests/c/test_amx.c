/* test_amx.c - the AMX table's batched products (gemm_s8 and gemm_s16 of LSTM_ISA_AMX_INT8, s8_amx.c and
 * s16_amx.c) against the reference, bit for bit, over the shapes that exercise their edges (and, with the
 * same checker, every other table's gemm_s8 over the edges of the AVX2 kernel's chunks):
 *  - n = 1 .. 40 vectors: the AVX-512 paths (gemm_s8 at 1, gemm_s16 below 5), whole and partial A tiles
 *    (n % 16), odd block counts;
 *  - rows not a multiple of 16 (the last panel through a buffer: entries past `rows` must stay sentinels);
 *  - column-group ranges [g0, g1) of 1 .. 70 groups: K tails (not a multiple of 16 groups), g0 > 0 (the
 *    h part of a [W_ih | W_hh] matrix), g1 < groups (its x part), g0 == g1;
 *  - extreme values: weights +-127 and -128, activations -128 and 127 (int16: +-32767 and the values
 *    where the split into high and low bytes changes, 0, +-1, +-255, +-256);
 *  - gemm_s16 over more than LSTM_S16_BLOCK_GROUPS groups (several int32 blocks);
 *  - weights and activations that end right before an unreadable page (Linux: mmap), so a tile load past
 *    either array faults (AddressSanitizer does not see tile loads);
 *  - ldq and ldacc larger than the data.
 * On a CPU or build without AMX the checks are skipped (the table is then not selectable: checked). */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE 1 /* mmap's MAP_ANONYMOUS */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "testlib.h"

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

/* n bytes whose end abuts an unreadable page where the platform allows it (else malloc); free with
 * guarded_free(p, n). */
typedef struct guarded {
    unsigned char *data;
    void *map;
    size_t map_len;
} guarded;

static guarded guarded_alloc(size_t n) {
    guarded g = {NULL, NULL, 0};
#if defined(__linux__)
    size_t page = (size_t)sysconf(_SC_PAGESIZE), len = (n + page - 1) / page * page + page;
    void *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map != MAP_FAILED && mprotect((unsigned char *)map + len - page, page, PROT_NONE) == 0) {
        g.map = map;
        g.map_len = len;
        g.data = (unsigned char *)map + len - page - n;
        return g;
    }
#endif
    g.data = (unsigned char *)xmalloc(n ? n : 1);
    return g;
}

static void guarded_free(guarded g) {
#if defined(__linux__)
    if (g.map) {
        munmap(g.map, g.map_len);
        return;
    }
#endif
    free(g.data);
}

/* 0: uniform in [-127, 127]; 1: +-127 only; 2: -128 and 127 only (the int8 extremes) */
static int8_t random_value(rng *r, int kind) {
    uint64_t x = rng_next(r);
    if (kind == 1) return (int8_t)((x & 1) ? 127 : -127);
    if (kind == 2) return (int8_t)((x & 1) ? 127 : -128);
    return (int8_t)((int)(x % 255) - 127);
}

static void check_shape(const lstm_kernels *amx, const lstm_kernels *ref, rng *r, size_t rows, size_t groups,
                        size_t g0, size_t g1, size_t n, int kind) {
    size_t pr = lstm_r16(rows), width = 4 * (g1 - g0), ldq = width + (n % 3) * 4, ldacc = rows + (n % 2) * 5;
    test_context("rows %lu groups %lu [%lu, %lu) n %lu kind %d", (unsigned long)rows, (unsigned long)groups,
                 (unsigned long)g0, (unsigned long)g1, (unsigned long)n, kind);
    guarded w = guarded_alloc(pr * groups * 4), q = guarded_alloc(n * ldq);
    for (size_t i = 0; i < pr * groups * 4; i++) {
        size_t row = 16 * (i / (64 * groups)) + (i % 64) / 4;
        w.data[i] = (unsigned char)(row < rows ? random_value(r, kind) : 0);
    }
    for (size_t i = 0; i < n * ldq; i++) q.data[i] = (unsigned char)random_value(r, kind);
    int32_t *rowsum = (int32_t *)xmalloc(pr * sizeof(int32_t));
    for (size_t row = 0; row < pr; row++) {
        int32_t sum = 0;
        for (size_t g = g0; g < g1; g++)
            for (size_t c = 0; c < 4; c++) sum += (int8_t)w.data[((row / 16) * groups + g) * 64 + (row % 16) * 4 + c];
        rowsum[row] = sum;
    }
    size_t len = n * ldacc;
    int32_t *want = (int32_t *)xmalloc(len * sizeof(int32_t)), *got = (int32_t *)xmalloc(len * sizeof(int32_t));
    for (size_t i = 0; i < len; i++) want[i] = got[i] = -7;
    ref->gemm_s8((const int8_t *)w.data, rows, groups, g0, g1, n, (const int8_t *)q.data, ldq, rowsum, want, ldacc);
    amx->gemm_s8((const int8_t *)w.data, rows, groups, g0, g1, n, (const int8_t *)q.data, ldq, rowsum, got, ldacc);
    CHECK(memcmp(want, got, len * sizeof(int32_t)) == 0);
    /* the reference itself, against a plain sum (so that the comparison above means something) */
    int ok = 1;
    for (size_t v = 0; v < n; v++)
        for (size_t row = 0; row < ldacc; row++) {
            int32_t sum = -7;
            if (row < rows) {
                sum = 0;
                for (size_t k = 0; k < width; k++)
                    sum += (int8_t)w.data[((row / 16) * groups + g0 + k / 4) * 64 + (row % 16) * 4 + k % 4] *
                           (int8_t)q.data[v * ldq + k];
            }
            if (want[v * ldacc + row] != sum) ok = 0;
        }
    CHECK(ok);
    guarded_free(w), guarded_free(q);
    free(rowsum), free(want), free(got);
}

static void test_gemm_s8(void) {
    if (!lstm_isa_supported(LSTM_ISA_AMX_INT8)) {
        printf("  amx_int8 not supported by this build or CPU: skipped\n");
        return;
    }
    const lstm_kernels *amx = lstm_kernels_for(LSTM_ISA_AMX_INT8), *ref = lstm_kernels_for(LSTM_ISA_REFERENCE);
    CHECK(amx != ref);
    rng r = {20261130};
    /* every n with a few shapes: whole tiles, K tail, partial panel, sub-range */
    static const size_t shapes[][4] = {{64, 16, 0, 16}, {52, 21, 0, 21}, {48, 37, 5, 37}, {33, 40, 0, 17},
                                       {1024, 128, 64, 128}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (size_t n = 1; n <= 40; n++)
            check_shape(amx, ref, &r, shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], n, (int)(n % 3));
    /* every K length 1 .. 70 groups and row counts 1 .. 80, at n = 5, 16, 19, 37; g0 > 0 and g1 < groups */
    static const size_t ns[] = {5, 16, 19, 37};
    for (size_t k = 1; k <= 70; k++) {
        size_t rows = 1 + (k * 7) % 80, groups = k + k % 5 + k % 3, g0 = k % 5, n = ns[k % 4];
        check_shape(amx, ref, &r, rows, groups, g0, g0 + k, n, (int)(k % 3));
    }
    /* no columns: all-zero sums */
    check_shape(amx, ref, &r, 40, 8, 3, 3, 20, 0);
    /* every extreme, large n */
    for (int kind = 0; kind < 3; kind++) check_shape(amx, ref, &r, 256, 64, 0, 64, 64, kind);
}

/* 0: uniform in [-32767, 32767]; 1: +-32767 only; 2: the byte-split edges (0, +-1, +-255, +-256, +-32767,
 * -32512 = -127 * 256) */
static int16_t random_value16(rng *r, int kind) {
    static const int16_t edges[] = {0, 1, -1, 255, -255, 256, -256, 32767, -32767, -32512};
    uint64_t x = rng_next(r);
    if (kind == 1) return (int16_t)((x & 1) ? 32767 : -32767);
    if (kind == 2) return edges[x % (sizeof edges / sizeof edges[0])];
    return (int16_t)((int)(x % 65535) - 32767);
}

static void check_shape16(const lstm_kernels *amx, const lstm_kernels *ref, rng *r, size_t rows, size_t groups,
                          size_t g0, size_t g1, size_t n, int kind) {
    size_t pr = lstm_r16(rows), width = 4 * (g1 - g0), ldq = width + (n % 3) * 4, ldacc = rows + (n % 2) * 5;
    test_context("s16 rows %lu groups %lu [%lu, %lu) n %lu kind %d", (unsigned long)rows, (unsigned long)groups,
                 (unsigned long)g0, (unsigned long)g1, (unsigned long)n, kind);
    guarded w = guarded_alloc(pr * groups * 4), q = guarded_alloc(n * ldq * sizeof(int16_t));
    for (size_t i = 0; i < pr * groups * 4; i++) {
        size_t row = 16 * (i / (64 * groups)) + (i % 64) / 4;
        w.data[i] = (unsigned char)(row < rows ? random_value(r, kind) : 0);
    }
    int16_t *qv = (int16_t *)(void *)q.data;
    for (size_t i = 0; i < n * ldq; i++) qv[i] = random_value16(r, kind);
    size_t len = n * ldacc;
    int64_t *want = (int64_t *)xmalloc(len * sizeof(int64_t)), *got = (int64_t *)xmalloc(len * sizeof(int64_t));
    for (size_t i = 0; i < len; i++) want[i] = got[i] = -7;
    ref->gemm_s16((const int8_t *)w.data, rows, groups, g0, g1, n, qv, ldq, want, ldacc);
    amx->gemm_s16((const int8_t *)w.data, rows, groups, g0, g1, n, qv, ldq, got, ldacc);
    CHECK(memcmp(want, got, len * sizeof(int64_t)) == 0);
    int ok = 1; /* the reference against a plain int64 sum */
    for (size_t v = 0; v < n; v++)
        for (size_t row = 0; row < ldacc; row++) {
            int64_t sum = -7;
            if (row < rows) {
                sum = 0;
                for (size_t k = 0; k < width; k++)
                    sum += (int64_t)(int8_t)w.data[((row / 16) * groups + g0 + k / 4) * 64 + (row % 16) * 4 + k % 4] *
                           qv[v * ldq + k];
            }
            if (want[v * ldacc + row] != sum) ok = 0;
        }
    CHECK(ok);
    guarded_free(w), guarded_free(q);
    free(want), free(got);
}

static void test_gemm_s16(void) {
    if (!lstm_isa_supported(LSTM_ISA_AMX_INT8)) {
        printf("  amx_int8 not supported by this build or CPU: skipped\n");
        return;
    }
    const lstm_kernels *amx = lstm_kernels_for(LSTM_ISA_AMX_INT8), *ref = lstm_kernels_for(LSTM_ISA_REFERENCE);
    rng r = {777};
    static const size_t shapes[][4] = {{64, 16, 0, 16}, {52, 21, 0, 21}, {48, 37, 5, 37}, {33, 40, 0, 17},
                                       {80, 300, 10, 290}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (size_t n = 1; n <= 40; n++)
            check_shape16(amx, ref, &r, shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], n, (int)(n % 3));
    static const size_t ns[] = {2, 16, 19, 37};
    for (size_t k = 1; k <= 140; k += (k < 20 ? 1 : 7)) { /* past one block of LSTM_S16_BLOCK_GROUPS too */
        size_t rows = 1 + (k * 7) % 80, groups = k + k % 5 + k % 3, g0 = k % 5, n = ns[k % 4];
        check_shape16(amx, ref, &r, rows, groups, g0, g0 + k, n, (int)(k % 3));
    }
    check_shape16(amx, ref, &r, 40, 8, 3, 3, 20, 0);
    for (int kind = 0; kind < 3; kind++) check_shape16(amx, ref, &r, 256, 260, 0, 260, 64, kind);
}

/* The table is listed, named and chosen first where the CPU has it; avx2_vnni (the last ISA) comes before
 * avx2 and after the AVX-512 ones. */
static void test_dispatch(void) {
    CHECK(strcmp(lstm_isa_name(LSTM_ISA_AMX_INT8), "amx_int8") == 0);
    CHECK(strcmp(lstm_isa_name(LSTM_ISA_AVX2_VNNI), "avx2_vnni") == 0);
    CHECK(LSTM_ISA_COUNT == LSTM_ISA_AVX2_VNNI + 1);
    if (lstm_isa_supported(LSTM_ISA_AMX_INT8)) {
        CHECK(lstm_isa_supported(LSTM_ISA_AVX512_VNNI));
        CHECK(lstm_isa_best() == LSTM_ISA_AMX_INT8);
    } else {
        CHECK(lstm_isa_best() != LSTM_ISA_AMX_INT8);
    }
    if (lstm_isa_supported(LSTM_ISA_AVX2_VNNI)) {
        CHECK(lstm_isa_supported(LSTM_ISA_AVX2));
        CHECK(lstm_isa_best() != LSTM_ISA_AVX2);
        if (!lstm_isa_supported(LSTM_ISA_AVX512_VNNI)) CHECK(lstm_isa_best() == LSTM_ISA_AVX2_VNNI);
    }
}

/* Every other table's gemm_s8 against the reference on the shapes that cross the edges of the AVX2,
 * AVX-VNNI and AVX-512 kernels: activations converted on the stack in chunks of vectors (AVX2: 8192 int16s in
 * tiles of 2 vectors with GCC, 3 with clang: 16 or 15 vectors of 512 columns, 64 or 63 of 128, 2 or 0 of
 * 2800; AVX-VNNI: 16 KB of biased bytes, multiples of 6 vectors, 30 of 512 columns, 18 of 700; AVX-512:
 * multiples of 8 vectors, 32 of 512 columns, 16 of 700), the tile remainders (AVX2 1 and 2 vectors; AVX-VNNI
 * 1-5 after tiles of 6, and rows of a panel's second half that do not exist; AVX-512 4, 2, 1 after tiles of 8,
 * and a last odd panel), and rows wider than a chunk of a tile holds (AVX2: 2800 columns with clang, 4400
 * with GCC; AVX-VNNI: 2800 columns; AVX-512: 2112 columns): the kernels that convert per use. */
static void test_gemm_s8_every_table(void) {
    rng r = {91};
    const lstm_kernels *ref = lstm_kernels_for(LSTM_ISA_REFERENCE);
    for (int isa = 1; isa < LSTM_ISA_COUNT; isa++) {
        if (isa == LSTM_ISA_REFERENCE || !lstm_isa_supported((lstm_isa)isa)) continue;
        const lstm_kernels *k = lstm_kernels_for((lstm_isa)isa);
        static const size_t ns[] = {1, 2, 3, 4, 14, 15, 16, 17, 31, 64, 65};
        for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
            check_shape(k, ref, &r, 64, 128, 0, 128, ns[i], (int)(i % 3));
            check_shape(k, ref, &r, 40, 160, 32, 160, ns[i], (int)((i + 1) % 3));
        }
        check_shape(k, ref, &r, 16, 32, 0, 32, 64, 0);
        check_shape(k, ref, &r, 20, 700, 0, 700, 7, 1);
        check_shape(k, ref, &r, 20, 1100, 0, 1100, 5, 0);
        check_shape(k, ref, &r, 17, 700, 3, 690, 4, 0);
        check_shape(k, ref, &r, 40, 128, 0, 128, 71, 1);
        check_shape(k, ref, &r, 48, 175, 0, 175, 33, 2);
        check_shape(k, ref, &r, 20, 528, 0, 528, 9, 0);
        check_shape(k, ref, &r, 5, 64, 0, 64, 13, 1);
    }
    test_context("");
}

int main(void) {
    run_test("amx dispatch", test_dispatch);
    run_test("every table's gemm_s8 against the reference", test_gemm_s8_every_table);
    run_test("amx gemm_s8 against the reference", test_gemm_s8);
    run_test("amx gemm_s16 against the reference", test_gemm_s16);
    return test_summary();
}
