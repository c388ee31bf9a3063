/* s8_avx2.c - int8 kernels for x86-64 with AVX2 and FMA (compiled for any x86-64, used only when the CPU
 * has them). The int8 x int8 products are widened to int16 and summed in pairs into int32
 * (vpmaddwd): unlike u8 x s8 vpmaddubsw, which saturates its 16-bit pair sums at full 8-bit range, this
 * cannot saturate, so results equal the reference exactly for every input. */
#include "kernels.h"

#ifdef LSTM_HAVE_X86_KERNELS
#include "kernels_x86.h"
#include <immintrin.h>
#include <string.h>

#define AVX2 __attribute__((target("avx2,fma")))

/* acc[0..3] hold rows (2j, 2j + 1) as 4 partial sums each: return the 8 row sums in row order. */
AVX2 static inline __m256 eight_rows(const __m256 *acc) {
    __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(acc[0], acc[1]), _mm256_hadd_ps(acc[2], acc[3]));
    return _mm256_permutevar8x32_ps(h, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* The order of kernels.h (no FMA): the reference's bits. */
AVX2 void lstm_s8_gemv_f32_avx2(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1,
                               const float *x, const float *scale, float *y) {
    for (size_t r0 = 0; r0 < rows; r0 += 16) {
        const int8_t *panel = w + (r0 / 16) * groups * 64;
        __m256 acc[8];
        for (int j = 0; j < 8; j++) acc[j] = _mm256_setzero_ps();
        for (size_t g = g0; g < g1; g++) {
            const int8_t *b = panel + g * 64;
            __m256 xb = _mm256_broadcast_ps((const __m128 *)(const void *)(x + (g - g0) * 4));
            for (int j = 0; j < 8; j++) { /* rows 2j, 2j+1: 8 bytes -> 8 floats */
                __m128i bytes = _mm_loadl_epi64((const __m128i *)(const void *)(b + 8 * j));
                __m256 wf = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(bytes));
                acc[j] = _mm256_add_ps(acc[j], _mm256_mul_ps(wf, xb));
            }
        }
        float sums[16];
        _mm256_storeu_ps(sums, eight_rows(acc));
        _mm256_storeu_ps(sums + 8, eight_rows(acc + 4));
        for (size_t i = 0; i < 16 && r0 + i < rows; i++) y[r0 + i] += scale[r0 + i] * sums[i];
    }
}

AVX2 void lstm_s8_gemv_avx2(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1,
                              const int8_t *q, const int32_t *rowsum, int32_t *acc_out) {
    (void)rowsum;
    for (size_t r0 = 0; r0 < lstm_r16(rows); r0 += 16) {
        const int8_t *panel = w + (r0 / 16) * groups * 64;
        __m256i acc[4];
        for (int j = 0; j < 4; j++) acc[j] = _mm256_setzero_si256();
        for (size_t g = g0; g < g1; g++) {
            const int8_t *b = panel + g * 64;
            int32_t q4;
            memcpy(&q4, q + (g - g0) * 4, 4);
            __m256i qb = _mm256_cvtepi8_epi16(_mm_set1_epi32(q4)); /* q0..q3 four times, as int16 */
            for (int j = 0; j < 4; j++) { /* rows 4j..4j+3: 16 bytes -> 16 int16 -> 8 pair sums */
                __m256i wv = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(b + 16 * j)));
                acc[j] = _mm256_add_epi32(acc[j], _mm256_madd_epi16(wv, qb));
            }
        }
        /* each acc[j] holds two partial sums per row: add neighbours, restore row order */
        __m256i lo = _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc[0], acc[1]), 0xD8);
        __m256i hi = _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc[2], acc[3]), 0xD8);
        _mm256_storeu_si256((__m256i *)(void *)(acc_out + r0), lo);
        _mm256_storeu_si256((__m256i *)(void *)(acc_out + r0 + 8), hi);
    }
}

void lstm_s8_gemm_avx2(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n,
                       const int8_t *q, size_t ldq, const int32_t *rowsum, int32_t *acc, size_t ldacc) {
    lstm_s8_gemm_by_vectors(lstm_s8_gemv_avx2, w, rows, groups, g0, g1, n, q, ldq, rowsum, acc, ldacc);
}

#else
typedef int lstm_s8_avx2_unused; /* ISO C forbids an empty translation unit */
#endif
