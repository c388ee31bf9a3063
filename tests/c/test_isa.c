/* test_isa.c - every instruction set this build and CPU support against LSTM_ISA_REFERENCE (issue 10):
 *  - the int8 kernels of each table (gemv_f32, gemv_s8, gemm_s8) on random and extreme blocked matrices,
 *    bit for bit, with partial panels, column ranges [g0, g1) and several vectors;
 *  - the batched int8 products of every table, the reference's included (issue 11): gemm_s8 against the
 *    reference gemm_s8 and gemm_f32 against gemv_f32 vector by vector (the reference's and the table's
 *    own), bit for bit, for n = 1, 2, 3, 5, 17, rows that leave partial panels, odd column-group counts,
 *    sub-ranges [g0, g1) inside the matrix, extreme values; activations past each vector's width are NaN
 *    (gemm_f32) and outputs past `rows` sentinels, so a kernel that reads or writes too far shows;
 *  - int8, int8-dynamic and int8-a16 models (written here in the blocked layout, with projection and head, odd sizes
 *    that leave partial panels) through lstm_step, lstm_run and lstm_step_many: the reference's bits;
 *  - the elementwise kernels at the edges of their branches and clamps, and q8_gates for odd counts;
 *  - fp32 models: within float rounding (the SIMD tables use fused multiply-add).
 * Runs natively on x86-64 (AVX2, AVX-512) and under qemu on ARM (NEON, NEON_DOT; tools/arm_check.sh). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "testlib.h"

static const lstm_isa simd_isas[] = {LSTM_ISA_AVX2, LSTM_ISA_AVX512_VNNI, LSTM_ISA_NEON, LSTM_ISA_NEON_DOT,
                                     LSTM_ISA_CORTEX_M_DSP, LSTM_ISA_AMX_INT8, LSTM_ISA_AVX2_VNNI};
#define N_SIMD (sizeof simd_isas / sizeof simd_isas[0])

static int bits_equal(const void *a, const void *b, size_t n) { return memcmp(a, b, n) == 0; }

/* ---- kernels ---------------------------------------------------------------------------------------- */

/* A random blocked matrix of r16(rows) x 4 * groups int8 values in [-127, 127] (rows past `rows` zero);
 * extreme: every value +-127 (the largest sums). */
static int8_t *random_blocked(rng *r, size_t rows, size_t groups, int extreme) {
    size_t n = lstm_r16(rows) * groups * 4;
    int8_t *w = (int8_t *)xmalloc(n);
    for (size_t i = 0; i < n; i++) {
        size_t row = 16 * (i / (64 * groups)) + (i % 64) / 4;
        int v = extreme ? ((rng_next(r) & 1) ? 127 : -127) : (int)(rng_next(r) % 255) - 127;
        w[i] = (int8_t)(row < rows ? v : 0);
    }
    return w;
}

/* 127, -127 or -128: quantize() gives [-127, 127], but gemv_s8 / gemm_s8 are exact for every int8 activation */
static int8_t extreme_q(rng *r) {
    static const int8_t v[] = {127, -127, -128};
    return v[rng_next(r) % 3];
}

