/* s16_ref.c - the portable int8 x int16 kernels (int8-a16 layers): the reference every SIMD path matches
 * bit for bit. Exact: each block of at most LSTM_S16_BLOCK_GROUPS column groups is summed in int32 (it
 * cannot overflow, kernels.h), blocks are added in int64. On ARMv6-M (Cortex-M0) the block sums come from
 * the Thumb-1 assembly kernel of s16_armv6m.c. */
#include <string.h>

#include "kernels_arm.h"

void lstm_s16_gemv_ref(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, const int16_t *q,
                       int64_t *acc) {
    for (size_t r0 = 0; r0 < lstm_r16(rows); r0 += 16) {
        const int8_t *panel = w + (r0 / 16) * groups * 64;
        int64_t sum[16] = {0};
        for (size_t gb = g0; gb < g1; gb += LSTM_S16_BLOCK_GROUPS) {
            size_t ge = g1 - gb < LSTM_S16_BLOCK_GROUPS ? g1 : gb + LSTM_S16_BLOCK_GROUPS;
            int32_t part[16] = {0};
#ifdef LSTM_HAVE_ARMV6M_KERNELS
            /* Cortex-M0: the Thumb-1 panel kernel (s16_armv6m.c), the same int32 block sums */
            lstm_s16_panel_armv6m(panel + gb * 64, q + (gb - g0) * 4, (uint32_t)(ge - gb), part);
#else
            /* group by group: the group's 4 activations in locals, the panel's 16 block sums */
            for (size_t g = gb; g < ge; g++) {
                const int8_t *b = panel + g * 64;
                const int16_t *qg = q + (g - g0) * 4;
                int32_t x0 = qg[0], x1 = qg[1], x2 = qg[2], x3 = qg[3];
                for (size_t r = 0; r < 16; r++)
                    part[r] += b[4 * r] * x0 + b[4 * r + 1] * x1 + b[4 * r + 2] * x2 + b[4 * r + 3] * x3;
            }
#endif
            for (size_t r = 0; r < 16; r++) sum[r] += part[r];
        }
        memcpy(acc + r0, sum, sizeof sum);
    }
}

void lstm_s16_gemm_by_vectors(void (*gemv)(const int8_t *, size_t, size_t, size_t, size_t, const int16_t *,
                                           int64_t *),
                              const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n,
                              const int16_t *q, size_t ldq, int64_t *acc, size_t ldacc) {
    size_t full = rows / 16 * 16;
    int64_t tail[16];
    for (size_t i = 0; i < n; i++) {
        int64_t *out = acc + i * ldacc;
        if (full == rows) {
            gemv(w, rows, groups, g0, g1, q + i * ldq, out);
            continue;
        }
        /* the kernel writes whole panels: run the last, partial panel into a 16-row buffer */
        if (full) gemv(w, full, groups, g0, g1, q + i * ldq, out);
        gemv(w + full * groups * 4, rows - full, groups, g0, g1, q + i * ldq, tail);
        memcpy(out + full, tail, (rows - full) * sizeof(int64_t));
    }
}

void lstm_s16_gemm_ref(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n,
                       const int16_t *q, size_t ldq, int64_t *acc, size_t ldacc) {
    lstm_s16_gemm_by_vectors(lstm_s16_gemv_ref, w, rows, groups, g0, g1, n, q, ldq, acc, ldacc);
}
