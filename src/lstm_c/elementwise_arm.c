/* elementwise_arm.c - the elementwise kernels of elementwise_impl.h compiled for the NEON table: the same
 * source as the portable twin, hence the same bits.
 *  - aarch64: Advanced SIMD is IEEE (denormals kept: Linux leaves FPCR.FZ clear), the compiler vectorises
 *    these loops 4 wide with no attribute needed.
 *  - 32-bit ARM: NEON arithmetic flushes denormals to zero, so float code stays on the IEEE scalar VFP
 *    unit (the compiler never vectorises float loops with NEON without -funsafe-math-optimizations); the
 *    attribute only lets it use NEON for integer and data-movement work.
 *  - the precise cell of fp32 layers: on aarch64 cell_f32_simd.h with NEON intrinsics, the "fma" family's
 *    bits (those of AVX2 and AVX-512); on 32-bit ARM the portable form, the "mul+add" family's (the
 *    reference table's bits).
 * The Cortex-M DSP table has its own scalar form (elementwise_cortex_m.c). */
#include "kernels_arm.h"

#ifdef LSTM_HAVE_NEON_KERNELS
#define LSTM_EW_SUFFIX neon
#if defined(LSTM_NEON32) && !defined(__ARM_NEON)
#define LSTM_EW_ATTR __attribute__((target("fpu=neon")))
#else
#define LSTM_EW_ATTR
#endif
#if defined(__aarch64__)
#define LSTM_EW_OWN_CELL_F32 /* below */
#endif
#include "elementwise_impl.h"
#undef LSTM_EW_SUFFIX
#undef LSTM_EW_ATTR

#if defined(__aarch64__)
/* the "fma" family's precise cell: cell_f32_simd.h with 2 doubles a vector, AVX2's and AVX-512's bits */
#include <arm_neon.h>
#define CV_NAME(x) x##_neon
#define CV_ATTR
#define CV_D float64x2_t
#define CV_W 2
#define CV_K 4
#define CV_U(a) vreinterpretq_u64_f64(a)
#define CV_F(a) vreinterpretq_f64_u64(a)
#define CV_SET1(x) vdupq_n_f64(x)
#define CV_ADD(a, b) vaddq_f64(a, b)
#define CV_SUB(a, b) vsubq_f64(a, b)
#define CV_MUL(a, b) vmulq_f64(a, b)
#define CV_DIV(a, b) vdivq_f64(a, b)
#define CV_FMA(a, b, c) vfmaq_f64(c, a, b)
#define CV_FNMA(a, b, c) vfmsq_f64(c, a, b)
#define CV_MAX(a, b) vbslq_f64(vcgtq_f64(a, b), a, b) /* a > b ? a : b, as x86's MAXPD (FMAX differs on NaN) */
#define CV_MIN(a, b) vbslq_f64(vcltq_f64(a, b), a, b)
#define CV_AND(a, b) CV_F(vandq_u64(CV_U(a), CV_U(b)))
#define CV_OR(a, b) CV_F(vorrq_u64(CV_U(a), CV_U(b)))
#define CV_ANDNOT(a, b) CV_F(vbicq_u64(CV_U(b), CV_U(a)))
#define CV_SHL52_ADD(t, k) CV_F(vaddq_u64(vshlq_n_u64(CV_U(t), 52), vdupq_n_u64((uint64_t)(k))))
#define CV_LOADF(p) vcvt_f64_f32(vld1_f32(p))
#define CV_LOADF_N(p, n) vcvt_f64_f32(vld1_lane_f32(p, vdup_n_f32(0.0f), 0)) /* n == 1 */
#define CV_STOREF(p, v) vst1_f32(p, vcvt_f32_f64(v))
#define CV_STOREF_N(p, v, n) vst1_lane_f32(p, vcvt_f32_f64(v), 0)
#include "cell_f32_simd.h"
#endif
#else
typedef int lstm_elementwise_arm_unused; /* ISO C forbids an empty translation unit */
#endif