static void test_kernels(void) {
    static const size_t shapes[][2] = {{16, 1}, {52, 7}, {64, 16}, {33, 5}, {128, 40}, {8, 3}, {200, 70}};
    rng r = {12345};
    const lstm_kernels *ref = lstm_kernels_for(LSTM_ISA_REFERENCE);
    for (size_t s = 0; s < N_SIMD; s++) {
        lstm_isa isa = simd_isas[s];
        if (!lstm_isa_supported(isa)) continue;
        const lstm_kernels *k = lstm_kernels_for(isa);
        for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++)
            for (int extreme = 0; extreme < 3; extreme++) { /* 1: weights +-127, int8 activations 127, -127 and
                                                               -128 (the AVX2 gemv's pair sums at their largest);
                                                               2: subnormal activations */
                size_t rows = shapes[sh][0], groups = shapes[sh][1];
                size_t g0 = groups > 2 ? 1 + rng_next(&r) % (groups / 2) : 0, g1 = groups;
                test_context("%s rows %lu groups %lu [%lu, %lu) extreme %d", lstm_isa_name(isa), (unsigned long)rows,
                             (unsigned long)groups, (unsigned long)g0, (unsigned long)g1, extreme);
                int8_t *w = random_blocked(&r, rows, groups, extreme == 1);
                size_t nv = 5, width = (g1 - g0) * 4, ldq = width + 4, pr = lstm_r16(rows);
                int8_t *q = (int8_t *)xmalloc(nv * ldq);
                for (size_t i = 0; i < nv * ldq; i++)
                    q[i] = extreme == 1 ? extreme_q(&r) : (int8_t)((int)(rng_next(&r) % 255) - 127);
                int32_t *rowsum = (int32_t *)xmalloc(pr * sizeof(int32_t));
                for (size_t row = 0; row < pr; row++) {
                    int32_t sum = 0;
                    for (size_t g = g0; g < g1; g++)
                        for (size_t c = 0; c < 4; c++) sum += w[((row / 16) * groups + g) * 64 + (row % 16) * 4 + c];
                    rowsum[row] = sum;
                }
                /* gemv_s8: rows < rows must match */
                int32_t *a = (int32_t *)xmalloc(pr * sizeof(int32_t)), *b = (int32_t *)xmalloc(pr * sizeof(int32_t));
                ref->gemv_s8(w, rows, groups, g0, g1, q, rowsum, a);
                k->gemv_s8(w, rows, groups, g0, g1, q, rowsum, b);
                CHECK(bits_equal(a, b, rows * sizeof(int32_t)));
                /* gemm_s8 over n = 1 .. nv vectors; entries past `rows` of each vector untouched */
                size_t ldacc = rows + 3;
                int32_t *ga = (int32_t *)xmalloc(nv * ldacc * sizeof(int32_t));
                int32_t *gb = (int32_t *)xmalloc(nv * ldacc * sizeof(int32_t));
                for (size_t n = 1; n <= nv; n++) {
                    for (size_t i = 0; i < nv * ldacc; i++) ga[i] = gb[i] = -7;
                    ref->gemm_s8(w, rows, groups, g0, g1, n, q, ldq, rowsum, ga, ldacc);
                    k->gemm_s8(w, rows, groups, g0, g1, n, q, ldq, rowsum, gb, ldacc);
                    CHECK(bits_equal(ga, gb, nv * ldacc * sizeof(int32_t)));
                }
                /* gemv_f32: y += scale * (W x), same bits */
                float *x = random_floats(&r, width, extreme == 1 ? 1e3f : extreme == 2 ? 2e-38f : 2.0f), *scale = random_floats(&r, rows, 0.05f);
                float *ya = random_floats(&r, rows, 1.0f), *yb = (float *)xmalloc(rows * sizeof(float));
                if (extreme == 2) memset(ya, 0, rows * sizeof(float)); /* so that subnormal results show */
                memcpy(yb, ya, rows * sizeof(float));
                ref->gemv_f32(w, rows, groups, g0, g1, x, scale, ya);
                k->gemv_f32(w, rows, groups, g0, g1, x, scale, yb);
                CHECK(bits_equal(ya, yb, rows * sizeof(float)));
                /* the elementwise kernels */
                float *v = random_floats(&r, 4 * rows, 6.0f), *c = random_floats(&r, rows, 3.0f);
                float *v2 = (float *)xmalloc(4 * rows * sizeof(float)), *c2 = (float *)xmalloc(rows * sizeof(float));
                float *h1 = (float *)xmalloc(rows * sizeof(float)), *h2 = (float *)xmalloc(rows * sizeof(float));
                memcpy(v2, v, 4 * rows * sizeof(float));
                memcpy(c2, c, rows * sizeof(float));
                ref->cell_update(rows, v, c, h1);
                k->cell_update(rows, v2, c2, h2);
                CHECK(bits_equal(v, v2, 4 * rows * sizeof(float)) && bits_equal(c, c2, rows * sizeof(float)) &&
                      bits_equal(h1, h2, rows * sizeof(float)));
                int8_t *q1 = (int8_t *)xmalloc(lstm_r4(rows)), *q2 = (int8_t *)xmalloc(lstm_r4(rows));
                float s1 = ref->quantize(c, rows, q1, lstm_r4(rows)), s2 = k->quantize(c, rows, q2, lstm_r4(rows));
                CHECK(bits_equal(&s1, &s2, sizeof s1) && bits_equal(q1, q2, lstm_r4(rows)));
                for (unsigned act = LSTM_ACT_SIGMOID; act <= LSTM_ACT_SOFTMAX; act++) {
                    memcpy(v2, v, rows * sizeof(float));
                    ref->activate(act, v, rows);
                    k->activate(act, v2, rows);
                    CHECK(bits_equal(v, v2, rows * sizeof(float)));
                }
                free(w), free(q), free(rowsum), free(a), free(b), free(ga), free(gb), free(x), free(scale);
                free(ya), free(yb), free(v), free(c), free(v2), free(c2), free(h1), free(h2), free(q1), free(q2);
            }
    }
}

