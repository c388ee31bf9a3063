/* test_f32_panels.c - the fp32 products over packed weight panels (issue 11), on every table this build
 * and CPU support:
 *  - f32_gemv equals, bit for bit, the two-level blocked sum of kernels.h computed here in plain C (blocks
 *    of LSTM_F32_BLOCK columns, each one chain in k order from 0, summed per superblock of LSTM_F32_SUPER
 *    blocks, each superblock added to y): a rounded multiply then a
 *    rounded add for the "mul+add" tables, fmaf for the "fma" tables;
 *  - f32_gemm equals n f32_gemv calls bit for bit, for partial panels, column ranges [k0, k1) and any n,
 *    and never writes past `rows`;
 *  - f32_step_cell (where a table has it) equals f32_gemv, f32_gemv, cell_update_f32 bit for bit;
 *  - fp32 models: lstm_run equals T lstm_step calls and lstm_step_many equals each stream stepped alone,
 *    bit for bit, on every ISA of our own (blas, BLAS's own orders: within 1e-5); the "fma" tables give
 *    each other's bits.
 * Runs natively on x86-64 and under qemu on ARM (tools/arm_check.sh, .ci/cross.sh). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "kernels_arm.h"
#include "testlib.h"

static const lstm_isa all_isas[] = {LSTM_ISA_REFERENCE, LSTM_ISA_AVX2, LSTM_ISA_AVX512_VNNI, LSTM_ISA_NEON,
                                    LSTM_ISA_NEON_DOT, LSTM_ISA_CORTEX_M_DSP, LSTM_ISA_BLAS,
                                    LSTM_ISA_AMX_INT8, LSTM_ISA_AVX2_VNNI};
#define N_ISAS (sizeof all_isas / sizeof all_isas[0])

enum family { MUL_ADD, FMA, OWN_ORDER };

/* Which order a table's fp32 kernels follow (kernels.h). */
static enum family family_of(lstm_isa isa) {
    switch (isa) {
    case LSTM_ISA_AVX2: case LSTM_ISA_AVX2_VNNI: case LSTM_ISA_AVX512_VNNI: case LSTM_ISA_AMX_INT8: return FMA;
    case LSTM_ISA_NEON: case LSTM_ISA_NEON_DOT:
#if defined(__aarch64__)
        return FMA;
#else
        return MUL_ADD; /* 32-bit NEON: VMLA (and flush-to-zero: the data below has no subnormals) */
#endif
    case LSTM_ISA_CORTEX_M_DSP:
#ifdef LSTM_HAVE_CORTEX_M_FPU_KERNELS
        return FMA;
#else
        return MUL_ADD;
#endif
    case LSTM_ISA_BLAS: return OWN_ORDER;
    default: return MUL_ADD;
    }
}

/* A packed [rows, cols] matrix of the row-major a (padding rows zero). */
static float *pack(const float *a, size_t rows, size_t cols) {
    size_t n = lstm_r16(rows) * cols;
    float *p = (float *)xmalloc(n * sizeof(float));
    memset(p, 0, n * sizeof(float));
    for (size_t r = 0; r < rows; r++)
        for (size_t k = 0; k < cols; k++) p[panel_index(r, k, cols)] = a[r * cols + k];
    return p;
}

/* The order of kernels.h for one output, written out: blocks of LSTM_F32_BLOCK columns from k0, each one
 * chain from 0; the blocks of each superblock (LSTM_F32_SUPER blocks from k0) summed from 0; then
 * y = y + the superblock's sum. volatile keeps the compiler from fusing (the build passes
 * -ffp-contract=off too) and rounds each step to float on x87. */
static float chain(enum family f, float y, const float *row, size_t k0, size_t k1, const float *x) {
    for (size_t sb = k0; sb < k1; sb += LSTM_F32_BLOCK * LSTM_F32_SUPER) {
        volatile float sup = 0.0f;
        for (size_t kb = sb; kb < k1 && kb < sb + LSTM_F32_BLOCK * LSTM_F32_SUPER; kb += LSTM_F32_BLOCK) {
            volatile float acc = 0.0f;
            for (size_t k = kb; k < k1 && k < kb + LSTM_F32_BLOCK; k++) {
                if (f == FMA) {
                    acc = fmaf(row[k], x[k - k0], acc);
                } else {
                    volatile float p = row[k] * x[k - k0];
                    acc = acc + p;
                }
            }
            sup = sup + acc;
        }
        volatile float s = y + sup;
        y = s;
    }
    return y;
}

