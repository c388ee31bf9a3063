/* elementwise_cell_f32.h - the precise cell update of fp32 layers (cell_update_f32), portable form: included
 * by elementwise_impl.h inside each instantiation (LSTM_EW names the functions). cell_f32_simd.h is the
 * same arithmetic written with intrinsics for AVX2 and AVX-512.
 *
 * Two families, as for the fp32 sums (kernels.h): with LSTM_EW_FMA defined by the includer (the "fma"
 * tables: aarch64 NEON here, AVX2 and AVX-512 in cell_f32_simd.h) every LSTM_EW_FMA_D is one fused
 * multiply-add; without it (reference, 32-bit NEON) a rounded multiply then a rounded add. Each family
 * gives the same bits on every table and target that runs it.
 *
 * The cell in one division for c and one for h (issue 14; 5 before: one per activation): with
 * E_x = exp(-x) and tanh(|x|) = N / D (N = -m, D = 2 + m, m = expm1(-2 |x|)),
 *   f = 1 / (1 + E_f), i = 1 / (1 + E_i), g = +-N_g / D_g, so
 *   c' = f c + i g = (c (1 + E_i) D_g +- N_g (1 + E_f)) / ((1 + E_f) (1 + E_i) D_g),
 *   h = o tanh(c') = +-N_c / ((1 + E_o) D_c),
 * every factor in double (relative error below 2^-36 each, exp's polynomial 2^-37.7), rounded once to
 * float; h from the unrounded c'. The denominators stay below (1 + e^120)^2 2 < 2^348 and the
 * numerators below 2^128 (1 + e^120) 2: no overflow. Unlike the five-division form, c and h no longer
 * come from activations rounded to float first, so they are more accurate (tests/c/test_precise.c, against
 * the equations in double with libm); the gates are not left in `gates` (lstm_step_trace computes them with
 * activate_f32). One loop over the units: on these tables (scalar double on the reference table and 32-bit
 * ARM) there is nothing to vectorise it for; the vector tables run cell_f32_simd.h. */

#ifdef LSTM_EW_FMA
#define LSTM_EW_FMA_D(a, b, c) __builtin_fma(a, b, c)
#define LSTM_EW_FNMA_D(a, b, c) __builtin_fma(-(a), b, c)
#else
#define LSTM_EW_FMA_D(a, b, c) ((a) * (b) + (c))
#define LSTM_EW_FNMA_D(a, b, c) ((c) - (a) * (b))
#endif

/* lstm_exp_parts (elementwise.h) in the family's operations: exp(x) = scale + scale r q(r), x in [-120, 120] */
LSTM_INLINE double LSTM_EW(cf_exp_parts)(double x, double *scale) {
#ifdef LSTM_EW_FMA
    double t = __builtin_fma(x, LSTM_PD_LOG2E, LSTM_ROUND_MAGIC_D);
#else
    double t = LSTM_RD(LSTM_RD(x * LSTM_PD_LOG2E) + LSTM_ROUND_MAGIC_D); /* as lstm_exp_parts */
#endif
    double n = t - LSTM_ROUND_MAGIC_D;
    double r = LSTM_EW_FNMA_D(n, LSTM_PD_LN2, x);
    double r2 = r * r, r4 = r2 * r2;
    double p01 = LSTM_EW_FMA_D(LSTM_PD_C1, r, LSTM_PD_C0), p23 = LSTM_EW_FMA_D(LSTM_PD_C3, r, LSTM_PD_C2);
    double p45 = LSTM_EW_FMA_D(LSTM_PD_C5, r, LSTM_PD_C4), p67 = LSTM_EW_FMA_D(LSTM_PD_C7, r, LSTM_PD_C6);
    double q = LSTM_EW_FMA_D(r4, LSTM_EW_FMA_D(r2, p67, p45), LSTM_EW_FMA_D(r2, p23, p01));
    uint64_t bits;
    memcpy(&bits, &t, 8);
    bits = (bits << 52) + ((uint64_t)1023 << 52);
    memcpy(scale, &bits, 8);
    return r * q;
}

/* 1 + exp(-x), -x clamped to [-40, 120] (sigmoid(x) = 1 / this: 1 at x >= 40, 0 in float below -103.98) */
LSTM_INLINE double LSTM_EW(cf_sigmoid_den)(double x) {
    double nd = -x;
    nd = nd > -40.0 ? nd : -40.0;
    nd = nd < 120.0 ? nd : 120.0;
    double scale, rq = LSTM_EW(cf_exp_parts)(nd, &scale);
    return 1.0 + LSTM_EW_FMA_D(scale, rq, scale);
}

/* tanh(x) = the return value / *den: tanh(|x|) = -m / (2 + m) with m = expm1(-2 |x|), |x| clamped to 20
 * (1 - tanh(20) = 8e-18; a clamp at 10 as the rounded tanh has, 1 - tanh(10) = 4e-9, cost c' up to 480
 * ulp where f c and i g cancel), and x's sign bit on the numerator (tanh(-0) = -0) */
LSTM_INLINE double LSTM_EW(cf_tanh_parts)(double x, double *den) {
    uint64_t bits, sign;
    memcpy(&bits, &x, 8);
    sign = bits & ((uint64_t)1 << 63);
    bits ^= sign;
    double a;
    memcpy(&a, &bits, 8);
    a = a < 20.0 ? a : 20.0;
    double scale, rq = LSTM_EW(cf_exp_parts)(a * -2.0, &scale);
    double m = LSTM_EW_FMA_D(scale, rq, scale - 1.0);
    *den = 2.0 + m;
    double num = 0.0 - m;
    memcpy(&bits, &num, 8);
    bits |= sign;
    memcpy(&num, &bits, 8);
    return num;
}

LSTM_EW_ATTR void LSTM_EW(lstm_cell_update_f32)(size_t hidden, float *restrict gates, float *restrict c,
                                                float *restrict hfull) {
    const float *gi = gates, *gf = gates + hidden, *gg = gates + 2 * hidden, *go = gates + 3 * hidden;
    for (size_t j = 0; j < hidden; j++) {
        double di = LSTM_EW(cf_sigmoid_den)(gi[j]), df = LSTM_EW(cf_sigmoid_den)(gf[j]), dg, dc;
        double ng = LSTM_EW(cf_tanh_parts)(gg[j], &dg);
        double dig = di * dg;
        double cd = LSTM_RD(LSTM_RD(LSTM_EW_FMA_D((double)c[j], dig, ng * df)) / LSTM_RD(df * dig));
        double dO = LSTM_EW(cf_sigmoid_den)(go[j]);
        double nc = LSTM_EW(cf_tanh_parts)(cd, &dc);
        c[j] = LSTM_R((float)cd);
        hfull[j] = LSTM_R((float)(nc / (dO * dc)));
    }
}

#undef LSTM_EW_FMA_D
#undef LSTM_EW_FNMA_D
