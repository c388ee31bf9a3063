/* s16_cortex_m.c - int8 x int16 products (int8-a16 layers) for Cortex-M cores with the DSP extension (the
 * CORTEX_M_DSP table). Exact integer sums, equal to the reference's.
 *
 * A block row holds 4 int8 weights (w0 w1 w2 w3) in one word: SXTB16 gives the halfwords (w0, w2), SXTB16
 * with ROR #8 (w1, w3); the group's activations are packed the same way, (q0, q2) and (q1, q3), once per
 * group for the panel's 16 rows; SMLAD adds both 16 x 16 products to the row's int32. Within a block of
 * LSTM_S16_BLOCK_GROUPS groups the int32 cannot overflow (kernels.h); each block's sums are added into
 * int64. Weights are read a word at a time (model tensors are 4-byte aligned). */
#include "kernels_arm.h"

#ifdef LSTM_HAVE_CORTEX_M_DSP_KERNELS
#include <arm_acle.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t load32(const void *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline uint32_t sxtb16_ror8(uint32_t x) {
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

static inline uint32_t pair(int16_t lo, int16_t hi) { return (uint32_t)(uint16_t)lo | (uint32_t)(uint16_t)hi << 16; }

/* One panel's 16 row sums over [g0, g1), rows < valid stored. */
static void panel(const int8_t *p, size_t g0, size_t g1, const int16_t *q, int64_t *out, size_t valid) {
    int64_t total[16] = {0};
    for (size_t gb = g0; gb < g1; gb += LSTM_S16_BLOCK_GROUPS) {
        size_t ge = g1 - gb < LSTM_S16_BLOCK_GROUPS ? g1 : gb + LSTM_S16_BLOCK_GROUPS;
        int32_t a[16] = {0};
        for (size_t g = gb; g < ge; g++) {
            const int8_t *b = p + g * 64;
            const int16_t *qg = q + (g - g0) * 4;
            uint32_t q02 = pair(qg[0], qg[2]), q13 = pair(qg[1], qg[3]);
            for (int r = 0; r < 16; r++) {
                uint32_t wv = load32(b + 4 * r);
                a[r] = __smlad(__sxtb16(wv), q02, a[r]);
                a[r] = __smlad(sxtb16_ror8(wv), q13, a[r]);
            }
        }
        for (int r = 0; r < 16; r++) total[r] += a[r];
    }
    memcpy(out, total, (valid < 16 ? valid : 16) * sizeof(int64_t));
}

void lstm_s16_gemv_cortex_m(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, const int16_t *q,
                            int64_t *acc) {
    for (size_t r0 = 0; r0 < rows; r0 += 16) panel(w + (r0 / 16) * groups * 64, g0, g1, q, acc + r0, rows - r0);
}

void lstm_s16_gemm_cortex_m(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n,
                            const int16_t *q, size_t ldq, int64_t *acc, size_t ldacc) {
    for (size_t r0 = 0; r0 < rows; r0 += 16)
        for (size_t i = 0; i < n; i++)
            panel(w + (r0 / 16) * groups * 64, g0, g1, q + i * ldq, acc + i * ldacc + r0, rows - r0);
}

#else
typedef int lstm_s16_cortex_m_unused; /* ISO C forbids an empty translation unit */
#endif
