/* elementwise_cortex_m.c - the elementwise kernels of elementwise_impl.h for the Cortex-M DSP table, in
 * their scalar form (LSTM_EW_SCALAR): the FPU works one float at a time, so the branching exp of
 * elementwise.h and one pass per hidden unit, the same operations on the same values as the
 * portable twin, hence the same bits. With a single-precision FPU the gate epilogue is written in assembly
 * (below). */
#include "kernels_arm.h"

#ifdef LSTM_HAVE_CORTEX_M_DSP_KERNELS
#define LSTM_EW_SUFFIX cortex_m
#define LSTM_EW_ATTR
#define LSTM_EW_SCALAR 1
#if defined(__ARM_FP) && (__ARM_FP & 4)
#define LSTM_EW_OWN_Q8_GATES 1 /* in assembly, below; without a single-precision FPU the C one */
#endif
#include "elementwise_impl.h"
#undef LSTM_EW_SUFFIX
#undef LSTM_EW_ATTR
#undef LSTM_EW_SCALAR

#ifdef LSTM_EW_OWN_Q8_GATES
/* One row of q8_gates: y = (bias + (float)acc_x * (sx * scale_x)) + (float)acc_h * (sh * scale_h), the
 * portable kernel's operations: VCVT.F32.S32 rounds to nearest like the C conversion, and VMLA (not
 * VFMA) rounds the product before the addition, as VMUL then VADD would. 12 instructions. */
#define Q8_ROW_ASM                                                                                           \
    "vldmia       %[ax]!, {%[a]}\n\t"                                                                        \
    "vldmia       %[scx]!, {%[s]}\n\t"                                                                       \
    "vcvt.f32.s32 %[a], %[a]\n\t"                                                                            \
    "vmul.f32     %[s], %[sxv], %[s]\n\t"                                                                    \
    "vldmia       %[b]!, {%[acc]}\n\t"                                                                       \
    "vmla.f32     %[acc], %[a], %[s]\n\t"                                                                    \
    "vldmia       %[ah]!, {%[a]}\n\t"                                                                        \
    "vldmia       %[sch]!, {%[s]}\n\t"                                                                       \
    "vcvt.f32.s32 %[a], %[a]\n\t"                                                                            \
    "vmul.f32     %[s], %[shv], %[s]\n\t"                                                                    \
    "vmla.f32     %[acc], %[a], %[s]\n\t"                                                                    \
    "vstmia       %[y]!, {%[acc]}\n\t"

void lstm_q8_gates_cortex_m(float *y, const float *bias, const int32_t *acc_x, float sx, const float *scale_x,
                            const int32_t *acc_h, float sh, const float *scale_h, size_t n) {
    float a, s, acc;
    float *end = y + n;
    if (n & 1)
        __asm__ volatile(Q8_ROW_ASM
                         : [y] "+r"(y), [b] "+r"(bias), [ax] "+r"(acc_x), [scx] "+r"(scale_x), [ah] "+r"(acc_h),
                           [sch] "+r"(scale_h), [a] "=&t"(a), [s] "=&t"(s), [acc] "=&t"(acc)
                         : [sxv] "t"(sx), [shv] "t"(sh)
                         : "memory");
    if (y != end) /* two rows per iteration */
        __asm__ volatile("1:\n\t" Q8_ROW_ASM Q8_ROW_ASM "cmp          %[y], %[end]\n\t"
                         "bne          1b\n\t"
                         : [y] "+r"(y), [b] "+r"(bias), [ax] "+r"(acc_x), [scx] "+r"(scale_x), [ah] "+r"(acc_h),
                           [sch] "+r"(scale_h), [a] "=&t"(a), [s] "=&t"(s), [acc] "=&t"(acc)
                         : [sxv] "t"(sx), [shv] "t"(sh), [end] "r"(end)
                         : "cc", "memory");
}
#undef LSTM_EW_OWN_Q8_GATES
#endif

#else
typedef int lstm_elementwise_cortex_m_unused; /* ISO C forbids an empty translation unit */
#endif
