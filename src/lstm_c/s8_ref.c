/* s8_ref.c - the portable int8 kernels: the reference every SIMD path matches bit for bit. */
#include "elementwise.h"

/* 16 rows of a panel at a time, in storage order: 4 partial sums per row (one per column of a group),
 * then (s0 + s1) + (s2 + s3) (kernels.h). The panel is walked 4 rows at a time over all its groups, so that
 * those rows' 16 partial sums stay in registers (a 64-float array of sums stayed in memory:
 * 45 us per int8 step at H = 64 on x86-64, now about 10); each partial sum still adds its products in group
 * order. */
void lstm_s8_gemv_f32_ref(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, const float *x,
                          const float *scale, float *y) {
    for (size_t r0 = 0; r0 < rows; r0 += 16) {
        const int8_t *panel = w + (r0 / 16) * groups * 64;
        float sum[16];
        for (size_t rc = 0; rc < 16; rc += 4) {
            float s[16] = {0}; /* s[4 * r + c]: row rc + r, column c of each group */
            for (size_t g = g0; g < g1; g++) {
                const int8_t *b = panel + g * 64 + rc * 4;
                const float *xg = x + (g - g0) * 4;
#if defined(__GNUC__) && __GNUC__ >= 8
#pragma GCC unroll 16 /* whole, so that s[] lives in registers (GCC at -O2 kept it in memory) */
#endif
                for (size_t e = 0; e < 16; e++) s[e] = LSTM_R(s[e] + LSTM_R((float)b[e] * xg[e % 4]));
            }
            for (size_t r = 0; r < 4; r++)
                sum[rc + r] = LSTM_R(LSTM_R(s[4 * r] + s[4 * r + 1]) + LSTM_R(s[4 * r + 2] + s[4 * r + 3]));
        }
        for (size_t r = 0; r < 16 && r0 + r < rows; r++)
            y[r0 + r] = LSTM_R(y[r0 + r] + LSTM_R(scale[r0 + r] * sum[r]));
    }
}

void lstm_s8_gemm_f32_by_vectors(void (*gemv)(const int8_t *, size_t, size_t, size_t, size_t, const float *,
                                              const float *, float *),
                                 const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n,
                                 const float *x, size_t ldx, const float *scale, float *y, size_t ldy) {
    for (size_t i = 0; i < n; i++) gemv(w, rows, groups, g0, g1, x + i * ldx, scale, y + i * ldy);
}

/* gemv_f32 vector by vector: its bits by construction (the portable table is the reference for them). */
void lstm_s8_gemm_f32_ref(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n,
                          const float *x, size_t ldx, const float *scale, float *y, size_t ldy) {
    lstm_s8_gemm_f32_by_vectors(lstm_s8_gemv_f32_ref, w, rows, groups, g0, g1, n, x, ldx, scale, y, ldy);
}

void lstm_s8_gemv_ref(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, const int8_t *q,
                      const int32_t *rowsum, int32_t *acc) {
    (void)rowsum;
    for (size_t r0 = 0; r0 < lstm_r16(rows); r0 += 16) {
        const int8_t *panel = w + (r0 / 16) * groups * 64;
        int32_t sum[16] = {0};
        for (size_t g = g0; g < g1; g++) {
            const int8_t *b = panel + g * 64;
            const int8_t *qg = q + (g - g0) * 4;
            for (size_t r = 0; r < 16; r++)
                sum[r] += b[4 * r] * qg[0] + b[4 * r + 1] * qg[1] + b[4 * r + 2] * qg[2] + b[4 * r + 3] * qg[3];
        }
        memcpy(acc + r0, sum, sizeof sum);
    }
}

void lstm_s8_gemm_by_vectors(void (*gemv)(const int8_t *, size_t, size_t, size_t, size_t, const int8_t *,
                                          const int32_t *, int32_t *),
                             const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n,
                             const int8_t *q, size_t ldq, const int32_t *rowsum, int32_t *acc, size_t ldacc) {
    size_t full = rows / 16 * 16;
    int32_t tail[16];
    for (size_t i = 0; i < n; i++) {
        int32_t *out = acc + i * ldacc;
        if (full == rows) {
            gemv(w, rows, groups, g0, g1, q + i * ldq, rowsum, out);
            continue;
        }
        /* the kernel writes whole panels: run the last, partial panel into a 16-row buffer */
        if (full) gemv(w, full, groups, g0, g1, q + i * ldq, rowsum, out);
        gemv(w + full * groups * 4, rows - full, groups, g0, g1, q + i * ldq, rowsum + full, tail);
        memcpy(out + full, tail, (rows - full) * sizeof(int32_t));
    }
}

void lstm_s8_gemm_ref(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n,
                      const int8_t *q, size_t ldq, const int32_t *rowsum, int32_t *acc, size_t ldacc) {
    lstm_s8_gemm_by_vectors(lstm_s8_gemv_ref, w, rows, groups, g0, g1, n, q, ldq, rowsum, acc, ldacc);
}
