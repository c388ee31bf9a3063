/* test_precise.c - the precise elementwise of fp32 layers (issue 14; elementwise.h): sigmoid and tanh
 * (activate_f32) against libm in double over a dense range of floats and the edges (+-0, denormal-sized
 * inputs, the clamps at |x| = 10 and 120, the switch of exp's reduction at |x| = ln2 / 2, |x| up to 100 and
 * beyond), as ulp errors of the float result; the cell update (cell_update_f32) against the same
 * equations in double; every kernel table this CPU runs gives the reference table's bits. Where fp32 layers
 * keep the float kernels (LSTM_F32_FLOAT_ELEMENTWISE: no double hardware) the float functions' bounds
 * apply instead. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "testlib.h"

/* The bounds of the precise functions. A build where fp32 layers keep the float kernels
 * (LSTM_F32_FLOAT_ELEMENTWISE) prints its figures and checks only that the tables agree: the float
 * functions' accuracy is test_numerics.c's (absolute, over [-12, 12]; in ulp they are far off where the
 * result is tiny: exp's clamp at -87.3, c's cancellation). */
#define MAX_ULP 0.501      /* 0.5 from the final rounding, the rest from the double computation (2^-36) */
#define MIN_CORRECT 0.9999 /* measured on x86-64: 99.99994% (sigmoid), 99.9996% (tanh) */
#define CELL_ULP 0.501
#ifdef LSTM_F32_FLOAT_ELEMENTWISE
#define PRECISE 0
#else
#define PRECISE 1
#endif

/* the spacing of floats at |y| (a float's ulp), denormals included */
static double float_ulp(double y) {
    int e;
    frexp(fabs(y), &e); /* |y| = m 2^e, m in [0.5, 1) */
    double u = ldexp(1.0, e - 24);
    return u > 0x1p-149 ? u : 0x1p-149;
}

static double sigmoid64(double x) { return 1.0 / (1.0 + exp(-x)); }

typedef struct stats {
    double worst_ulp, sum_ulp;
    float worst_x;
    size_t n, correct;
} stats;

static void account(stats *s, float x, float got, double want) {
    double ulp = fabs((double)got - want) / float_ulp(want);
    if (ulp > s->worst_ulp) s->worst_ulp = ulp, s->worst_x = x;
    s->sum_ulp += ulp;
    s->correct += got == (float)want;
    s->n++;
}

/* The inputs: every 127th float from 0 up to 128 (both signs: 17.7 million), then the edges. */
static size_t inputs(float *x, size_t cap) {
    size_t n = 0;
    for (uint32_t b = 0; b <= 0x43000000u && n + 2 <= cap; b += 127u) {
        float v;
        memcpy(&v, &b, 4);
        x[n++] = v;
        x[n++] = -v;
    }
    static const float edges[] = {0.0f, -0.0f, 1e-45f, -1e-45f, 1.1754942e-38f, 1.17549435e-38f,
                                  -1.17549435e-38f, 2e-30f, 1e-10f, 0.0625f, 0.34657359f, 0.3465736f,
                                  -0.34657359f, 0.69314718f, 0.17328679f, 0.17328680f, 1.0f, 8.99f, 9.02f,
                                  9.999999f, 10.0f, 10.000001f, 17.33f, 17.34f, 20.0f, 87.3f, 88.0f, 88.8f,
                                  100.0f, -100.0f, -103.97f, -103.98f, -104.0f, 119.99999f, 120.0f,
                                  -120.0f, -120.00001f, 1e10f, -1e10f, FLT_MAX, -FLT_MAX};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0] && n < cap; i++) x[n++] = edges[i];
    return n;
}

static void test_activations_against_libm(void) {
    size_t cap = 2 * (0x43000000u / 127u + 1) + 64;
    float *x = (float *)xmalloc(cap * sizeof(float)), *v = (float *)xmalloc(cap * sizeof(float));
    size_t n = inputs(x, cap);
    const lstm_kernels *k = lstm_kernels_for(LSTM_ISA_REFERENCE);
    for (unsigned act = LSTM_ACT_SIGMOID; act <= LSTM_ACT_TANH; act++) {
        memcpy(v, x, n * sizeof(float));
        k->activate_f32(act, v, n);
        stats s = {0, 0, 0, 0, 0};
        for (size_t i = 0; i < n; i++)
            account(&s, x[i], v[i], act == LSTM_ACT_SIGMOID ? sigmoid64((double)x[i]) : tanh((double)x[i]));
        const char *name = act == LSTM_ACT_SIGMOID ? "sigmoid" : "tanh";
        printf("  %s: %zu inputs, max %.6f ulp (x = %.9g), mean %.4f ulp, correctly rounded %.6f%%\n", name, s.n,
               s.worst_ulp, (double)s.worst_x, s.sum_ulp / (double)s.n, 100.0 * (double)s.correct / (double)s.n);
        test_context("%s: max %.6f ulp at x = %.9g", name, s.worst_ulp, (double)s.worst_x);
        if (!PRECISE) continue;
        CHECK(s.worst_ulp <= MAX_ULP);
        CHECK((double)s.correct >= MIN_CORRECT * (double)s.n);
        /* signs and limits exactly */
        for (size_t i = 0; i < n; i++) {
            if (act == LSTM_ACT_TANH) {
                CHECK(signbit(v[i]) == signbit(x[i]));
                CHECK(fabsf(v[i]) <= 1.0f);
                if (fabsf(x[i]) < 1e-30f) CHECK(v[i] == x[i]);
            } else {
                CHECK(v[i] >= 0.0f && v[i] <= 1.0f);
            }
        }
    }
    test_context("");
    free(x), free(v);
}

