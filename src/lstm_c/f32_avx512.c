/* f32_avx512.c - fp32 products of our own for x86-64 AVX-512 (fused multiply-add, so fp32 layers agree
 * with the portable path within float rounding, not bit for bit). */
#include "kernels.h"

#ifdef LSTM_HAVE_X86_KERNELS
#include "kernels_x86.h"
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))

/* fp32 y += A x, A row-major: 8 rows at a time share each load of x; the 8 sums are reduced together. */
AVX512 void lstm_f32_gemv_avx512(size_t m, size_t k, const float *a, size_t lda, const float *x, float *y) {
    size_t kf = k / 16 * 16, r = 0;
    __mmask16 tail = (__mmask16)((1U << (k % 16)) - 1U);
    for (; r + 8 <= m; r += 8) {
        const float *row = a + r * lda;
        __m512 acc[8];
        for (int i = 0; i < 8; i++) acc[i] = _mm512_setzero_ps();
        for (size_t j = 0; j < kf; j += 16) {
            __m512 xv = _mm512_loadu_ps(x + j);
            for (int i = 0; i < 8; i++) acc[i] = _mm512_fmadd_ps(_mm512_loadu_ps(row + i * lda + j), xv, acc[i]);
        }
        if (tail) {
            __m512 xv = _mm512_maskz_loadu_ps(tail, x + kf);
            for (int i = 0; i < 8; i++)
                acc[i] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, row + i * lda + kf), xv, acc[i]);
        }
        __m256 half[8];
        for (int i = 0; i < 8; i++)
            half[i] = _mm256_add_ps(_mm512_castps512_ps256(acc[i]),
                                    _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc[i]), 1)));
        /* pairwise adds leave rows 0-3 in each 128-bit half of u[0] and rows 4-7 in u[1] */
        __m256 u0 = _mm256_hadd_ps(_mm256_hadd_ps(half[0], half[1]), _mm256_hadd_ps(half[2], half[3]));
        __m256 u1 = _mm256_hadd_ps(_mm256_hadd_ps(half[4], half[5]), _mm256_hadd_ps(half[6], half[7]));
        __m256 sums = _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
        _mm256_storeu_ps(y + r, _mm256_add_ps(_mm256_loadu_ps(y + r), sums));
    }
    for (; r < m; r++) {
        __m512 acc = _mm512_setzero_ps();
        for (size_t j = 0; j < kf; j += 16)
            acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + r * lda + j), _mm512_loadu_ps(x + j), acc);
        if (tail)
            acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, a + r * lda + kf), _mm512_maskz_loadu_ps(tail, x + kf), acc);
        y[r] += _mm512_reduce_add_ps(acc);
    }
}

/* The sums of 4 vectors, as [s(a) s(b) s(c) s(d)]. */
AVX512 static inline __m128 sum4(__m512 a, __m512 b, __m512 c, __m512 d) {
    __m512 in[4] = {a, b, c, d};
    __m256 half[4];
    for (int i = 0; i < 4; i++)
        half[i] = _mm256_add_ps(_mm512_castps512_ps256(in[i]),
                                _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(in[i]), 1)));
    __m256 u = _mm256_hadd_ps(_mm256_hadd_ps(half[0], half[1]), _mm256_hadd_ps(half[2], half[3]));
    return _mm_add_ps(_mm256_castps256_ps128(u), _mm256_extractf128_ps(u, 1));
}

/* fp32 C[n][m] += X[n][k] W[m][k]^T: tiles of 4 vectors x 4 rows of W, 16 accumulators in registers;
 * the vectors and rows past the tiles go through sgemv_avx512. */
AVX512 void lstm_f32_gemm_avx512(size_t n, size_t m, size_t k, const float *x, size_t ldx, const float *w,
                                   size_t ldw, float *c, size_t ldc) {
    size_t kf = k / 16 * 16, n4 = n / 4 * 4, m4 = m / 4 * 4;
    __mmask16 tail = (__mmask16)((1U << (k % 16)) - 1U);
    for (size_t i = 0; i < n4; i += 4) {
        const float *x0 = x + i * ldx;
        for (size_t r = 0; r < m4; r += 4) {
            const float *w0 = w + r * ldw;
            __m512 a[4][4];
            for (int v = 0; v < 4; v++)
                for (int j = 0; j < 4; j++) a[v][j] = _mm512_setzero_ps();
            for (size_t p = 0; p <= kf; p += 16) {
                __mmask16 lanes = p < kf ? (__mmask16)0xFFFF : tail;
                if (!lanes) break;
                __m512 wv[4], xv[4];
                for (int j = 0; j < 4; j++) wv[j] = _mm512_maskz_loadu_ps(lanes, w0 + j * ldw + p);
                for (int v = 0; v < 4; v++) xv[v] = _mm512_maskz_loadu_ps(lanes, x0 + v * ldx + p);
                for (int v = 0; v < 4; v++)
                    for (int j = 0; j < 4; j++) a[v][j] = _mm512_fmadd_ps(xv[v], wv[j], a[v][j]);
            }
            for (int v = 0; v < 4; v++) {
                float *cv = c + (i + v) * ldc + r;
                _mm_storeu_ps(cv, _mm_add_ps(_mm_loadu_ps(cv), sum4(a[v][0], a[v][1], a[v][2], a[v][3])));
            }
        }
        if (m4 < m)
            for (size_t v = 0; v < 4; v++) lstm_f32_gemv_avx512(m - m4, k, w + m4 * ldw, ldw, x0 + v * ldx, c + (i + v) * ldc + m4);
    }
    for (size_t i = n4; i < n; i++) lstm_f32_gemv_avx512(m, k, w, ldw, x + i * ldx, c + i * ldc);
}

#else
typedef int lstm_f32_avx512_unused; /* ISO C forbids an empty translation unit */
#endif
