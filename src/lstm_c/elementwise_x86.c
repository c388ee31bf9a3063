/* elementwise_x86.c - the elementwise kernels of elementwise_impl.h compiled for AVX2 and for AVX-512: the
 * same source as the portable twin, vectorised 8 or 16 wide; same bits. The precise cell update of fp32 layers
 * is cell_f32_x86.c's. */
#include "kernels.h"

#ifdef LSTM_HAVE_X86_KERNELS
#define LSTM_EW_OWN_CELL_F32 /* cell_f32_x86.c */
#define LSTM_EW_SUFFIX avx2
#define LSTM_EW_ATTR __attribute__((target("avx2,fma")))
#include "elementwise_impl.h"
#undef LSTM_EW_SUFFIX
#undef LSTM_EW_ATTR

#define LSTM_EW_SUFFIX avx512
#define LSTM_EW_ATTR __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
#include "elementwise_impl.h"
#undef LSTM_EW_SUFFIX
#undef LSTM_EW_ATTR
#else
typedef int lstm_elementwise_x86_unused; /* ISO C forbids an empty translation unit */
#endif