/* Tables to compare: the reference itself, then every SIMD table this build and CPU run. */
static const lstm_isa all_isas[] = {LSTM_ISA_REFERENCE, LSTM_ISA_AVX2, LSTM_ISA_AVX512_VNNI, LSTM_ISA_NEON,
                                    LSTM_ISA_NEON_DOT, LSTM_ISA_CORTEX_M_DSP, LSTM_ISA_BLAS,
                                    LSTM_ISA_AMX_INT8, LSTM_ISA_AVX2_VNNI};

/* A value of v's kind: 0 random in [-127, 127], 1 +-127, 2 all +127, 3 all -127. */
static int8_t s8_value(rng *r, int kind) {
    switch (kind) {
    case 1: return (int8_t)((rng_next(r) & 1) ? 127 : -127);
    case 2: return 127;
    case 3: return -127;
    default: return (int8_t)((int)(rng_next(r) % 255) - 127);
    }
}

static void test_batched_kernels(void) {
    static const size_t shapes[][2] = {{1, 1}, {7, 3}, {16, 5}, {17, 7}, {33, 2}, {50, 9}, {127, 13}, {200, 40}};
    static const size_t ns[] = {1, 2, 3, 5, 17};
    rng r = {777};
    const lstm_kernels *ref = lstm_kernels_for(LSTM_ISA_REFERENCE);
    for (size_t s = 0; s < sizeof all_isas / sizeof all_isas[0]; s++) {
        lstm_isa isa = all_isas[s];
        if (!lstm_isa_supported(isa)) continue;
        const lstm_kernels *k = lstm_kernels_for(isa);
        for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++)
            for (int kind = 0; kind < 4; kind++)
                for (int range = 0; range < 2; range++) {
                    size_t rows = shapes[sh][0], groups = shapes[sh][1];
                    /* range 0: all groups; 1: a sub-range starting past 0 (and ending before the last
                     * group when there is room), as the engine's W_hh part */
                    size_t g0 = range && groups > 1 ? 1 + rng_next(&r) % (groups / 2) : 0;
                    size_t g1 = range && groups - g0 > 1 ? groups - rng_next(&r) % 2 : groups;
                    size_t width = 4 * (g1 - g0), pr = lstm_r16(rows), nmax = 17;
                    size_t ldq = width + 3, ldx = width + 5, ldy = rows + 5;
                    int8_t *w = (int8_t *)xmalloc(pr * groups * 4);
                    for (size_t i = 0; i < pr * groups * 4; i++) {
                        size_t row = 16 * (i / (64 * groups)) + (i % 64) / 4;
                        w[i] = row < rows ? s8_value(&r, kind) : 0;
                    }
                    int8_t *q = (int8_t *)xmalloc(nmax * ldq);
                    for (size_t i = 0; i < nmax * ldq; i++) q[i] = s8_value(&r, kind);
                    /* activations: random, large, large of one sign, subnormal; NaN past each vector */
                    float xs = kind == 0 ? 2.0f : kind == 1 ? 1e4f : kind == 2 ? 3e3f : 2e-38f;
                    float *x = random_floats(&r, nmax * ldx, xs);
                    for (size_t i = 0; i < nmax * ldx; i++) {
                        if (kind == 2) x[i] = x[i] < 0 ? -x[i] : x[i];
                        if (i % ldx >= width) x[i] = NAN;
                    }
                    float *scale = random_floats(&r, rows, 0.05f);
                    int32_t *rowsum = (int32_t *)xmalloc(pr * sizeof(int32_t));
                    for (size_t row = 0; row < pr; row++) {
                        int32_t sum = 0;
                        for (size_t g = g0; g < g1; g++)
                            for (size_t c = 0; c < 4; c++)
                                sum += w[((row / 16) * groups + g) * 64 + (row % 16) * 4 + c];
                        rowsum[row] = sum;
                    }
                    int32_t *ia = (int32_t *)xmalloc(nmax * ldy * sizeof(int32_t));
                    int32_t *ib = (int32_t *)xmalloc(nmax * ldy * sizeof(int32_t));
                    float *y0 = random_floats(&r, nmax * ldy, 1.0f);
                    if (kind == 3) memset(y0, 0, nmax * ldy * sizeof(float)); /* subnormal results show */
                    float *ya = (float *)xmalloc(nmax * ldy * sizeof(float));
                    float *yb = (float *)xmalloc(nmax * ldy * sizeof(float));
                    float *yc = (float *)xmalloc(nmax * ldy * sizeof(float));
                    for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
                        size_t n = ns[ni];
                        test_context("%s rows %lu groups %lu [%lu, %lu) kind %d n %lu", lstm_isa_name(isa),
                                     (unsigned long)rows, (unsigned long)groups, (unsigned long)g0,
                                     (unsigned long)g1, kind, (unsigned long)n);
                        /* gemm_s8: the reference's exact sums; nothing past `rows` of each vector written */
                        for (size_t i = 0; i < nmax * ldy; i++) ia[i] = ib[i] = -7;
                        ref->gemm_s8(w, rows, groups, g0, g1, n, q, ldq, rowsum, ia, ldy);
                        k->gemm_s8(w, rows, groups, g0, g1, n, q, ldq, rowsum, ib, ldy);
                        CHECK(bits_equal(ia, ib, nmax * ldy * sizeof(int32_t)));
                        /* and the sums themselves, straight from the definition (the reference too) */
                        int sums_ok = 1;
                        for (size_t i = 0; i < n; i++)
                            for (size_t row = 0; row < rows; row++) {
                                int32_t sum = 0;
                                for (size_t g = g0; g < g1; g++)
                                    for (size_t c = 0; c < 4; c++)
                                        sum += w[((row / 16) * groups + g) * 64 + (row % 16) * 4 + c] *
                                               q[i * ldq + (g - g0) * 4 + c];
                                sums_ok &= ib[i * ldy + row] == sum;
                            }
                        CHECK(sums_ok);
                        /* gemm_f32: every vector's rows the bits of gemv_f32 on it, the reference's and the
                         * table's own; entries past `rows` untouched */
                        memcpy(ya, y0, nmax * ldy * sizeof(float));
                        memcpy(yb, y0, nmax * ldy * sizeof(float));
                        memcpy(yc, y0, nmax * ldy * sizeof(float));
                        for (size_t i = 0; i < n; i++) {
                            ref->gemv_f32(w, rows, groups, g0, g1, x + i * ldx, scale, ya + i * ldy);
                            k->gemv_f32(w, rows, groups, g0, g1, x + i * ldx, scale, yc + i * ldy);
                        }
                        k->gemm_f32(w, rows, groups, g0, g1, n, x, ldx, scale, yb, ldy);
                        CHECK(bits_equal(ya, yb, nmax * ldy * sizeof(float)));
                        CHECK(bits_equal(yc, yb, nmax * ldy * sizeof(float)));
                    }
                    free(w), free(q), free(x), free(scale), free(rowsum), free(ia), free(ib), free(y0), free(ya);
                    free(yb), free(yc);
                }
    }
}

