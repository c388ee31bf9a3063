/* elementwise_arm.c - the elementwise kernels of elementwise_impl.h compiled for the NEON table: the same
 * source as the portable twin, hence the same bits.
 *  - aarch64: Advanced SIMD is IEEE (denormals kept: Linux leaves FPCR.FZ clear), the compiler vectorises
 *    these loops 4 wide with no attribute needed.
 *  - 32-bit ARM: NEON arithmetic flushes denormals to zero, so float code stays on the IEEE scalar VFP
 *    unit (the compiler never vectorises float loops with NEON without -funsafe-math-optimizations); the
 *    attribute only lets it use NEON for integer and data-movement work.
 * The Cortex-M DSP table has its own scalar form (elementwise_cortex_m.c). */
#include "kernels_arm.h"

#ifdef LSTM_HAVE_NEON_KERNELS
#define LSTM_EW_SUFFIX neon
#if defined(LSTM_NEON32) && !defined(__ARM_NEON)
#define LSTM_EW_ATTR __attribute__((target("fpu=neon")))
#else
#define LSTM_EW_ATTR
#endif
#include "elementwise_impl.h"
#undef LSTM_EW_SUFFIX
#undef LSTM_EW_ATTR
#else
typedef int lstm_elementwise_arm_unused; /* ISO C forbids an empty translation unit */
#endif
