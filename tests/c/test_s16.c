/* test_s16.c - the int8 x int16 kernels of int8-a16 layers (kernels.h: gemv_s16, gemm_s16, quantize16,
 * q16_gates) on every table this build and CPU run:
 *  - sums equal an independent plain int64 loop exactly, for random and extreme matrices, partial panels,
 *    column ranges [g0, g1) crossing the int32 block boundary (LSTM_S16_BLOCK_GROUPS), several vectors;
 *    gemm_s16 writes only rows < rows (sentinels past them stay);
 *  - activations also among the byte-split kernel's edges (-32768, -256, -1, 255, 256, ...); one whole
 *    int32 block at the extremes (|sum| = 127 * 32768 * 512, just under 2^31);
 *  - the overflow bound: max-magnitude weights (+-127) and activations (+-32767) at the largest column count
 *    a valid model can have (a bidirectional layer's input 2 * 65535 -> 131072 columns) give the exact
 *    sum (about 5.5e11, 2^39: far past int32) on every ISA;
 *  - quantize16 against an independent float computation (scale, round half to even, range, padding,
 *    zero and tiny vectors), bit for bit on every ISA;
 *  - q16_gates: the same bits on every ISA as the formula written out here;
 *  - on ARMv6-M (Cortex-M0), the Thumb-1 panel kernel called directly as the int16x8 layer does: 0 groups
 *    (all sums 0, and it returns), 1 to 128 groups, int16 inputs down to -32768 at the layer's widest part
 *    (|sum| = 127 * 32768 * 512 = 2^31 - 2^24, in int32), sums written to out[0..15] only. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels_arm.h"
#include "testlib.h"

static const lstm_isa isas[] = {LSTM_ISA_REFERENCE, LSTM_ISA_AVX2, LSTM_ISA_AVX512_VNNI, LSTM_ISA_NEON,
                                LSTM_ISA_NEON_DOT, LSTM_ISA_CORTEX_M_DSP, LSTM_ISA_BLAS,
                                    LSTM_ISA_AMX_INT8, LSTM_ISA_AVX2_VNNI};
#define N_ISAS (sizeof isas / sizeof isas[0])

/* Element (r, k) of a blocked matrix of `groups` column groups. */
static size_t at(size_t r, size_t k, size_t groups) { return ((r / 16) * groups + k / 4) * 64 + (r % 16) * 4 + k % 4; }

/* kind 0: random in [-127, 127]; 1: +-127; 2: all +127; 3: all -127. Rows past `rows` zero. */
static int8_t *make_w(rng *r, size_t rows, size_t groups, int kind) {
    size_t n = lstm_r16(rows) * groups * 4;
    int8_t *w = (int8_t *)xmalloc(n);
    memset(w, 0, n);
    for (size_t row = 0; row < rows; row++)
        for (size_t k = 0; k < 4 * groups; k++) {
            int v = kind == 2 ? 127 : kind == 3 ? -127 : kind == 1 ? ((rng_next(r) & 1) ? 127 : -127)
                                                                   : (int)(rng_next(r) % 255) - 127;
            w[at(row, k, groups)] = (int8_t)v;
        }
    return w;
}

/* The byte-split kernels' edges (q = 256 hi + lo, s16_avx512.c): hi = -128, -1, 0, 127 with lo = 0, 255. */
static const int16_t edges[] = {-32768, -32767, -256, -255, -1, 0, 1, 255, 256, 32512, 32767, -129};
#define N_EDGES (sizeof edges / sizeof edges[0])

/* kind 0: random in [-32767, 32767]; 1: +-32767; 2: all +32767; 3: all -32767; 4: random among `edges`
 * (-32768 included: int16x8 inputs reach it). */
static int16_t *make_q(rng *r, size_t n, int kind) {
    int16_t *q = (int16_t *)xmalloc(n * sizeof(int16_t));
    for (size_t i = 0; i < n; i++)
        q[i] = (int16_t)(kind == 4 ? edges[rng_next(r) % N_EDGES]
                         : kind == 2 ? 32767 : kind == 3 ? -32767 : kind == 1 ? ((rng_next(r) & 1) ? 32767 : -32767)
                                                                              : (int)(rng_next(r) % 65535) - 32767);
    return q;
}


/* The independent sums: one int64 accumulation per row, column by column. */
static void plain_sums(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, const int16_t *q,
                       int64_t *out) {
    for (size_t r = 0; r < rows; r++) {
        int64_t s = 0;
        for (size_t k = 4 * g0; k < 4 * g1; k++) s += (int64_t)w[at(r, k, groups)] * q[k - 4 * g0];
        out[r] = s;
    }
}

