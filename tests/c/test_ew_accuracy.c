/* test_ew_accuracy.c - the float sigmoid and tanh of quantised layers (elementwise.h: lstm_sigmoid1,
 * lstm_tanh1; also fp32 layers' where double is not in hardware) against libm in double: ulp and absolute
 * errors over two grids of [-20, 20] (every 127th float: dense near 0, down to denormals; and 2 million
 * evenly spaced values), bounds on the maximum and mean errors; and their shape: odd tanh with
 * tanh(+-0) = +-0, monotonic (sigmoid but for a few one-ulp steps), saturated where float rounds to 1.
 * Through the reference table's activate (the kernel every table's bits equal: test_isa.c). The figures
 * are printed; they are the same on every target (the same IEEE operations: elementwise.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "testlib.h"

/* Bounds: the figures measured (the same on every target) plus a small margin. Sigmoid: max 2.524 ulp
 * (over both grids), mean 0.451 ulp (even grid), max abs 9.2e-8; tanh: 1.879 ulp, 0.256 ulp, 1.09e-7. The
 * functions they replaced (exp's degree-6 polynomial in 1 / (1 + exp), and tanh's two halves): sigmoid
 * 2.470 ulp, 0.429, 8.9e-8; tanh 1.280 ulp, 0.128, 7.6e-8. (A denser sweep, 65 million floats of
 * [-20, 20]: sigmoid 2.68 ulp, tanh 1.99 ulp.) */
#define SIGMOID_MAX_ULP 2.6
#define TANH_MAX_ULP 1.95
#define SIGMOID_MEAN_ULP 0.47 /* even grid */
#define TANH_MEAN_ULP 0.27
#define MAX_ABS 1.15e-7
/* Sigmoid's P / (P + 2^n Q) steps down by one ulp where n changes for results within 1.1e-5 of 1 (4 places
 * on the dense grid: x = 11.437, 13.516, 14.903, 16.982); tanh is monotonic. */
#define SIGMOID_MAX_STEPS_DOWN 4

/* the spacing of floats at |y|, denormals included */
static double float_ulp(double y) {
    int e;
    frexp(fabs(y), &e);
    double u = ldexp(1.0, e - 24);
    return u > 0x1p-149 ? u : 0x1p-149;
}

typedef struct stats {
    double worst_ulp, sum_ulp, worst_abs, sum_abs;
    float worst_x;
    size_t n, correct;
} stats;

static void account(stats *s, float x, float got, double want) {
    double e = fabs((double)got - want), ulp = e / float_ulp(want);
    if (ulp > s->worst_ulp) s->worst_ulp = ulp, s->worst_x = x;
    s->worst_abs = e > s->worst_abs ? e : s->worst_abs;
    s->sum_ulp += ulp;
    s->sum_abs += e;
    s->correct += got == (float)want;
    s->n++;
}

static double want_of(unsigned act, float x) {
    return act == LSTM_ACT_SIGMOID ? 1.0 / (1.0 + exp(-(double)x)) : tanh((double)x);
}

/* every 127th float in [0, 20] with both signs, in increasing order */
static size_t dense_grid(float *x, size_t cap) {
    const uint32_t top = 0x41a00000u; /* 20.0f */
    size_t half = top / 127u + 1, n = 0;
    if (2 * half > cap) return 0;
    for (size_t i = half; i-- > 0;) {
        uint32_t b = (uint32_t)i * 127u | 0x80000000u;
        memcpy(&x[n++], &b, 4);
    }
    for (size_t i = 0; i < half; i++) {
        uint32_t b = (uint32_t)i * 127u;
        memcpy(&x[n++], &b, 4);
    }
    return n;
}

static void run_grid(unsigned act, const float *x, float *v, size_t n, stats *s) {
    memcpy(v, x, n * sizeof(float));
    lstm_kernels_for(LSTM_ISA_REFERENCE)->activate(act, v, n);
    memset(s, 0, sizeof *s);
    for (size_t i = 0; i < n; i++) account(s, x[i], v[i], want_of(act, x[i]));
}

static void report(const char *name, const char *grid, const stats *s) {
    printf("  %s, %s: %lu inputs, max %.3f ulp (x = %.9g), mean %.4f ulp, max abs %.3g, mean abs %.3g, "
           "correctly rounded %.2f%%\n",
           name, grid, (unsigned long)s->n, s->worst_ulp, (double)s->worst_x, s->sum_ulp / (double)s->n,
           s->worst_abs, s->sum_abs / (double)s->n, 100.0 * (double)s->correct / (double)s->n);
}

