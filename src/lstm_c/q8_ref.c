/* q8_ref.c - the portable int8 kernels (the reference every SIMD path must match), activation
 * quantisation, and the choice of kernels for the CPU. */
#include <string.h>

#include "lstm.h"
#include "multiversion.h"
#include "blas.h"
#include "kernels.h"

/* Both kernels walk the blocks in storage order with 16 row sums, a shape compilers vectorise. */
static void gemv_f32_ref(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, const float *x,
                         const float *scale, float *y) {
    for (size_t r0 = 0; r0 < rows; r0 += 16) {
        const int8_t *panel = w + (r0 / 16) * groups * 64;
        float sum[16] = {0};
        for (size_t g = g0; g < g1; g++) {
            const int8_t *b = panel + g * 64;
            const float *xg = x + (g - g0) * 4;
            for (size_t r = 0; r < 16; r++)
                sum[r] += ((float)b[4 * r] * xg[0] + (float)b[4 * r + 1] * xg[1]) +
                          ((float)b[4 * r + 2] * xg[2] + (float)b[4 * r + 3] * xg[3]);
        }
        for (size_t r = 0; r < 16 && r0 + r < rows; r++) y[r0 + r] += scale[r0 + r] * sum[r];
    }
}

static void gemv_s8_ref(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, const int8_t *q,
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

/* n vectors one after another through the matrix-vector kernel of any ISA. */
void lstm_q8_gemm_by_vectors(void (*gemv)(const int8_t *, size_t, size_t, size_t, size_t, const int8_t *,
                                          const int32_t *, int32_t *),
                             const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n,
                             const int8_t *q, size_t ldq, const int32_t *rowsum, int32_t *acc, size_t ldacc,
                             int32_t *panel_tail) {
    size_t full = rows / 16 * 16;
    for (size_t i = 0; i < n; i++) {
        int32_t *out = acc + i * ldacc;
        if (full == rows) {
            gemv(w, rows, groups, g0, g1, q + i * ldq, rowsum, out);
            continue;
        }
        /* the kernel writes whole panels: run the last, partial panel into a 16-row buffer */
        if (full) gemv(w, full, groups, g0, g1, q + i * ldq, rowsum, out);
        gemv(w + full * groups * 4, rows - full, groups, g0, g1, q + i * ldq, rowsum + full, panel_tail);
        memcpy(out + full, panel_tail, (rows - full) * sizeof(int32_t));
    }
}

static void gemm_s8_ref(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n,
                        const int8_t *q, size_t ldq, const int32_t *rowsum, int32_t *acc, size_t ldacc) {
    int32_t tail[16];
    lstm_q8_gemm_by_vectors(gemv_s8_ref, w, rows, groups, g0, g1, n, q, ldq, rowsum, acc, ldacc, tail);
}

const lstm_kernels lstm_q8_reference = {lstm_gemv_acc, lstm_gemm_nt_acc, gemv_f32_ref, gemv_s8_ref, gemm_s8_ref};

LSTM_WIDEST float lstm_q8_quantize(const float *v, size_t n, int8_t *q, size_t padded) {
    /* inputs are finite (checked on entry), so |v| orders like its bits: an integer max, which vectorises */
    uint32_t max_bits = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        u &= 0x7fffffffU;
        max_bits = u > max_bits ? u : max_bits;
    }
    float amax;
    memcpy(&amax, &max_bits, 4);
    memset(q + n, 0, padded - n);
    if (amax == 0.0f) {
        memset(q, 0, n);
        return 0.0f;
    }
    const float inv = 127.0f / amax, round_magic = 12582912.0f; /* adding 1.5 * 2^23 rounds to nearest */
    /* |v| <= amax, so |v * inv| stays within 127 plus a rounding error: no clamp needed */
    for (size_t i = 0; i < n; i++) q[i] = (int8_t)(int32_t)((v[i] * inv + round_magic) - round_magic);
    return amax / 127.0f;
}

LSTM_WIDEST void lstm_q8_gates(float *y, const float *bias, const int32_t *acc_x, float sx, const float *scale_x,
                               const int32_t *acc_h, float sh, const float *scale_h, size_t n) {
    for (size_t i = 0; i < n; i++)
        y[i] = (bias[i] + (float)acc_x[i] * (sx * scale_x[i])) + (float)acc_h[i] * (sh * scale_h[i]);
}