static void test_sums_match_plain_loop(void) {
    /* groups past 128 cross the int32 block boundary; rows leave partial panels */
    static const size_t shapes[][2] = {{16, 1}, {52, 7}, {64, 16}, {33, 5}, {128, 129}, {8, 3}, {200, 70},
                                       {80, 257}, {17, 300}, {1024, 74}};
    rng r = {777};
    for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++)
        for (int kind = 0; kind < 5; kind++) { /* weights of kind 4: random, as kind 0 */
            size_t rows = shapes[sh][0], groups = shapes[sh][1], pr = lstm_r16(rows);
            size_t g0 = groups > 2 ? rng_next(&r) % (groups / 2) : 0, g1 = groups - (groups > 3 ? rng_next(&r) % 2 : 0);
            size_t width = 4 * (g1 - g0), nv = 5, ldq = width + 4, ldacc = rows + 3;
            int8_t *w = make_w(&r, rows, groups, kind == 4 ? 0 : kind);
            int16_t *q = make_q(&r, nv * ldq, kind);
            int64_t *want = (int64_t *)xmalloc(nv * ldacc * sizeof(int64_t));
            int64_t *got = (int64_t *)xmalloc((nv * ldacc + pr) * sizeof(int64_t));
            for (size_t i = 0; i < nv * ldacc; i++) want[i] = -7;
            for (size_t v = 0; v < nv; v++) plain_sums(w, rows, groups, g0, g1, q + v * ldq, want + v * ldacc);
            for (size_t s = 0; s < N_ISAS; s++) {
                if (!lstm_isa_supported(isas[s])) continue;
                const lstm_kernels *k = lstm_kernels_for(isas[s]);
                test_context("%s rows %lu groups %lu [%lu, %lu) kind %d", lstm_isa_name(isas[s]), (unsigned long)rows,
                             (unsigned long)groups, (unsigned long)g0, (unsigned long)g1, kind);
                k->gemv_s16(w, rows, groups, g0, g1, q, got); /* room for r16(rows) */
                CHECK(memcmp(got, want, rows * sizeof(int64_t)) == 0);
                for (size_t n = 1; n <= nv; n++) {
                    for (size_t i = 0; i < nv * ldacc; i++) got[i] = -7;
                    k->gemm_s16(w, rows, groups, g0, g1, n, q, ldq, got, ldacc);
                    CHECK(memcmp(got, want, n * ldacc * sizeof(int64_t)) == 0); /* sentinels past rows kept */
                    for (size_t i = n * ldacc; i < nv * ldacc; i++) CHECK(got[i] == -7);
                }
            }
            free(w), free(q), free(want), free(got);
        }
    test_context("");
}

/* One whole int32 block (LSTM_S16_BLOCK_GROUPS groups, 512 columns) at the extremes: weights all +127 or
 * all -127, activations all -32768, +32767, -256 or 255, so |sum| reaches 127 * 32768 * 512 = 2 130 706 432,
 * just under 2^31 (the byte-split kernel combines 256 hi + lo in int32 per block), 4 vectors at once. */
static void test_block_extremes(void) {
    const size_t groups = LSTM_S16_BLOCK_GROUPS, cols = 4 * groups, rows = 20;
    static const int16_t qs[] = {-32768, 32767, -256, 255};
    rng r = {99};
    for (int wk = 2; wk <= 3; wk++)
        for (size_t qi = 0; qi < sizeof qs / sizeof qs[0]; qi++) {
            int8_t *w = make_w(&r, rows, groups, wk);
            int16_t *q = (int16_t *)xmalloc(4 * cols * sizeof(int16_t));
            for (size_t k = 0; k < 4 * cols; k++) q[k] = qs[qi];
            int64_t want[4 * 20], got[4 * 32];
            for (size_t v = 0; v < 4; v++) plain_sums(w, rows, groups, 0, groups, q + v * cols, want + v * rows);
            CHECK(want[0] == (int64_t)(wk == 2 ? 127 : -127) * qs[qi] * (int64_t)cols);
            for (size_t s = 0; s < N_ISAS; s++) {
                if (!lstm_isa_supported(isas[s])) continue;
                const lstm_kernels *k = lstm_kernels_for(isas[s]);
                test_context("%s, weights %d, q %d", lstm_isa_name(isas[s]), wk == 2 ? 127 : -127, qs[qi]);
                k->gemv_s16(w, rows, groups, 0, groups, q, got);
                CHECK(memcmp(got, want, rows * sizeof(int64_t)) == 0);
                k->gemm_s16(w, rows, groups, 0, groups, 4, q, cols, got, rows);
                CHECK(memcmp(got, want, 4 * rows * sizeof(int64_t)) == 0);
            }
            free(w), free(q);
        }
    test_context("");
}

