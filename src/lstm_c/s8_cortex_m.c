/* s8_cortex_m.c - int8 x int8 products (int8-dynamic layers) for Cortex-M cores with the DSP extension
 * (M4, M7, M33, M55 ...), chosen at build time (LSTM_ISA_CORTEX_M_DSP). Exact integer sums, equal to the
 * reference's.
 *
 * A block row holds 4 int8 weights (w0 w1 w2 w3) in one word. SXTB16 sign-extends bytes 0 and 2 into two
 * halfwords, SXTB16 with ROR #8 bytes 1 and 3; SMLAD multiplies two halfword pairs and adds both products
 * to an int32. The activations are extracted the same way once per call into a small stack buffer (2
 * words per group); each group's pair is loaded once (LDRD) for 4 rows, whose 4 words come in 2 LDRD:
 * 19 instructions per 16 weights. The sums are exact: |w q| <= 127 * 127 and at most LSTM_MAX_DIM / 4
 * groups, far below 2^31. Weights must be 4-byte aligned (LDRD): model tensors are. */
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

/* One group (16 weights) of the 4 rows in r4-r7: the activation pair (q0, q2), (q1, q3) from [r1] (post-
 * incremented by 8), block rows 2 and 3 from [r0 + 8], rows 0 and 1 from [r0] with r0 post-incremented by
 * 64 to the next block of the panel. 19 instructions. */
#define GROUP_ASM                                                                                            \
    "ldrd   r8, r9, [r1], #8\n\t"                                                                            \
    "ldrd   r10, r11, [r0, #8]\n\t"                                                                          \
    "sxtb16 r12, r10\n\t"                                                                                    \
    "smlad  r6, r12, r8, r6\n\t"                                                                             \
    "sxtb16 r12, r10, ror #8\n\t"                                                                            \
    "smlad  r6, r12, r9, r6\n\t"                                                                             \
    "sxtb16 r12, r11\n\t"                                                                                    \
    "smlad  r7, r12, r8, r7\n\t"                                                                             \
    "sxtb16 r12, r11, ror #8\n\t"                                                                            \
    "smlad  r7, r12, r9, r7\n\t"                                                                             \
    "ldrd   r10, r11, [r0], #64\n\t"                                                                         \
    "sxtb16 r12, r10\n\t"                                                                                    \
    "smlad  r4, r12, r8, r4\n\t"                                                                             \
    "sxtb16 r12, r10, ror #8\n\t"                                                                            \
    "smlad  r4, r12, r9, r4\n\t"                                                                             \
    "sxtb16 r12, r11\n\t"                                                                                    \
    "smlad  r5, r12, r8, r5\n\t"                                                                             \
    "sxtb16 r12, r11, ror #8\n\t"                                                                            \
    "smlad  r5, r12, r9, r5\n\t"

/* panel(pw, qx, ng, out): the 16 rows of one panel over ng >= 1 groups: pw is the panel's first block of
 * the range, qx the ng extracted activation pairs, out[16] the row sums (stored, or added to with the
 * _add variant). For 4 rows at a time (r4-r7, so LDM / STM keep row order) the group loop runs eight
 * groups per iteration, entered through a TBH table so that the first pass does ng mod 8 of them (8 when
 * ng is a multiple of 8); then pw and qx rewind to the next 4 rows. Written in assembly so that the
 * instruction count cannot depend on the compiler's scheduling (GCC hoists every load of the loop and
 * spills accumulators). */
#define PANEL_ASM(init)                                                                                      \
    "push   {r4-r11, lr}\n\t"                                                                                \
    "add    r12, r3, #64\n\t"                                                                                \
    "push   {r12}\n\t" /* [sp]: end of out */                                                                \
    "lsls   r2, r2, #3\n\t" /* r2: bytes of qx */                                                            \
    "add    lr, r1, r2\n\t" /* lr: end of qx */                                                              \
    "1:\n\t" init "ubfx   r12, r2, #3, #3\n\t" /* ng mod 8 */                                                \
    "tbh    [pc, r12, lsl #1]\n\t"                                                                           \
    "9:\n\t"                                                                                                 \
    ".hword (20f - 9b) / 2, (27f - 9b) / 2, (26f - 9b) / 2, (25f - 9b) / 2\n\t"                              \
    ".hword (24f - 9b) / 2, (23f - 9b) / 2, (22f - 9b) / 2, (21f - 9b) / 2\n\t"                              \
    "20:\n\t" GROUP_ASM "21:\n\t" GROUP_ASM "22:\n\t" GROUP_ASM "23:\n\t" GROUP_ASM                          \
    "24:\n\t" GROUP_ASM "25:\n\t" GROUP_ASM "26:\n\t" GROUP_ASM "27:\n\t" GROUP_ASM                          \
    "cmp    r1, lr\n\t"                                                                                      \
    "bne    20b\n\t"                                                                                         \
    "stmia  r3!, {r4-r7}\n\t"                                                                                \
    "sub    r1, r1, r2\n\t"                                                                                  \
    "sub    r0, r0, r2, lsl #3\n\t"                                                                          \
    "add    r0, r0, #16\n\t"                                                                                 \
    "ldr    r12, [sp]\n\t"                                                                                   \
    "cmp    r3, r12\n\t"                                                                                     \
    "bne    1b\n\t"                                                                                          \
    "add    sp, sp, #4\n\t"                                                                                  \
    "pop    {r4-r11, pc}\n\t"

/* naked: the body is the assembly alone (clang allows no other statement, so the parameters are marked
 * unused instead of cast to void) */
#define NAKED __attribute__((naked, noinline)) static
#define UNUSED __attribute__((unused))

NAKED void panel_set(const unsigned char *pw UNUSED, const int32_t *qx UNUSED, size_t ng UNUSED,
                     int32_t *out UNUSED) {
    __asm__ volatile(PANEL_ASM("movs   r4, #0\n\tmovs   r5, #0\n\tmovs   r6, #0\n\tmovs   r7, #0\n\t"));
}

NAKED void panel_add(const unsigned char *pw UNUSED, const int32_t *qx UNUSED, size_t ng UNUSED,
                     int32_t *out UNUSED) {
    __asm__ volatile(PANEL_ASM("ldm    r3, {r4-r7}\n\t"));
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
            (c0 == g0 ? panel_set : panel_add)(panel, qx, ng, acc + r0);
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
