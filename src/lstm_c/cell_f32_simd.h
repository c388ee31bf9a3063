/* cell_f32_simd.h - the precise cell update of fp32 layers (cell_update_f32; elementwise_cell_f32.h is its
 * portable form) written with vector intrinsics, one hidden unit a double lane: included once per ISA after
 * the includer defines the CV_ operations below (cell_f32_x86.c: AVX2 and AVX-512; elementwise_arm.c:
 * aarch64 NEON). The arithmetic is exactly that of the portable form compiled as the "fma" family (every
 * CV_FMA one fused multiply-add), operation for operation, so all of them give the same bits.
 *
 * CV_K vectors go through each stage together (their operations interleaved in program order): one vector's
 * cell is a dependency chain about 150 cycles long (exp, a division, tanh of the result, a division), and
 * with one vector at a time the out-of-order window filled with operations waiting on it (measured at
 * H = 64 on AVX-512: 56 ns per 8 units against 31 ns of issue).
 *
 * The includer defines: CV_NAME(x) (names per ISA), CV_ATTR (a target attribute, or nothing), CV_D (the
 * vector of doubles, CV_W lanes), CV_K, CV_SET1, CV_ADD, CV_SUB, CV_MUL, CV_DIV, CV_FMA(a, b, c) = a b + c
 * and CV_FNMA(a, b, c) = c - a b (each rounded once), CV_MAX(a, b) = a > b ? a : b,
 * CV_MIN(a, b) = a < b ? a : b, CV_AND, CV_OR, CV_ANDNOT(a, b) = ~a & b, CV_SHL52_ADD(t, k) (t's 64-bit
 * lanes shifted left by 52, plus k, as doubles), CV_LOADF(p) / CV_LOADF_N(p, n) (CV_W floats / the first
 * n < CV_W from p, as doubles; the other lanes 0), CV_STOREF(p, v) / CV_STOREF_N(p, v, n) (rounded to
 * float). */

#define CV_ALWAYS static inline __attribute__((always_inline))
#if defined(__clang__)
#define CV_UNROLL _Pragma("unroll")
#else
#define CV_UNROLL _Pragma("GCC unroll 4")
#endif
#define CV_EACH for (int k = 0; k < kn; k++)

/* elementwise_cell_f32.h's cf_exp_parts: rq[k] = r q(r), scale[k] = 2^n, for kn vectors */
CV_ATTR CV_ALWAYS void CV_NAME(cv_exp_parts)(const int kn, const CV_D *x, CV_D *rq, CV_D *scale) {
    const CV_D magic = CV_SET1(LSTM_ROUND_MAGIC_D);
    CV_D t[CV_K], n[CV_K], r[CV_K], r2[CV_K], r4[CV_K], a[CV_K], b[CV_K], c[CV_K], d[CV_K];
    CV_UNROLL CV_EACH t[k] = CV_FMA(x[k], CV_SET1(LSTM_PD_LOG2E), magic);
    CV_UNROLL CV_EACH n[k] = CV_SUB(t[k], magic);
    CV_UNROLL CV_EACH r[k] = CV_FNMA(n[k], CV_SET1(LSTM_PD_LN2), x[k]);
    CV_UNROLL CV_EACH r2[k] = CV_MUL(r[k], r[k]);
    CV_UNROLL CV_EACH a[k] = CV_FMA(CV_SET1(LSTM_PD_C1), r[k], CV_SET1(LSTM_PD_C0));
    CV_UNROLL CV_EACH b[k] = CV_FMA(CV_SET1(LSTM_PD_C3), r[k], CV_SET1(LSTM_PD_C2));
    CV_UNROLL CV_EACH c[k] = CV_FMA(CV_SET1(LSTM_PD_C5), r[k], CV_SET1(LSTM_PD_C4));
    CV_UNROLL CV_EACH d[k] = CV_FMA(CV_SET1(LSTM_PD_C7), r[k], CV_SET1(LSTM_PD_C6));
    CV_UNROLL CV_EACH r4[k] = CV_MUL(r2[k], r2[k]);
    CV_UNROLL CV_EACH a[k] = CV_FMA(r2[k], b[k], a[k]);
    CV_UNROLL CV_EACH c[k] = CV_FMA(r2[k], d[k], c[k]);
    CV_UNROLL CV_EACH a[k] = CV_FMA(r4[k], c[k], a[k]);
    CV_UNROLL CV_EACH scale[k] = CV_SHL52_ADD(t[k], (int64_t)1023 << 52);
    CV_UNROLL CV_EACH rq[k] = CV_MUL(r[k], a[k]);
}

/* cf_sigmoid_den: 1 + exp(-x), -x clamped to [-40, 120] */
CV_ATTR CV_ALWAYS void CV_NAME(cv_sigmoid_den)(const int kn, const CV_D *x, CV_D *den) {
    CV_D nd[CV_K], rq[CV_K], scale[CV_K];
    CV_UNROLL CV_EACH nd[k] = CV_MIN(CV_MAX(CV_SUB(CV_SET1(-0.0), x[k]), CV_SET1(-40.0)), CV_SET1(120.0));
    CV_NAME(cv_exp_parts)(kn, nd, rq, scale);
    CV_UNROLL CV_EACH den[k] = CV_ADD(CV_SET1(1.0), CV_FMA(scale[k], rq[k], scale[k]));
}

