/* kernels_arm.h - the ARM kernels that dispatch.c puts in the NEON, NEON_DOT and CORTEX_M_DSP tables, and
 * which of them this build has:
 *  - LSTM_HAVE_NEON_KERNELS: aarch64 (Advanced SIMD is part of the base ISA), or 32-bit ARM with a
 *    hard-float ABI (armhf, ARMv7-A and up): with GCC the NEON files carry target("fpu=neon") attributes, so
 *    a baseline VFP build holds them and dispatch.c enables them only when the CPU reports NEON; clang
 *    declares NEON intrinsics only for a NEON build (-mfpu=neon), so there they need one.
 *  - LSTM_HAVE_NEON_DOT_KERNELS: aarch64; the SDOT kernels carry target("+dotprod") and run only on CPUs
 *    that report the dot-product extension (ARMv8.2-A and later).
 *  - LSTM_HAVE_CORTEX_M_DSP_KERNELS: an M-profile core with the DSP extension (Cortex-M4, M7, M33, ...):
 *    SXTB16 + SMLAD, chosen at build time (there is no run-time detection on bare metal).
 *  - LSTM_HAVE_ARMV6M_KERNELS: an ARMv6-M core (Cortex-M0, M0+, M1): the Thumb-1 assembly panel product
 *    lstm_s16_panel_armv6m (s16_armv6m.c). It is no table of its own: such a core gets the reference table,
 *    whose gemv_s16 (s16_ref.c) runs its panels through this kernel, and the int16x8 layer (int_step.c)
 *    calls it for its int32 sums.
 * Little-endian only (the kernels read 4 int8 as one word); LSTM_NO_SIMD turns all of them off. */
#ifndef LSTM_KERNELS_ARM_H
#define LSTM_KERNELS_ARM_H

#include "kernels.h"

#if (defined(__GNUC__) || defined(__clang__)) && !defined(LSTM_NO_SIMD) && !defined(__ARM_BIG_ENDIAN)
#if defined(__aarch64__)
#define LSTM_HAVE_NEON_KERNELS 1
#define LSTM_HAVE_NEON_DOT_KERNELS 1
#elif defined(__arm__) && (defined(__ARM_NEON) || (defined(__ARM_PCS_VFP) && !defined(__clang__))) &&          \
    defined(__ARM_ARCH_PROFILE) && __ARM_ARCH_PROFILE == 'A' && __ARM_ARCH >= 7
#define LSTM_HAVE_NEON_KERNELS 1
#define LSTM_NEON32 1 /* 32-bit ARM: no FMA in the fp32 kernels, IEEE scalar VFP where bits matter */
#endif
#if defined(__arm__) && defined(__ARM_FEATURE_DSP) && defined(__ARM_ARCH_PROFILE) && __ARM_ARCH_PROFILE == 'M'
#define LSTM_HAVE_CORTEX_M_DSP_KERNELS 1
#endif
#if defined(__ARM_ARCH_6M__)
#define LSTM_HAVE_ARMV6M_KERNELS 1
#endif
#endif

#ifdef LSTM_HAVE_NEON_KERNELS
LSTM_DECLARE_F32_KERNELS(neon)
void lstm_s8_gemv_f32_neon(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, const float *x,
                           const float *scale, float *y);
void lstm_s8_gemm_f32_neon(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n,
                           const float *x, size_t ldx, const float *scale, float *y, size_t ldy);
void lstm_s8_gemv_neon(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, const int8_t *q,
                       const int32_t *rowsum, int32_t *acc);
void lstm_s8_gemm_neon(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n,
                       const int8_t *q, size_t ldq, const int32_t *rowsum, int32_t *acc, size_t ldacc);
float lstm_quantize_neon(const float *v, size_t n, int8_t *q, size_t padded);
void lstm_q8_gates_neon(float *y, const float *bias, const int32_t *acc_x, float sx, const float *scale_x,
                        const int32_t *acc_h, float sh, const float *scale_h, size_t n);
void lstm_cell_update_neon(size_t hidden, float *gates, float *c, float *hfull);
void lstm_activate_neon(unsigned activation, float *v, size_t n);
void lstm_cell_update_f32_neon(size_t hidden, float *gates, float *c, float *hfull);
void lstm_cell_update_f32_range_neon(size_t hidden, size_t j0, size_t j1, const float *gates, float *c,
                                      float *hfull);
void lstm_activate_f32_neon(unsigned activation, float *v, size_t n);
void lstm_s16_gemv_neon(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, const int16_t *q,
                        int64_t *acc);
void lstm_s16_gemm_neon(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n,
                        const int16_t *q, size_t ldq, int64_t *acc, size_t ldacc);
float lstm_quantize16_neon(const float *v, size_t n, int16_t *q, size_t padded);
void lstm_q16_gates_neon(float *y, const float *bias, const int64_t *acc_x, float sx, const float *scale_x,
                         const int64_t *acc_h, float sh, const float *scale_h, size_t n);
#endif

#ifdef LSTM_HAVE_NEON_DOT_KERNELS
void lstm_s8_gemv_neon_dot(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, const int8_t *q,
                           const int32_t *rowsum, int32_t *acc);
void lstm_s8_gemm_neon_dot(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n,
                           const int8_t *q, size_t ldq, const int32_t *rowsum, int32_t *acc, size_t ldacc);
#endif

#ifdef LSTM_HAVE_CORTEX_M_DSP_KERNELS
/* with a single-precision FPU that has FMA (f32_cortex_m.c; else the table uses the portable ones) */
#if defined(__ARM_FP) && (__ARM_FP & 4) && defined(__ARM_FEATURE_FMA)
#define LSTM_HAVE_CORTEX_M_FPU_KERNELS 1
LSTM_DECLARE_F32_KERNELS(cortex_m)
#endif
LSTM_DECLARE_INT_KERNELS(cortex_m)
/* the elementwise kernels in their scalar-FPU form (elementwise_cortex_m.c) */
float lstm_quantize_cortex_m(const float *v, size_t n, int8_t *q, size_t padded);
void lstm_q8_gates_cortex_m(float *y, const float *bias, const int32_t *acc_x, float sx, const float *scale_x,
                            const int32_t *acc_h, float sh, const float *scale_h, size_t n);
void lstm_cell_update_cortex_m(size_t hidden, float *gates, float *c, float *hfull);
void lstm_activate_cortex_m(unsigned activation, float *v, size_t n);
float lstm_quantize16_cortex_m(const float *v, size_t n, int16_t *q, size_t padded);
void lstm_q16_gates_cortex_m(float *y, const float *bias, const int64_t *acc_x, float sx, const float *scale_x,
                             const int64_t *acc_h, float sh, const float *scale_h, size_t n);
#endif

#ifdef LSTM_HAVE_ARMV6M_KERNELS
/* out[r] = sum over the ngroups groups from b of the panel's row r (4 weights a group) times the group's 4
 * activations of x, for r < 16, as int32 (exact while the true sums fit int32: at most
 * LSTM_S16_BLOCK_GROUPS groups, or LSTM_INT_MAX_WIDTH / 4 in an int16x8 layer). b: a panel's first group
 * block to use (64 bytes a group, 4-byte aligned: model tensors are); x: 4 * ngroups int16; ngroups may
 * be 0 (all sums 0). */
void lstm_s16_panel_armv6m(const int8_t *b, const int16_t *x, uint32_t ngroups, int32_t *out);
#endif

#endif /* LSTM_KERNELS_ARM_H */