static void test_kernels(void) {
    static const size_t shapes[][2] = {{16, 1}, {4, 9}, {52, 7}, {64, 16}, {33, 5}, {200, 70}, {100, 3}, {300, 21}, {64, 600}, {33, 300}};
    rng r = {777};
    for (size_t i = 0; i < N_ISAS; i++) {
        lstm_isa isa = all_isas[i];
        if (!lstm_isa_supported(isa)) continue;
        const lstm_kernels *kt = lstm_kernels_for(isa);
        enum family fam = family_of(isa);
        for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++) {
            size_t rows = shapes[sh][0], cols = shapes[sh][1];
            size_t k0 = cols > 2 ? 1 + rng_next(&r) % (cols / 2) : 0, k1 = cols - (cols > 4 ? 1 : 0);
            test_context("%s rows %lu cols %lu [%lu, %lu)", lstm_isa_name(isa), (unsigned long)rows, (unsigned long)cols,
                         (unsigned long)k0, (unsigned long)k1);
            float *a = random_floats(&r, rows * cols, 1.0f), *p = pack(a, rows, cols);
            enum { NV = 9, GUARD = 5 };
            size_t ldx = cols + 3, ldy = rows + GUARD;
            float *x = random_floats(&r, NV * ldx, 2.0f), *y0 = random_floats(&r, NV * ldy, 1.0f);
            float *y1 = (float *)xmalloc(NV * ldy * sizeof(float)), *y2 = (float *)xmalloc(NV * ldy * sizeof(float));
            /* gemv against the chain, for every vector */
            memcpy(y1, y0, NV * ldy * sizeof(float));
            int exact = 1, close = 1;
            for (size_t v = 0; v < NV; v++) {
                kt->f32_gemv(p, rows, cols, k0, k1, x + v * ldx, y1 + v * ldy);
                for (size_t row = 0; row < rows; row++) {
                    float want = chain(fam == OWN_ORDER ? MUL_ADD : fam, y0[v * ldy + row], a + row * cols, k0, k1, x + v * ldx);
                    float got = y1[v * ldy + row];
                    exact &= memcmp(&want, &got, sizeof want) == 0;
                    close &= fabsf(want - got) <= 1e-4f * (1.0f + fabsf(want));
                }
                for (size_t g = rows; g < ldy; g++) exact &= close &= y1[v * ldy + g] == y0[v * ldy + g]; /* untouched */
            }
            if (fam == OWN_ORDER) CHECK(close);
            else CHECK(exact);
            /* gemm over n = 1 .. NV vectors: n gemv calls' bits, nothing past `rows` written */
            for (size_t n = 1; n <= NV; n++) {
                memcpy(y2, y0, NV * ldy * sizeof(float));
                kt->f32_gemm(p, rows, cols, k0, k1, n, x, ldx, y2, ldy);
                CHECK(fam == OWN_ORDER || memcmp(y1, y2, n * ldy * sizeof(float)) == 0);
                CHECK(memcmp(y0 + n * ldy, y2 + n * ldy, (NV - n) * ldy * sizeof(float)) == 0);
                for (size_t v = 0; v < n; v++)
                    for (size_t g = rows; g < ldy; g++) CHECK(y2[v * ldy + g] == y0[v * ldy + g]);
            }
            /* an empty column range leaves y as it was */
            memcpy(y2, y0, NV * ldy * sizeof(float));
            kt->f32_gemv(p, rows, cols, k0, k0, x, y2);
            kt->f32_gemm(p, rows, cols, k1, k1, NV, x, ldx, y2, ldy);
            CHECK(memcmp(y0, y2, NV * ldy * sizeof(float)) == 0);
            free(a), free(p), free(x), free(y0), free(y1), free(y2);
        }
    }
}

/* f32_step_cell (the AVX-512 tables) equals its unfused sequence bit for bit: gates, c and hout, for
 * hidden sizes in blocks of 16 units (odd and even block counts) and not (the kernel's own fallback), input
 * widths across superblocks, with x (a step) and without (lstm_run's steps); nothing past hidden written. */