/* ---- whole models ----------------------------------------------------------------------------------- */

typedef struct outputs {
    float *step, *run, *many; /* [T][out], [T][out], [T][3][out] */
} outputs;

enum { T = 40, STREAMS = 3 };

/* Step, run (workspace of 7 steps) and step_many (3 streams fed x, x / 2, -x) of one model on xs. */
static void run_model(lstm_model *m, const float *xs, size_t in, size_t out, outputs *o) {
    void *b1, *b2, *bs[STREAMS];
    lstm_state *s1 = new_state(m, &b1, NULL), *s2 = new_state(m, &b2, NULL), *ss[STREAMS];
    for (int i = 0; i < STREAMS; i++) ss[i] = new_state(m, &bs[i], NULL);
    o->step = (float *)xmalloc(T * out * sizeof(float));
    o->run = (float *)xmalloc(T * out * sizeof(float));
    o->many = (float *)xmalloc(T * STREAMS * out * sizeof(float));
    for (size_t t = 0; t < T; t++) CHECK_OK(lstm_step(s1, xs + t * in, o->step + t * out));
    size_t wl = lstm_run_workspace_size(m, 7);
    void *work = xmalloc(wl);
    CHECK_OK(lstm_run(s2, xs, T, o->run, work, wl));
    free(work);
    wl = lstm_step_many_workspace_size(m, STREAMS);
    work = xmalloc(wl);
    float *x3 = (float *)xmalloc(STREAMS * in * sizeof(float));
    for (size_t t = 0; t < T; t++) {
        for (size_t j = 0; j < in; j++) {
            float x = xs[t * in + j];
            x3[j] = x, x3[in + j] = x * 0.5f, x3[2 * in + j] = -x;
        }
        CHECK_OK(lstm_step_many(m, ss, STREAMS, x3, o->many + t * STREAMS * out, work, wl));
    }
    free(x3), free(work), free(b1), free(b2);
    for (int i = 0; i < STREAMS; i++) free(bs[i]);
}