static void test_against_libm(void) {
    size_t cap = 2 * (0x41a00000u / 127u + 1);
    float *x = (float *)xmalloc(cap * sizeof(float)), *v = (float *)xmalloc(cap * sizeof(float));
    size_t nd = dense_grid(x, cap);
    CHECK(nd == cap);
    for (unsigned act = LSTM_ACT_SIGMOID; act <= LSTM_ACT_TANH; act++) {
        const char *name = act == LSTM_ACT_SIGMOID ? "sigmoid" : "tanh";
        double max_ulp = act == LSTM_ACT_SIGMOID ? SIGMOID_MAX_ULP : TANH_MAX_ULP;
        double mean_ulp = act == LSTM_ACT_SIGMOID ? SIGMOID_MEAN_ULP : TANH_MEAN_ULP;
        stats s;
        run_grid(act, x, v, nd, &s);
        report(name, "every 127th float", &s);
        test_context("%s dense: max %.3f ulp at %.9g", name, s.worst_ulp, (double)s.worst_x);
        CHECK(s.worst_ulp <= max_ulp);
        CHECK(s.worst_abs <= MAX_ABS);
        /* the shape over the sorted grid: monotonic but for one-ulp steps down (sigmoid); tanh odd, bit
         * for bit */
        size_t steps_down = 0, big_steps = 0, bad_odd = 0, half = nd / 2;
        for (size_t i = 1; i < nd; i++)
            if (v[i] < v[i - 1]) steps_down++, big_steps += v[i] != nextafterf(v[i - 1], 0.0f);
        if (act == LSTM_ACT_TANH)
            for (size_t i = 0; i < half; i++) bad_odd += v[half - 1 - i] != -v[half + i];
        test_context("%s: %lu steps down (%lu of more than one ulp), %lu odd violations", name,
                     (unsigned long)steps_down, (unsigned long)big_steps, (unsigned long)bad_odd);
        CHECK(steps_down <= (act == LSTM_ACT_SIGMOID ? SIGMOID_MAX_STEPS_DOWN : 0));
        CHECK(big_steps == 0 && bad_odd == 0);

        const size_t ne = 2000001; /* the even grid: -20 + 40 i / (ne - 1) */
        for (size_t i = 0; i < ne; i++) x[i] = (float)(-20.0 + 40.0 * (double)i / (double)(ne - 1));
        run_grid(act, x, v, ne, &s);
        report(name, "even grid", &s);
        test_context("%s even: max %.3f ulp, mean %.4f ulp", name, s.worst_ulp, s.sum_ulp / (double)s.n);
        CHECK(s.worst_ulp <= max_ulp);
        CHECK(s.sum_ulp / (double)s.n <= mean_ulp);
        CHECK(s.worst_abs <= MAX_ABS);
        nd = dense_grid(x, cap); /* restore for the next function */
    }
    free(x), free(v);
}

/* signed zeros, saturation and the clamps (|x| = 10 for tanh, 86.5 for sigmoid; beyond them the clamped
 * value's result) */
static void test_edges(void) {
    const lstm_kernels *k = lstm_kernels_for(LSTM_ISA_REFERENCE);
    float v[8] = {0.0f, -0.0f, 9.02f, -9.02f, 10.0f, 1e30f, -1e30f, INFINITY};
    k->activate(LSTM_ACT_TANH, v, 8);
    CHECK(v[0] == 0.0f && !signbit(v[0]) && v[1] == 0.0f && signbit(v[1]));
    CHECK(v[2] == 1.0f && v[3] == -1.0f && v[4] == 1.0f && v[5] == 1.0f && v[6] == -1.0f && v[7] == 1.0f);
    float s[8] = {0.0f, -0.0f, 16.7f, 86.5f, 1e30f, -86.5f, -1e30f, -INFINITY};
    k->activate(LSTM_ACT_SIGMOID, s, 8);
    CHECK(s[0] == 0.5f && s[1] == 0.5f && s[2] == 1.0f && s[3] == 1.0f && s[4] == 1.0f);
    CHECK(s[5] > 0.0f && s[5] < 3e-38f && s[6] == s[5] && s[7] == s[5]);
    double rel = fabs((double)s[5] / (1.0 / (1.0 + exp(86.5))) - 1.0);
    test_context("sigmoid(-86.5) = %.9g, relative error %.3g", (double)s[5], rel);
    CHECK(rel < 1e-6);
}

int main(void) {
    run_test("against_libm", test_against_libm);
    run_test("edges", test_edges);
    return test_summary();
}