static void test_fused_step(void) {
    /* fused from 96 KB of weights streamed: H 16 / 32 / 64 / 80 / 96 / 128 here (one block, two, ...; 64 only
     * with x), the rest through the kernel's unfused fallback */
    static const size_t shapes[][2] = {{16, 1600}, {32, 800}, {64, 64}, {80, 300}, {96, 200}, {128, 17},
                                       {16, 1}, {48, 64}, {20, 9}, {8, 3}, {50, 260}};
    rng r = {4242};
    for (size_t i = 0; i < N_ISAS; i++) {
        lstm_isa isa = all_isas[i];
        if (!lstm_isa_supported(isa)) continue;
        const lstm_kernels *kt = lstm_kernels_for(isa);
        if (!kt->f32_step_cell) continue;
        for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++)
            for (int with_x = 0; with_x < 2; with_x++) {
                size_t H = shapes[sh][0], in = shapes[sh][1], rows = 4 * H, cols = in + H;
                enum { GUARD = 7 };
                test_context("%s H %lu in %lu x %d", lstm_isa_name(isa), (unsigned long)H, (unsigned long)in, with_x);
                float *a = random_floats(&r, rows * cols, 0.5f), *p = pack(a, rows, cols);
                float *x = random_floats(&r, in, 2.0f), *h = random_floats(&r, H, 1.0f);
                float *g0 = random_floats(&r, rows, 1.0f), *c0 = random_floats(&r, H + GUARD, 3.0f);
                float *g1 = (float *)xmalloc(rows * sizeof(float)), *g2 = (float *)xmalloc(rows * sizeof(float));
                float *c1 = (float *)xmalloc((H + GUARD) * sizeof(float)), *c2 = (float *)xmalloc((H + GUARD) * sizeof(float));
                float *h1 = random_floats(&r, H + GUARD, 1.0f), *h2 = (float *)xmalloc((H + GUARD) * sizeof(float));
                memcpy(h2, h1, (H + GUARD) * sizeof(float));
                memcpy(g1, g0, rows * sizeof(float)), memcpy(g2, g0, rows * sizeof(float));
                memcpy(c1, c0, (H + GUARD) * sizeof(float)), memcpy(c2, c0, (H + GUARD) * sizeof(float));
                if (with_x) kt->f32_gemv(p, rows, cols, 0, in, x, g1);
                kt->f32_gemv(p, rows, cols, in, cols, h, g1);
                kt->cell_update_f32(H, g1, c1, h1);
                kt->f32_step_cell(p, H, cols, in, with_x ? x : NULL, h, g2, c2, h2);
                CHECK(memcmp(g1, g2, rows * sizeof(float)) == 0);
                CHECK(memcmp(c1, c2, (H + GUARD) * sizeof(float)) == 0);
                CHECK(memcmp(h1, h2, (H + GUARD) * sizeof(float)) == 0);
                free(a), free(p), free(x), free(h), free(g0), free(c0), free(g1), free(g2), free(c1), free(c2);
                free(h1), free(h2);
            }
    }
}

/* ---- whole models ----------------------------------------------------------------------------------- */

enum { T = 37, STREAMS = 5 };

static const net_spec specs[] = {
    {20, 48, 24, 2, 1, 5, LSTM_ACT_SOFTMAX, 17, 0.3f}, /* projection, 2 layers, head */
    {7, 13, 0, 1, 1, 3, LSTM_ACT_TANH, 18, 0.5f},      /* partial panel */
    {40, 64, 0, 3, 1, 0, LSTM_ACT_NONE, 19, 0.2f},     /* 3 layers */
};
#define N_SPECS (sizeof specs / sizeof specs[0])

/* T steps of the model for stream input scale `f` (x * f), one lstm_step per step. */
static float *stepped(lstm_model *m, const float *xs, size_t in, size_t out, float f) {
    void *buf;
    lstm_state *s = new_state(m, &buf, NULL);
    float *ys = (float *)xmalloc(T * out * sizeof(float)), *x = (float *)xmalloc(in * sizeof(float));
    for (size_t t = 0; t < T; t++) {
        for (size_t j = 0; j < in; j++) x[j] = xs[t * in + j] * f;
        CHECK_OK(lstm_step(s, x, ys + t * out));
    }
    free(x), free(buf);
    return ys;
}