/* The largest column count of a valid model: a bidirectional layer's input, 2 * Hr with Hr <= 65535
 * (hidden <= LSTM_MAX_DIM = 65536, proj < hidden), padded to r4: 131072 columns = 32768 groups. */
static void test_overflow_bound(void) {
    const size_t groups = 2 * 65536 / 4, cols = 4 * groups;
    static const size_t row_counts[] = {16, 5};
    rng r = {4242};
    for (size_t rc = 0; rc < 2; rc++)
        for (int kind = 2; kind <= 4; kind++) { /* 2: all +127, 3: all -127 (against +32767); 4: signs agree */
            size_t rows = row_counts[rc];
            int8_t *w = make_w(&r, rows, groups, kind == 4 ? 1 : kind);
            int16_t *q = make_q(&r, cols * 2, 2);
            if (kind == 4) /* q = 32767 * sign(w) on row 0, -32767 * sign(w) on the second vector */
                for (size_t k = 0; k < cols; k++) {
                    int s = w[at(0, k, groups)] > 0 ? 1 : -1;
                    q[k] = (int16_t)(32767 * s);
                    q[cols + k] = (int16_t)(-32767 * s);
                }
            int64_t *want = (int64_t *)xmalloc(2 * rows * sizeof(int64_t)), *got = (int64_t *)xmalloc(2 * 16 * sizeof(int64_t));
            plain_sums(w, rows, groups, 0, groups, q, want);
            plain_sums(w, rows, groups, 0, groups, q + cols, want + rows);
            const int64_t extreme = (int64_t)127 * 32767 * (int64_t)cols; /* 545460846592: about 2^39 */
            CHECK(want[0] == (kind == 3 ? -extreme : extreme));
            if (kind == 4) CHECK(want[rows] == -extreme);
            for (size_t s = 0; s < N_ISAS; s++) {
                if (!lstm_isa_supported(isas[s])) continue;
                const lstm_kernels *k = lstm_kernels_for(isas[s]);
                test_context("%s, %lu rows, kind %d", lstm_isa_name(isas[s]), (unsigned long)rows, kind);
                k->gemv_s16(w, rows, groups, 0, groups, q, got);
                CHECK(memcmp(got, want, rows * sizeof(int64_t)) == 0);
                k->gemm_s16(w, rows, groups, 0, groups, 2, q, cols, got, rows);
                CHECK(memcmp(got, want, 2 * rows * sizeof(int64_t)) == 0);
            }
            free(w), free(q), free(want), free(got);
        }
    /* one int32 block at its limit: 512 columns of 127 x 32767 = 2130641408, the largest block sum */
    CHECK((int64_t)127 * 32767 * 4 * LSTM_S16_BLOCK_GROUPS <= 2147483647);
    test_context("");
}

/* quantize16 as specified, written out independently: inv = 32767 / amax in float, q = v * inv rounded to
 * float then to the nearest integer, ties to even (rintf in the default rounding mode). */
static float plain_quantize16(const float *v, size_t n, int16_t *q) {
    float amax = 0.0f;
    for (size_t i = 0; i < n; i++) amax = fabsf(v[i]) > amax ? fabsf(v[i]) : amax;
    if (amax < 7.8886091e-31f) {
        for (size_t i = 0; i < n; i++) q[i] = 0;
        return 0.0f;
    }
    volatile float inv = 32767.0f / amax;
    for (size_t i = 0; i < n; i++) {
        volatile float p = v[i] * inv;
        q[i] = (int16_t)rintf(p);
    }
    volatile float scale = amax / 32767.0f;
    return scale;
}