static void free_outputs(outputs *o) { free(o->step), free(o->run), free(o->many); }

typedef struct model_case {
    net_spec spec;
    const char *name;
} model_case;

static const model_case cases[] = {
    {{20, 48, 24, 2, 1, 5, LSTM_ACT_SOFTMAX, 7, 0.3f}, "I20 H48 P24 2 layers, softmax head"},
    {{7, 13, 0, 1, 1, 3, LSTM_ACT_TANH, 8, 0.5f}, "I7 H13 (partial panel), tanh head"},
    {{33, 64, 0, 1, 1, 0, LSTM_ACT_NONE, 9, 0.2f}, "I33 H64, no head"},
    {{5, 9, 6, 1, 1, 0, LSTM_ACT_NONE, 10, 0.8f}, "I5 H9 P6"},
};
#define N_CASES (sizeof cases / sizeof cases[0])

/* Per ISA and dtype: 1 identical / within tolerance, 0 not, -1 not run. For the summary table. */
static int g_result[N_SIMD][4];
static const char *const dtype_names[4] = {"fp32", "int8", "int8-dynamic", "int8-a16"};
static const lstm_layer_dtype q8_dtypes[4] = {LSTM_LAYER_FP32, LSTM_LAYER_INT8, LSTM_LAYER_INT8_DYNAMIC,
                                              LSTM_LAYER_INT8_A16};

static void compare_models(int dtype_index) {
    for (size_t c = 0; c < N_CASES; c++) {
        net n;
        net_make(&n, &cases[c].spec);
        size_t len;
        unsigned char *bytes = dtype_index == 0 ? net_write(&n, 0, &len)
                                                : net_write_q8(&n, q8_dtypes[dtype_index], &len);
        size_t in = n.spec.input_size, out = n.output_size;
        float *xs = random_inputs(100 + c, T, in, 2.0f);
        lstm_model *ref = NULL;
        CHECK_OK(lstm_model_open(bytes, len, &ref));
        if (!ref) goto done;
        CHECK_OK(lstm_model_set_isa(ref, LSTM_ISA_REFERENCE));
        outputs want;
        run_model(ref, xs, in, out, &want);
        for (size_t s = 0; s < N_SIMD; s++) {
            lstm_isa isa = simd_isas[s];
            if (!lstm_isa_supported(isa)) continue;
            test_context("%s, %s, %s", lstm_isa_name(isa), dtype_names[dtype_index], cases[c].name);
            lstm_model *m = NULL;
            CHECK_OK(lstm_model_open(bytes, len, &m));
            CHECK_OK(lstm_model_set_isa(m, isa));
            lstm_model_info info;
            CHECK_OK(lstm_model_get_info(m, &info));
            CHECK(info.isa == (uint32_t)isa);
            outputs got;
            run_model(m, xs, in, out, &got);
            int ok;
            if (dtype_index == 0) {
                double e = max_abs_diff_ff(got.step, want.step, T * out);
                double e2 = max_abs_diff_ff(got.run, want.run, T * out);
                double e3 = max_abs_diff_ff(got.many, want.many, T * STREAMS * out);
                e = e > e2 ? e : e2;
                e = e > e3 ? e : e3;
                CHECK_ERR(e, 2e-5);
                ok = e <= 2e-5;
            } else {
                int a = bits_equal(got.step, want.step, T * out * sizeof(float));
                int b = bits_equal(got.run, want.run, T * out * sizeof(float));
                int d = bits_equal(got.many, want.many, T * STREAMS * out * sizeof(float));
                CHECK(a);
                CHECK(b);
                CHECK(d);
                ok = a && b && d;
            }
            if (g_result[s][dtype_index] != 0) g_result[s][dtype_index] = ok;
            free_outputs(&got);
            lstm_model_close(m);
        }
        free_outputs(&want);
        lstm_model_close(ref);
    done:
        free(xs);
        free(bytes);
        net_free(&n);
    }
}