/* The softmax head: against the same in double (libm exp), per element in ulp. */
static void test_softmax_against_libm(void) {
    enum { N = 37, ROWS = 2000 };
    rng r = {99};
    const lstm_kernels *k = lstm_kernels_for(LSTM_ISA_REFERENCE);
    double worst = 0;
    for (int row = 0; row < ROWS; row++) {
        float v[N], x[N];
        float scale = row % 4 == 0 ? 60.0f : row % 4 == 1 ? 8.0f : 2.0f;
        for (int i = 0; i < N; i++) v[i] = x[i] = rng_uniform(&r, scale);
        k->activate_f32(LSTM_ACT_SOFTMAX, v, N);
        double mx = x[0], sum = 0;
        for (int i = 1; i < N; i++) mx = x[i] > mx ? x[i] : mx;
        for (int i = 0; i < N; i++) sum += exp((double)x[i] - mx);
        for (int i = 0; i < N; i++) {
            double want = exp((double)x[i] - mx) / sum, ulp = fabs((double)v[i] - want) / float_ulp(want);
            worst = ulp > worst ? ulp : worst;
        }
    }
    printf("  softmax: %d rows of %d, max %.6f ulp\n", ROWS, N, worst);
    if (PRECISE) CHECK_ERR(worst, MAX_ULP);
}

/* The "fma" family's portable form (elementwise_cell_f32.h with LSTM_EW_FMA), compiled here: the twin the
 * tables of that family (AVX2, AVX-512 and aarch64 NEON intrinsics: cell_f32_simd.h) must equal bit for bit.
 * __builtin_fma is exact on every target (an instruction, or libm's correctly rounded fma). */
#if PRECISE
#define LSTM_EW_SUFFIX fmatwin
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define LSTM_EW_ATTR __attribute__((target("fma")))
#define TWIN_NEEDS_FMA 1
#else
#define LSTM_EW_ATTR
#define TWIN_NEEDS_FMA 0
#endif
#define LSTM_EW_FMA
#include "elementwise_impl.h"
#undef LSTM_EW_FMA
#undef LSTM_EW_SUFFIX
#undef LSTM_EW_ATTR
#endif

/* The precise cell's family (elementwise_cell_f32.h): 1 "fma", 0 "mul+add", -1 the float cell. */
static int cell_family(lstm_isa isa) {
    if (!PRECISE || isa == LSTM_ISA_CORTEX_M_DSP) return -1;
    switch (isa) {
    case LSTM_ISA_AVX2: case LSTM_ISA_AVX2_VNNI: case LSTM_ISA_AVX512_VNNI: case LSTM_ISA_AMX_INT8: return 1;
#if defined(__aarch64__)
    case LSTM_ISA_NEON: case LSTM_ISA_NEON_DOT: return 1;
#endif
    default: return 0;
    }
}

/* cell_update_f32 against the cell's equations in double from exact activations (libm): c' = f c + i g,
 * h = o tanh(c'). Every result within 0.501 ulp plus 2^-33 (|f c| + |i g|): the double computation's error
 * (2^-36 per factor) grows where f c and i g cancel, as the exact c' is then small against them. Both
 * families; the form of before (the activations rounded to float, then the cell from them: up to
 * 20,000 ulp off where f c and i g cancel) is measured beside it. */