static void test_quantize16(void) {
    rng r = {99};
    static const size_t sizes[] = {1, 3, 4, 7, 16, 33, 256, 1000};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++)
        for (int kind = 0; kind < 5; kind++) {
            size_t n = sizes[si], padded = lstm_r4(n) + 4;
            float *v = random_floats(&r, n, kind == 1 ? 1e-30f : kind == 2 ? 3e9f : 2.0f);
            if (kind == 3) for (size_t i = 0; i < n; i++) v[i] = 0.0f;
            if (kind == 4) /* exact ties: amax 32767 makes inv 1, so v + 0.5 rounds to even */
                for (size_t i = 0; i < n; i++) v[i] = i == 0 ? -32767.0f : (float)((int)(rng_next(&r) % 2001) - 1000) + 0.5f;
            int16_t *want = (int16_t *)xmalloc(padded * sizeof(int16_t)), *got = (int16_t *)xmalloc(padded * sizeof(int16_t));
            memset(want, 0, padded * sizeof(int16_t));
            float ws = plain_quantize16(v, n, want);
            int max_q = 0;
            for (size_t i = 0; i < n; i++) max_q = abs(want[i]) > max_q ? abs(want[i]) : max_q;
            CHECK(max_q <= 32767 && (kind == 3 || kind == 1 ? max_q == 0 || max_q == 32767 : max_q == 32767));
            if (kind == 4) CHECK(want[1] % 2 == 0); /* a tie went to even */
            for (size_t s = 0; s < N_ISAS; s++) {
                if (!lstm_isa_supported(isas[s])) continue;
                test_context("%s n %lu kind %d", lstm_isa_name(isas[s]), (unsigned long)n, kind);
                for (size_t i = 0; i < padded; i++) got[i] = 12345;
                float gs = lstm_kernels_for(isas[s])->quantize16(v, n, got, padded);
                CHECK(memcmp(&gs, &ws, sizeof gs) == 0);
                CHECK(memcmp(got, want, padded * sizeof(int16_t)) == 0); /* padding zeroed */
            }
            free(v), free(want), free(got);
        }
    test_context("");
}

static void test_q16_gates(void) {
    rng r = {5};
    const size_t n = 203;
    float *bias = random_floats(&r, n, 1.0f), *sx = random_floats(&r, n, 0.02f), *sh = random_floats(&r, n, 0.02f);
    int64_t *ax = (int64_t *)xmalloc(n * sizeof(int64_t)), *ah = (int64_t *)xmalloc(n * sizeof(int64_t));
    for (size_t i = 0; i < n; i++) { /* up to about 2^49, odd values that need rounding to float */
        ax[i] = (int64_t)(rng_next(&r) >> 15) * ((rng_next(&r) & 1) ? 1 : -1) | 1;
        ah[i] = (int64_t)(rng_next(&r) % 4161409) * 512 - 1065320448;
    }
    const float scale_x = 3.1e-5f, scale_h = 1.0f / 32767.0f;
    float *want = (float *)xmalloc(n * sizeof(float)), *got = (float *)xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        volatile float fx = (float)ax[i], fh = (float)ah[i], cx = scale_x * sx[i], ch = scale_h * sh[i];
        volatile float px = fx * cx, ph = fh * ch, t = bias[i] + px;
        want[i] = t + ph;
    }
    for (size_t s = 0; s < N_ISAS; s++) {
        if (!lstm_isa_supported(isas[s])) continue;
        test_context("%s", lstm_isa_name(isas[s]));
        lstm_kernels_for(isas[s])->q16_gates(got, bias, ax, scale_x, sx, ah, scale_h, sh, n);
        CHECK(memcmp(got, want, n * sizeof(float)) == 0);
    }
    test_context("");
    free(bias), free(sx), free(sh), free(ax), free(ah), free(want), free(got);
}

#ifdef LSTM_HAVE_ARMV6M_KERNELS
static void test_panel_armv6m(void) {
    static const uint32_t counts[] = {0, 1, 2, 7, 128};
    rng r = {4242};
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++)
        for (int kind = 0; kind < 4; kind++) {
            uint32_t ng = counts[c];
            size_t groups = ng ? ng : 1;
            int8_t *w = make_w(&r, 16, groups, kind);
            int16_t *q = make_q(&r, 4 * groups, kind);
            if (kind == 3) /* -127 weights times -32768: the largest sum an int16x8 layer can have */
                for (size_t i = 0; i < 4 * groups; i++) q[i] = -32768;
            int64_t want[16];
            int32_t got[18];
            plain_sums(w, 16, groups, 0, ng, q, want); /* 0 groups: 0 */
            for (size_t i = 0; i < 18; i++) got[i] = -7;
            lstm_s16_panel_armv6m(w, q, ng, got + 1);
            test_context("groups %lu kind %d", (unsigned long)ng, kind);
            int same = got[0] == -7 && got[17] == -7;
            for (size_t i = 0; i < 16; i++) same &= got[i + 1] == want[i];
            CHECK(same);
            if (kind == 3 && ng == 128) CHECK(want[0] == 127LL * 32768 * 512);
            free(w);
            free(q);
        }
    test_context("");
}
#endif

int main(void) {
    run_test("sums_match_plain_loop", test_sums_match_plain_loop);
    run_test("block_extremes", test_block_extremes);
    run_test("overflow_bound", test_overflow_bound);
    run_test("quantize16", test_quantize16);
    run_test("q16_gates", test_q16_gates);
#ifdef LSTM_HAVE_ARMV6M_KERNELS
    run_test("panel_armv6m", test_panel_armv6m);
#endif
    return test_summary();
}