static void test_fp32_models(void) { compare_models(0); }
static void test_int8_models(void) { compare_models(1); }
static void test_int8_dynamic_models(void) { compare_models(2); }
static void test_int8_a16_models(void) { compare_models(3); }

/* The elementwise kernels at the edges of their branches (the Cortex-M table branches where the others
 * select) and clamps: around |x| = 0.1733 (the first switch of tanh's reduction), 0.625, 10 (tanh's clamp),
 * 43.65, 86.5 (sigmoid's clamp), 87.3 and 88 (exp's clamps), signed zeros, subnormals, huge values and
 * infinities, as gates, cell states and head inputs; q8_gates for n = 1 .. 9 (odd counts) with extreme
 * sums. All bit for bit against the reference. */
static void test_elementwise_edges(void) {
    static const float base[] = {0.0f,   1e-45f, 1e-38f, 0.1733f, 0.5f,   0.625f, 1.0f, 3.0f,
                                 10.0f,  43.65f, 86.5f,  87.3f,   88.0f, 100.0f, 1e30f, INFINITY};
    float vals[6 * sizeof base / sizeof base[0]];
    size_t nv = 0, nfinite;
    for (size_t i = 0; i < sizeof base / sizeof base[0]; i++) {
        float x = base[i], dn = nextafterf(x, 0.0f), up = nextafterf(x, INFINITY);
        float three[3] = {x, dn, up};
        for (int k = 0; k < 3; k++) {
            if (k > 0 && (isinf(x) || x == 0.0f)) continue;
            vals[nv++] = three[k];
            vals[nv++] = -three[k];
        }
    }
    nfinite = 0; /* the finite ones first, for quantize and softmax */
    for (size_t i = 0; i < nv; i++)
        if (isfinite(vals[i])) {
            float t = vals[nfinite];
            vals[nfinite++] = vals[i];
            vals[i] = t;
        }
    const lstm_kernels *ref = lstm_kernels_for(LSTM_ISA_REFERENCE);
    rng r = {777};
    for (size_t s = 0; s < N_SIMD; s++) {
        lstm_isa isa = simd_isas[s];
        if (!lstm_isa_supported(isa)) continue;
        const lstm_kernels *k = lstm_kernels_for(isa);
        for (size_t rot = 1; rot < 8; rot++) { /* gates, state and head inputs: the values, permuted */
            test_context("%s rotation %lu", lstm_isa_name(isa), (unsigned long)rot);
            size_t H = nv;
            float g1[4 * sizeof vals / sizeof vals[0]], g2[4 * sizeof vals / sizeof vals[0]];
            float c1[sizeof vals / sizeof vals[0]], c2[sizeof vals / sizeof vals[0]];
            float h1[sizeof vals / sizeof vals[0]], h2[sizeof vals / sizeof vals[0]];
            for (size_t j = 0; j < 4 * H; j++) g1[j] = g2[j] = vals[(j * rot + rot) % nv];
            for (size_t j = 0; j < H; j++) c1[j] = c2[j] = vals[(j * (rot + 2) + 1) % nv];
            ref->cell_update(H, g1, c1, h1);
            k->cell_update(H, g2, c2, h2);
            CHECK(bits_equal(g1, g2, 4 * H * sizeof(float)) && bits_equal(c1, c2, H * sizeof(float)) &&
                  bits_equal(h1, h2, H * sizeof(float)));
            for (unsigned act = LSTM_ACT_SIGMOID; act <= LSTM_ACT_SOFTMAX; act++) {
                size_t n = act == LSTM_ACT_SOFTMAX ? nfinite : nv;
                for (size_t j = 0; j < n; j++) g1[j] = g2[j] = vals[(j * rot) % n];
                ref->activate(act, g1, n);
                k->activate(act, g2, n);
                CHECK(bits_equal(g1, g2, n * sizeof(float)));
            }
            int8_t q1[sizeof vals / sizeof vals[0] + 4], q2[sizeof vals / sizeof vals[0] + 4];
            for (size_t n = 1; n <= nfinite; n += rot) { /* each prefix's largest value sets the scale */
                for (size_t j = 0; j < n; j++) g1[j] = vals[(j * rot + n) % nfinite];
                float s1 = ref->quantize(g1, n, q1, lstm_r4(n)), s2 = k->quantize(g1, n, q2, lstm_r4(n));
                CHECK(bits_equal(&s1, &s2, sizeof s1) && bits_equal(q1, q2, lstm_r4(n)));
            }
        }
        for (size_t n = 1; n <= 9; n++) {
            test_context("%s q8_gates n %lu", lstm_isa_name(isa), (unsigned long)n);
            int32_t ax[9], ah[9];
            float bias[9], scx[9], sch[9], y1[10], y2[10];
            for (size_t i = 0; i < n; i++) {
                uint32_t u = (uint32_t)rng_next(&r);
                ax[i] = (i % 3 == 0) ? (int32_t)(u | 0x80000000U) : (int32_t)(u >> (i % 8)); /* > 2^24: rounded */
                ah[i] = i % 2 ? -(int32_t)(u >> 9) - 1 : (int32_t)(u >> 3);
                bias[i] = vals[(i * 5 + n) % nfinite] * 1e-3f;
                scx[i] = 1e-3f + (float)(u % 1000) * 1e-6f;
                sch[i] = 2e-3f - (float)(u % 777) * 1e-6f;
            }
            y1[n] = y2[n] = 42.0f; /* past the end: untouched */
            float sx = 0.0123f * (float)n, sh = 3.7e-5f;
            ref->q8_gates(y1, bias, ax, sx, scx, ah, sh, sch, n);
            k->q8_gates(y2, bias, ax, sx, scx, ah, sh, sch, n);
            CHECK(bits_equal(y1, y2, (n + 1) * sizeof(float)) && y2[n] == 42.0f);
        }
    }
}