/* cf_tanh_parts: tanh(x) = num / den, |x| clamped to 20, num with x's sign bit */
CV_ATTR CV_ALWAYS void CV_NAME(cv_tanh_parts)(const int kn, const CV_D *x, CV_D *num, CV_D *den) {
    CV_D a[CV_K], rq[CV_K], scale[CV_K];
    CV_UNROLL CV_EACH a[k] = CV_MUL(CV_MIN(CV_ANDNOT(CV_SET1(-0.0), x[k]), CV_SET1(20.0)), CV_SET1(-2.0));
    CV_NAME(cv_exp_parts)(kn, a, rq, scale);
    CV_UNROLL CV_EACH a[k] = CV_FMA(scale[k], rq[k], CV_SUB(scale[k], CV_SET1(1.0))); /* m */
    CV_UNROLL CV_EACH den[k] = CV_ADD(CV_SET1(2.0), a[k]);
    CV_UNROLL CV_EACH num[k] = CV_OR(CV_SUB(CV_SET1(0.0), a[k]), CV_AND(CV_SET1(-0.0), x[k]));
}

/* kn vectors of hidden units from j (the last one `tail` units long when tail > 0): the cell */
CV_ATTR CV_ALWAYS void CV_NAME(cv_cell)(const int kn, size_t tail, size_t hidden, const float *gates, float *c,
                                        float *hfull, size_t j) {
    const float *gi = gates + j, *gf = gates + hidden + j, *gg = gates + 2 * hidden + j,
                *go = gates + 3 * hidden + j;
    CV_D x[CV_K], y[CV_K], z[CV_K], di[CV_K], df[CV_K], dg[CV_K], cd[CV_K];
    if (tail) {
        x[0] = CV_LOADF_N(gi, tail), y[0] = CV_LOADF_N(gf, tail), z[0] = CV_LOADF_N(gg, tail);
    } else {
        CV_UNROLL CV_EACH x[k] = CV_LOADF(gi + k * CV_W), y[k] = CV_LOADF(gf + k * CV_W), z[k] = CV_LOADF(gg + k * CV_W);
    }
    CV_NAME(cv_sigmoid_den)(kn, x, di);
    CV_NAME(cv_sigmoid_den)(kn, y, df);
    CV_NAME(cv_tanh_parts)(kn, z, x, dg); /* x = +-N_g */
    if (tail) {
        y[0] = CV_LOADF_N(c + j, tail), z[0] = CV_LOADF_N(go, tail);
    } else {
        CV_UNROLL CV_EACH y[k] = CV_LOADF(c + j + k * CV_W), z[k] = CV_LOADF(go + k * CV_W);
    }
    CV_UNROLL CV_EACH di[k] = CV_MUL(di[k], dg[k]); /* (1 + E_i) D_g */
    CV_UNROLL CV_EACH cd[k] = CV_DIV(CV_FMA(y[k], di[k], CV_MUL(x[k], df[k])), CV_MUL(df[k], di[k]));
    CV_NAME(cv_sigmoid_den)(kn, z, df); /* 1 + E_o */
    CV_NAME(cv_tanh_parts)(kn, cd, x, dg);
    CV_UNROLL CV_EACH y[k] = CV_DIV(x[k], CV_MUL(df[k], dg[k])); /* h = +-N_c / ((1 + E_o) D_c) */
    if (tail) {
        CV_STOREF_N(c + j, cd[0], tail);
        CV_STOREF_N(hfull + j, y[0], tail);
    } else {
        CV_UNROLL CV_EACH CV_STOREF(c + j + k * CV_W, cd[k]), CV_STOREF(hfull + j + k * CV_W, y[k]);
    }
}

/* The units [j, j1) of a cell of `hidden` units (gates [4][hidden]): lstm_cell_update_f32 over all of them, or a
 * block of them in a fused step (f32_step_cell, kernels.h). Each unit's operations are the same either way. */
CV_ATTR void CV_NAME(lstm_cell_update_f32_range)(size_t hidden, size_t j, size_t j1, const float *restrict gates,
                                                 float *restrict c, float *restrict hfull) {
    for (; j + CV_K * CV_W <= j1; j += CV_K * CV_W) CV_NAME(cv_cell)(CV_K, 0, hidden, gates, c, hfull, j);
    for (; j + CV_W <= j1; j += CV_W) CV_NAME(cv_cell)(1, 0, hidden, gates, c, hfull, j);
    if (j < j1) CV_NAME(cv_cell)(1, j1 - j, hidden, gates, c, hfull, j);
}

CV_ATTR void CV_NAME(lstm_cell_update_f32)(size_t hidden, float *restrict gates, float *restrict c,
                                           float *restrict hfull) {
    CV_NAME(lstm_cell_update_f32_range)(hidden, 0, hidden, gates, c, hfull);
}

#undef CV_EACH
#undef CV_UNROLL
#undef CV_ALWAYS