static void cell_against_double(const lstm_kernels *k, const char *name) {
    enum { H = 4099 };
    rng r = {7};
    float *g = (float *)xmalloc(4 * H * sizeof(float)), *g0 = (float *)xmalloc(4 * H * sizeof(float));
    float *c = (float *)xmalloc(H * sizeof(float)), *c0 = (float *)xmalloc(H * sizeof(float));
    float *h = (float *)xmalloc(H * sizeof(float));
    double worst_c = 0, worst_h = 0, sum_c = 0, old_c = 0, old_sum_c = 0;
    size_t n = 0, correct_c = 0, correct_h = 0;
    for (int round = 0; round < 20; round++) {
        float gscale = round % 2 ? 12.0f : 3.0f, cscale = round % 3 == 0 ? 40.0f : 2.0f;
        for (size_t j = 0; j < 4 * H; j++) g[j] = g0[j] = rng_uniform(&r, gscale);
        for (size_t j = 0; j < H; j++) c[j] = c0[j] = rng_uniform(&r, cscale);
        k->cell_update_f32(H, g, c, h);
        for (size_t j = 0; j < H; j++, n++) {
            double i = sigmoid64(g0[j]), f = sigmoid64(g0[H + j]), gg = tanh((double)g0[2 * H + j]),
                   o = sigmoid64(g0[3 * H + j]);
            double cw = f * (double)c0[j] + i * gg, hw = o * tanh(cw);
            double slack = 0x1p-33 * (fabs(f * (double)c0[j]) + fabs(i * gg));
            double ec = (fabs((double)c[j] - cw) - slack) / float_ulp(cw);
            double eh = (fabs((double)h[j] - hw) - slack) / float_ulp(hw);
            worst_c = ec > worst_c ? ec : worst_c;
            worst_h = eh > worst_h ? eh : worst_h;
            sum_c += fabs((double)c[j] - cw) / float_ulp(cw);
            correct_c += c[j] == (float)cw;
            correct_h += h[j] == (float)hw;
            /* before: c from the activations rounded to float, one rounding */
            float old = (float)((double)(float)f * (double)c0[j] + (double)(float)i * (double)(float)gg);
            double eo = fabs((double)old - cw) / float_ulp(cw);
            old_c = eo > old_c ? eo : old_c;
            old_sum_c += eo;
        }
    }
    printf("  %s cell: c max %.6f ulp beyond the slack, mean %.4f ulp, correctly rounded %.4f%%; h max %.6f ulp "
           "beyond, correctly rounded %.4f%%\n", name, worst_c, sum_c / (double)n,
           100.0 * (double)correct_c / (double)n, worst_h, 100.0 * (double)correct_h / (double)n);
    printf("  (c from activations rounded to float first: max %.1f ulp, mean %.4f ulp)\n", old_c,
           old_sum_c / (double)n);
    test_context("%s", name);
    if (PRECISE) {
        CHECK_ERR(worst_c, CELL_ULP);
        CHECK_ERR(worst_h, CELL_ULP);
        CHECK((double)correct_c >= 0.99 * (double)n);
        CHECK((double)correct_h >= 0.99 * (double)n);
    }
    test_context("");
    free(g), free(g0), free(c), free(c0), free(h);
}

static void test_cell_update(void) {
    cell_against_double(lstm_kernels_for(LSTM_ISA_REFERENCE), "mul+add (reference)");
#if PRECISE
    if (!TWIN_NEEDS_FMA || lstm_isa_supported(LSTM_ISA_AVX2)) {
        static const lstm_kernels twin = {.cell_update_f32 = lstm_cell_update_f32_fmatwin};
        cell_against_double(&twin, "fma (portable twin)");
    }
#endif
}

/* Every table this CPU runs: its family's bits (the cell: the reference table's, or the fma twin's; the
 * activations and softmax: the reference table's on every table), lengths 1 to 70 so that vector bodies
 * and their remainders both run. */
static void test_tables_agree(void) {
    rng r = {3};
    const lstm_kernels *ref = lstm_kernels_for(LSTM_ISA_REFERENCE);
    for (int isa = 1; isa < LSTM_ISA_COUNT; isa++) {
        if (isa == LSTM_ISA_REFERENCE || !lstm_isa_supported((lstm_isa)isa)) continue;
        const lstm_kernels *k = lstm_kernels_for((lstm_isa)isa);
        int family = cell_family((lstm_isa)isa);
        void (*want_cell)(size_t, float *, float *, float *) = ref->cell_update_f32;
#if PRECISE
        if (family == 1) want_cell = lstm_cell_update_f32_fmatwin;
#endif
        test_context("%s", lstm_isa_name((lstm_isa)isa));
        for (size_t n = 1; n <= 70; n++) {
            float a[4 * 70], b[4 * 70], c1[70], c2[70], h1[70], h2[70];
            for (size_t j = 0; j < 4 * n; j++) a[j] = b[j] = rng_uniform(&r, n % 3 ? 10.0f : 130.0f);
            for (size_t j = 0; j < n; j++) c1[j] = c2[j] = rng_uniform(&r, 30.0f);
            if (n == 7) a[0] = b[0] = -0.0f, a[2 * n] = b[2 * n] = -0.0f, c1[0] = c2[0] = -0.0f;
            if (family >= 0) {
                want_cell(n, a, c1, h1);
                k->cell_update_f32(n, b, c2, h2);
                CHECK(memcmp(c1, c2, n * sizeof(float)) == 0);
                CHECK(memcmp(h1, h2, n * sizeof(float)) == 0);
            }
            for (unsigned act = LSTM_ACT_NONE; act <= LSTM_ACT_SOFTMAX; act++) {
                for (size_t j = 0; j < n; j++) a[j] = b[j] = rng_uniform(&r, 40.0f);
                ref->activate_f32(act, a, n);
                k->activate_f32(act, b, n);
                CHECK(memcmp(a, b, n * sizeof(float)) == 0);
            }
        }
    }
    test_context("");
}

int main(void) {
#ifdef LSTM_F32_FLOAT_ELEMENTWISE
    printf("fp32 layers use the float elementwise in this build (LSTM_F32_FLOAT_ELEMENTWISE)\n");
#endif
    run_test("activations_against_libm", test_activations_against_libm);
    run_test("softmax_against_libm", test_softmax_against_libm);
    run_test("cell_update_against_double", test_cell_update);
    run_test("tables_agree", test_tables_agree);
    return test_summary();
}