static void test_isa_queries(void) {
    CHECK(lstm_isa_supported(LSTM_ISA_REFERENCE));
    CHECK(lstm_isa_supported(lstm_isa_best()));
    for (int i = 0; i < LSTM_ISA_COUNT; i++) CHECK(strcmp(lstm_isa_name((lstm_isa)i), "unknown") != 0);
    CHECK(!lstm_isa_supported((lstm_isa)LSTM_ISA_COUNT));
}

int main(void) {
    for (size_t s = 0; s < N_SIMD; s++)
        for (int d = 0; d < 4; d++) g_result[s][d] = -1;
    printf("ISAs: best %s; supported:", lstm_isa_name(lstm_isa_best()));
    for (int i = 1; i < LSTM_ISA_COUNT; i++)
        if (lstm_isa_supported((lstm_isa)i)) printf(" %s", lstm_isa_name((lstm_isa)i));
    printf("\n");
    run_test("isa_queries", test_isa_queries);
    run_test("kernels_match_reference", test_kernels);
    run_test("batched_kernels_match_reference", test_batched_kernels);
    run_test("elementwise_edges_match_reference", test_elementwise_edges);
    run_test("fp32_models_within_rounding", test_fp32_models);
    run_test("int8_models_bit_identical", test_int8_models);
    run_test("int8_dynamic_models_bit_identical", test_int8_dynamic_models);
    run_test("int8_a16_models_bit_identical", test_int8_a16_models);
    printf("%-14s %-10s %-14s %-14s %-14s\n", "isa", "fp32", "int8", "int8-dynamic", "int8-a16");
    static const char *word[] = {"-", "DIFFERS", "identical"};
    for (size_t s = 0; s < N_SIMD; s++) {
        if (!lstm_isa_supported(simd_isas[s])) {
            printf("%-14s (not supported here)\n", lstm_isa_name(simd_isas[s]));
            continue;
        }
        printf("%-14s %-10s %-14s %-14s %-14s\n", lstm_isa_name(simd_isas[s]),
               g_result[s][0] < 0 ? "-" : g_result[s][0] ? "<=2e-5" : "DIFFERS", word[g_result[s][1] + 1],
               word[g_result[s][2] + 1], word[g_result[s][3] + 1]);
    }
    return test_summary();
}
