/* s8_cortex_m.c - int8 x int8 products (int8-dynamic layers) for Cortex-M cores with the DSP extension
 * (M4, M7, M33, M55 ...), chosen at build time (LSTM_ISA_CORTEX_M_DSP). Exact integer sums, equal to the
 * reference's.
 *
 * A block row holds 4 int8 weights (w0 w1 w2 w3) in one word. SXTB16 sign-extends bytes 0 and 2 into two
 * halfwords, SXTB16 with ROR #8 bytes 1 and 3; SMLAD multiplies two halfword pairs and adds both products
 * to an int32: 5 instructions per 4 weights (LDR, 2 SXTB16, 2 SMLAD). The activations are extracted the
 * same way once per call into a small stack buffer (2 words per group), and each group's pair is loaded
 * once for 4 rows. The sums cannot overflow (|w q| <= 2^14, at most 2^14 columns... far below 2^31). */
#include "kernels_arm.h"

#ifdef LSTM_HAVE_CORTEX_M_DSP_KERNELS
#include <arm_acle.h>
#include <stdint.h>
#include <string.h>

/* groups whose activations are extracted at a time (2 words each: 256 bytes of stack) */
#define QX_CHUNK 32

static inline uint32_t load32(const void *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline int32_t sxtb16_ror8(uint32_t x) {
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

/* acc[4 rows] (+)= the rows of 16-byte block slices at pw, pw + 64, ... against the extracted pairs
 * qx[0 .. 2 * ng). */
/* One group of 4 rows: the activation pair from qx (post-incremented by 8), the 4 block-row words at pw
 * + 4, + 8, + 12, then + 0 with pw post-incremented by 64 to the next block. 23 instructions per 16
 * weights with the loop's compare and branch. Written in assembly so that the compiler's scheduling (which
 * hoists every load and then spills accumulators) cannot change the count. */
#define GROUP_ASM                                                                                            \
    "ldrd   %[qa], %[qb], [%[qx]], #8\n\t"                                                                   \
    "ldr    %[w], [%[pw], #4]\n\t"                                                                           \
    "sxtb16 %[t], %[w]\n\t"                                                                                  \
    "smlad  %[a1], %[t], %[qa], %[a1]\n\t"                                                                   \
    "sxtb16 %[t], %[w], ror #8\n\t"                                                                          \
    "smlad  %[a1], %[t], %[qb], %[a1]\n\t"                                                                   \
    "ldr    %[w], [%[pw], #8]\n\t"                                                                           \
    "sxtb16 %[t], %[w]\n\t"                                                                                  \
    "smlad  %[a2], %[t], %[qa], %[a2]\n\t"                                                                   \
    "sxtb16 %[t], %[w], ror #8\n\t"                                                                          \
    "smlad  %[a2], %[t], %[qb], %[a2]\n\t"                                                                   \
    "ldr    %[w], [%[pw], #12]\n\t"                                                                          \
    "sxtb16 %[t], %[w]\n\t"                                                                                  \
    "smlad  %[a3], %[t], %[qa], %[a3]\n\t"                                                                   \
    "sxtb16 %[t], %[w], ror #8\n\t"                                                                          \
    "smlad  %[a3], %[t], %[qb], %[a3]\n\t"                                                                   \
    "ldr    %[w], [%[pw]], #64\n\t"                                                                          \
    "sxtb16 %[t], %[w]\n\t"                                                                                  \
    "smlad  %[a0], %[t], %[qa], %[a0]\n\t"                                                                   \
    "sxtb16 %[t], %[w], ror #8\n\t"                                                                          \
    "smlad  %[a0], %[t], %[qb], %[a0]\n\t"

#define GROUP_OPERANDS                                                                                       \
    : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [pw] "+r"(pw), [qx] "+r"(qx),              \
      [qa] "=&r"(qa), [qb] "=&r"(qb), [w] "=&r"(wv), [t] "=&r"(t)

/* acc[4 rows] (+)= the rows of the 16-byte block slices at pw, pw + 64, ... against the extracted pairs
 * qx[0 .. 2 * ng), ng >= 1. */
static void four_rows(const unsigned char *pw, const int32_t *qx, size_t ng, int32_t *out, int first) {
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, qa, qb, wv, t;
    if (!first) {
        a0 = out[0];
        a1 = out[1];
        a2 = out[2];
        a3 = out[3];
    }
    const int32_t *end = qx + 2 * ng;
    if (ng & 1) __asm__(GROUP_ASM GROUP_OPERANDS : : "memory");
    if (qx != end)
        __asm__("1:\n\t" GROUP_ASM GROUP_ASM "cmp    %[qx], %[end]\n\t"
                "bne    1b\n\t" GROUP_OPERANDS : [end] "r"(end) : "cc", "memory");
    out[0] = a0;
    out[1] = a1;
    out[2] = a2;
    out[3] = a3;
}

void lstm_s8_gemv_cortex_m(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, const int8_t *q,
                           const int32_t *rowsum, int32_t *acc) {
    (void)rowsum;
    size_t prows = lstm_r16(rows);
    if (g1 <= g0) {
        memset(acc, 0, prows * sizeof(int32_t));
        return;
    }
    int32_t qx[2 * QX_CHUNK];
    for (size_t c0 = g0; c0 < g1; c0 += QX_CHUNK) {
        size_t ng = g1 - c0 < QX_CHUNK ? g1 - c0 : QX_CHUNK;
        for (size_t g = 0; g < ng; g++) { /* (q0, q2) and (q1, q3) as halfword pairs */
            uint32_t q4 = load32(q + (c0 - g0 + g) * 4);
            qx[2 * g] = __sxtb16((int32_t)q4);
            qx[2 * g + 1] = sxtb16_ror8(q4);
        }
        for (size_t r0 = 0; r0 < prows; r0 += 16) {
            const unsigned char *panel = (const unsigned char *)w + ((r0 / 16) * groups + c0) * 64;
            for (size_t j = 0; j < 4; j++) four_rows(panel + 16 * j, qx, ng, acc + r0 + 4 * j, c0 == g0);
        }
    }
}

void lstm_s8_gemm_cortex_m(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n,
                           const int8_t *q, size_t ldq, const int32_t *rowsum, int32_t *acc, size_t ldacc) {
    lstm_s8_gemm_by_vectors(lstm_s8_gemv_cortex_m, w, rows, groups, g0, g1, n, q, ldq, rowsum, acc, ldacc);
}

#else
typedef int lstm_s8_cortex_m_unused; /* ISO C forbids an empty translation unit */
#endif
