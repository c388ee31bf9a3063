/* s16_armv6m.c - the int8 x int16 panel product in Thumb-1 assembly for ARMv6-M cores (Cortex-M0, M0+, M1:
 * no DSP extension, no SIMD, no 32 x 32 -> 64-bit multiply). Built only for ARMv6-M (kernels_arm.h,
 * LSTM_HAVE_ARMV6M_KERNELS); there the reference table's gemv_s16 (s16_ref.c) runs every panel through it,
 * and lstm_int_layer (int_step.c) calls it directly for its int32 sums. Exact: the same sums as the portable
 * loop (tests/c/test_s16.c, run on the Cortex-M0 by .ci/cross.sh's cortex-m0-tests target).
 *
 * Per row and group of 4 weights, 17 instructions: the running sum is loaded from the stack, the row's 4
 * weights in one word load (little-endian: byte j is column j), each byte sign-extended in place (SXTB for
 * byte 0; LSLS + ASRS #24 for bytes 1 and 2; ASRS #24 for byte 3), 4 MULS by the group's 4 activations
 * (held in r4-r7 for the whole group), 4 ADDS, and the sum stored back. The 16 sums live on the stack
 * because Thumb-1 data-processing instructions reach only r0-r7. Every product and sum is modulo 2^32, so
 * the int32 result is exact whenever the true sum fits int32: the callers pass at most
 * LSTM_S16_BLOCK_GROUPS groups (127 * 32767 * 4 * 128 < 2^31, kernels.h), or, for int16x8 layers, at most
 * LSTM_INT_MAX_WIDTH / 4 groups of int16 inputs (127 * 32768 * 512 < 2^31). */
#include "kernels_arm.h"

#ifdef LSTM_HAVE_ARMV6M_KERNELS

/* One row r of the panel (byte offset o = 4 r in the group's block and in the stack's sums). */
#define S16_ROW(o)                                                                                          \
    "ldr r3, [sp, #" #o "]\n\t"   /* sum of row r */                                                      \
    "ldr r1, [r0, #" #o "]\n\t"   /* its 4 weights */                                                     \
    "sxtb r2, r1\n\t"             /* w0 */                                                                \
    "muls r2, r4, r2\n\t"                                                                                   \
    "adds r3, r3, r2\n\t"                                                                                   \
    "lsls r2, r1, #16\n\t"        /* w1 */                                                                \
    "asrs r2, r2, #24\n\t"                                                                                  \
    "muls r2, r5, r2\n\t"                                                                                   \
    "adds r3, r3, r2\n\t"                                                                                   \
    "lsls r2, r1, #8\n\t"         /* w2 */                                                                \
    "asrs r2, r2, #24\n\t"                                                                                  \
    "muls r2, r6, r2\n\t"                                                                                   \
    "adds r3, r3, r2\n\t"                                                                                   \
    "asrs r1, r1, #24\n\t"        /* w3 */                                                                \
    "muls r1, r7, r1\n\t"                                                                                   \
    "adds r3, r3, r1\n\t"                                                                                   \
    "str r3, [sp, #" #o "]\n\t"

/* Zero the stack sum of row r (offset o = 4 r). */
#define S16_ZERO(o) "str r3, [sp, #" #o "]\n\t"
/* Copy the sum of row r to out[r]. */
#define S16_OUT(o) "ldr r1, [sp, #" #o "]\n\t" "str r1, [r3, #" #o "]\n\t"

#define S16_16(M) M(0) M(4) M(8) M(12) M(16) M(20) M(24) M(28) M(32) M(36) M(40) M(44) M(48) M(52) M(56) M(60)

/* void lstm_s16_panel_armv6m(const int8_t *b, const int16_t *x, uint32_t ngroups, int32_t *out)
 * r0 = b (advances 64 bytes a group), r8 = x (advances 4 int16 a group), r9 = groups left, r10 = out.
 * The loop is ~290 instructions long, beyond a conditional branch's reach: "beq" over an unconditional
 * "b" to go back, and the same for the 0-group entry check. */
/* one string of ~6 KB: past the 4095 characters C99 promises to support, fine for GCC and clang */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverlength-strings"
__asm__(".syntax unified\n\t"
        ".text\n\t"
        ".align 2\n\t"
        ".global lstm_s16_panel_armv6m\n\t"
        ".thumb_func\n\t"
        ".type lstm_s16_panel_armv6m, %function\n"
        "lstm_s16_panel_armv6m:\n\t"
        "push {r4, r5, r6, r7, lr}\n\t"
        "mov r4, r8\n\t"
        "mov r5, r9\n\t"
        "mov r6, r10\n\t"
        "push {r4, r5, r6}\n\t" /* r8-r10 are callee-saved too */
        "sub sp, #64\n\t"       /* the 16 int32 sums */
        "mov r10, r3\n\t"
        "mov r8, r1\n\t"
        "mov r9, r2\n\t"
        "movs r3, #0\n\t"
        S16_16(S16_ZERO)
        "cmp r2, #0\n\t"        /* 0 groups: all sums 0 */
        "bne 1f\n\t"
        "b 2f\n"
        "1:\n\t"
        "mov r1, r8\n\t"        /* the group's 4 activations, sign-extended, in r4-r7 */
        "ldrh r4, [r1, #0]\n\t"
        "sxth r4, r4\n\t"
        "ldrh r5, [r1, #2]\n\t"
        "sxth r5, r5\n\t"
        "ldrh r6, [r1, #4]\n\t"
        "sxth r6, r6\n\t"
        "ldrh r7, [r1, #6]\n\t"
        "sxth r7, r7\n\t"
        "adds r1, #8\n\t"
        "mov r8, r1\n\t"
        S16_16(S16_ROW)
        "adds r0, #64\n\t"      /* the next group's block */
        "mov r1, r9\n\t"
        "subs r1, #1\n\t"
        "mov r9, r1\n\t"
        "beq 2f\n\t"
        "b 1b\n"
        "2:\n\t"
        "mov r3, r10\n\t"
        S16_16(S16_OUT)
        "add sp, #64\n\t"
        "pop {r4, r5, r6}\n\t"
        "mov r8, r4\n\t"
        "mov r9, r5\n\t"
        "mov r10, r6\n\t"
        "pop {r4, r5, r6, r7, pc}\n\t"
        ".size lstm_s16_panel_armv6m, .-lstm_s16_panel_armv6m\n\t");
#pragma GCC diagnostic pop

#else
typedef int lstm_s16_armv6m_unused; /* ISO C forbids an empty translation unit */
#endif
