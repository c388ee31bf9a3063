/* cell_f32_x86.c - the precise cell update of fp32 layers for the AVX2 and AVX-512 tables:
 * cell_f32_simd.h with AVX2 (4 doubles a vector) and AVX-512 (8) intrinsics, the "fma" family's bits
 * (elementwise_cell_f32.h), the same as aarch64 NEON's. elementwise_x86.c leaves this one function to this
 * file (LSTM_EW_OWN_CELL_F32): GCC's vectorisation of the portable form spilled registers and selected with
 * masks, 2x the instructions (tools/bench_elementwise.c). */
#include "kernels.h"

#ifdef LSTM_HAVE_X86_KERNELS
#include <immintrin.h>
#include <string.h>

#include "elementwise.h"
#include "kernels_x86.h"

#define CV_SET1(x) CV_PASTE(set1_pd)(x)
#define CV_ADD(a, b) CV_PASTE(add_pd)(a, b)
#define CV_SUB(a, b) CV_PASTE(sub_pd)(a, b)
#define CV_MUL(a, b) CV_PASTE(mul_pd)(a, b)
#define CV_DIV(a, b) CV_PASTE(div_pd)(a, b)
#define CV_FMA(a, b, c) CV_PASTE(fmadd_pd)(a, b, c)
#define CV_FNMA(a, b, c) CV_PASTE(fnmadd_pd)(a, b, c)
#define CV_MAX(a, b) CV_PASTE(max_pd)(a, b) /* (a > b) ? a : b, as MAXPD */
#define CV_MIN(a, b) CV_PASTE(min_pd)(a, b) /* (a < b) ? a : b, as MINPD */
#define CV_AND(a, b) CV_PASTE(and_pd)(a, b)
#define CV_OR(a, b) CV_PASTE(or_pd)(a, b)
#define CV_ANDNOT(a, b) CV_PASTE(andnot_pd)(a, b)

/* ---- AVX2: 4 lanes ---- */
#define CV_PASTE(op) _mm256_##op
#define CV_NAME(x) x##_avx2
#define CV_ATTR __attribute__((target("avx2,fma")))
#define CV_D __m256d
#define CV_W 4
#define CV_K 3 /* 16 ymm registers: 4 spills more than it gains (bench_elementwise.c) */
#define CV_SHL52_ADD(t, k)                                                                                   \
    _mm256_castsi256_pd(_mm256_add_epi64(_mm256_slli_epi64(_mm256_castpd_si256(t), 52), _mm256_set1_epi64x(k)))
#define CV_LOADF(p) _mm256_cvtps_pd(_mm_loadu_ps(p))
#define CV_STOREF(p, v) _mm_storeu_ps(p, _mm256_cvtpd_ps(v))
CV_ATTR static inline __m128i tail_mask_avx2(size_t n) { /* the first n (< 4) 32-bit lanes */
    return _mm_cmpgt_epi32(_mm_set1_epi32((int)n), _mm_setr_epi32(0, 1, 2, 3));
}
#define CV_LOADF_N(p, n) _mm256_cvtps_pd(_mm_maskload_ps(p, tail_mask_avx2(n)))
#define CV_STOREF_N(p, v, n) _mm_maskstore_ps(p, tail_mask_avx2(n), _mm256_cvtpd_ps(v))
#include "cell_f32_simd.h"
#undef CV_PASTE
#undef CV_NAME
#undef CV_ATTR
#undef CV_D
#undef CV_W
#undef CV_K
#undef CV_SHL52_ADD
#undef CV_LOADF
#undef CV_STOREF
#undef CV_LOADF_N
#undef CV_STOREF_N

/* ---- AVX-512: 8 lanes ---- */
#define CV_PASTE(op) _mm512_##op
#define CV_NAME(x) x##_avx512
#define CV_ATTR __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
#define CV_D __m512d
#define CV_W 8
#define CV_K 4
#define CV_SHL52_ADD(t, k)                                                                                   \
    _mm512_castsi512_pd(_mm512_add_epi64(_mm512_slli_epi64(_mm512_castpd_si512(t), 52), _mm512_set1_epi64(k)))
#define CV_LOADF(p) _mm512_cvtps_pd(_mm256_loadu_ps(p))
#define CV_STOREF(p, v) _mm256_storeu_ps(p, _mm512_cvtpd_ps(v))
#define CV_LOADF_N(p, n) _mm512_cvtps_pd(_mm256_maskz_loadu_ps((__mmask8)((1u << (n)) - 1u), p))
#define CV_STOREF_N(p, v, n) _mm256_mask_storeu_ps(p, (__mmask8)((1u << (n)) - 1u), _mm512_cvtpd_ps(v))
#include "cell_f32_simd.h"

#else
typedef int lstm_cell_f32_x86_unused; /* ISO C forbids an empty translation unit */
#endif