static const float scale_of[STREAMS] = {1.0f, 0.5f, -1.0f, 2.0f, 0.25f};

static void test_models(void) {
    float *fma_ref[N_SPECS] = {NULL};
    for (size_t c = 0; c < N_SPECS; c++) {
        net n;
        net_make(&n, &specs[c]);
        size_t len, in = n.spec.input_size, out = n.output_size;
        unsigned char *bytes = net_write(&n, 0, &len);
        float *xs = random_inputs(300 + c, T, in, 2.0f);
        for (size_t i = 0; i < N_ISAS; i++) {
            lstm_isa isa = all_isas[i];
            if (!lstm_isa_supported(isa)) continue;
            test_context("%s, model %lu", lstm_isa_name(isa), (unsigned long)c);
            lstm_model *m = NULL;
            CHECK_OK(lstm_model_open(bytes, len, &m));
            if (!m) continue;
            CHECK_OK(lstm_model_set_isa(m, isa));
            float *want = stepped(m, xs, in, out, 1.0f);
            /* run, in chunks of 1, 4 and all steps (the blas table: BLAS's own orders, within rounding) */
            int exact = family_of(isa) != OWN_ORDER;
            static const size_t chunks[] = {1, 4, T};
            for (size_t ch = 0; ch < 3; ch++) {
                void *buf;
                lstm_state *s = new_state(m, &buf, NULL);
                size_t wl = lstm_run_workspace_size(m, chunks[ch]);
                void *work = xmalloc(wl);
                float *got = (float *)xmalloc(T * out * sizeof(float));
                CHECK_OK(lstm_run(s, xs, T, got, work, wl));
                CHECK(exact ? memcmp(got, want, T * out * sizeof(float)) == 0
                            : max_abs_diff_ff(got, want, T * out) <= 1e-5);
                free(got), free(work), free(buf);
            }
            /* many streams, each with its own inputs */
            float *alone[STREAMS];
            for (int k = 0; k < STREAMS; k++) alone[k] = stepped(m, xs, in, out, scale_of[k]);
            void *bufs[STREAMS];
            lstm_state *ss[STREAMS];
            for (int k = 0; k < STREAMS; k++) ss[k] = new_state(m, &bufs[k], NULL);
            size_t wl = lstm_step_many_workspace_size(m, STREAMS);
            void *work = xmalloc(wl);
            float *x5 = (float *)xmalloc(STREAMS * in * sizeof(float)), *y5 = (float *)xmalloc(STREAMS * out * sizeof(float));
            int same = 1;
            for (size_t t = 0; t < T; t++) {
                for (int k = 0; k < STREAMS; k++)
                    for (size_t j = 0; j < in; j++) x5[k * in + j] = xs[t * in + j] * scale_of[k];
                CHECK_OK(lstm_step_many(m, ss, STREAMS, x5, y5, work, wl));
                for (int k = 0; k < STREAMS; k++)
                    same &= exact ? memcmp(y5 + k * out, alone[k] + t * out, out * sizeof(float)) == 0
                                  : max_abs_diff_ff(y5 + k * out, alone[k] + t * out, out) <= 1e-5;
            }
            CHECK(same);
            /* the "fma" tables agree with each other to the bit */
            if (family_of(isa) == FMA) {
                if (!fma_ref[c]) {
                    fma_ref[c] = (float *)xmalloc(T * out * sizeof(float));
                    memcpy(fma_ref[c], want, T * out * sizeof(float));
                } else {
                    CHECK(memcmp(fma_ref[c], want, T * out * sizeof(float)) == 0);
                }
            }
            for (int k = 0; k < STREAMS; k++) free(alone[k]), free(bufs[k]);
            free(x5), free(y5), free(work), free(want);
            lstm_model_close(m);
        }
        free(fma_ref[c]), free(xs), free(bytes);
        net_free(&n);
    }
}

int main(void) {
    run_test("f32_panel_kernels_follow_the_chain", test_kernels);
    run_test("f32_fused_step_equals_the_sequence", test_fused_step);
    run_test("fp32_run_and_step_many_equal_steps", test_models);
    return test_summary();
}
