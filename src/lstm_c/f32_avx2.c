/* f32_avx2.c - fp32 products of our own for x86-64 AVX2 + FMA (fused multiply-add, so fp32 layers agree
 * with the portable path within float rounding, not bit for bit). */
#include "kernels.h"

#ifdef LSTM_HAVE_X86_KERNELS
#include "kernels_x86.h"
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))

/* Lanes [0, k % 8) of a tail load. */
AVX2 static inline __m256i tail_mask(size_t k) {
    static const int32_t lanes[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256((const __m256i *)(const void *)(lanes + 8 - k % 8));
}

/* The sums of 4 vectors, as [s(a) s(b) s(c) s(d)]. */
AVX2 static inline __m128 sum4(__m256 a, __m256 b, __m256 c, __m256 d) {
    __m256 u = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
    return _mm_add_ps(_mm256_castps256_ps128(u), _mm256_extractf128_ps(u, 1));
}

/* y += A x, A row-major: 8 rows at a time share each load of x (8 independent FMA chains). */
AVX2 void lstm_f32_gemv_avx2(size_t m, size_t k, const float *a, size_t lda, const float *x, float *y) {
    size_t kf = k / 8 * 8, r = 0;
    __m256i tail = tail_mask(k);
    for (; r + 8 <= m; r += 8) {
        const float *row = a + r * lda;
        __m256 acc[8];
        for (int i = 0; i < 8; i++) acc[i] = _mm256_setzero_ps();
        for (size_t j = 0; j < kf; j += 8) {
            __m256 xv = _mm256_loadu_ps(x + j);
            for (int i = 0; i < 8; i++) acc[i] = _mm256_fmadd_ps(_mm256_loadu_ps(row + i * lda + j), xv, acc[i]);
        }
        if (kf < k) {
            __m256 xv = _mm256_maskload_ps(x + kf, tail);
            for (int i = 0; i < 8; i++)
                acc[i] = _mm256_fmadd_ps(_mm256_maskload_ps(row + i * lda + kf, tail), xv, acc[i]);
        }
        __m128 lo = sum4(acc[0], acc[1], acc[2], acc[3]), hi = sum4(acc[4], acc[5], acc[6], acc[7]);
        _mm_storeu_ps(y + r, _mm_add_ps(_mm_loadu_ps(y + r), lo));
        _mm_storeu_ps(y + r + 4, _mm_add_ps(_mm_loadu_ps(y + r + 4), hi));
    }
    for (; r < m; r++) {
        __m256 acc = _mm256_setzero_ps();
        for (size_t j = 0; j < kf; j += 8)
            acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + r * lda + j), _mm256_loadu_ps(x + j), acc);
        if (kf < k)
            acc = _mm256_fmadd_ps(_mm256_maskload_ps(a + r * lda + kf, tail), _mm256_maskload_ps(x + kf, tail), acc);
        __m128 s = sum4(acc, _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps());
        y[r] += _mm_cvtss_f32(s);
    }
}

/* C[n][m] += X[n][k] W[m][k]^T: tiles of 2 vectors x 4 rows of W (8 accumulators in registers, each
 * weight load feeds 2 vectors); the rows and vectors past the tiles go through lstm_f32_gemv_avx2. */
AVX2 void lstm_f32_gemm_avx2(size_t n, size_t m, size_t k, const float *x, size_t ldx, const float *w, size_t ldw,
                             float *c, size_t ldc) {
    size_t kf = k / 8 * 8, n2 = n / 2 * 2, m4 = m / 4 * 4;
    __m256i tail = tail_mask(k);
    for (size_t i = 0; i < n2; i += 2) {
        const float *x0 = x + i * ldx, *x1 = x0 + ldx;
        for (size_t r = 0; r < m4; r += 4) {
            const float *w0 = w + r * ldw;
            __m256 a0[4], a1[4];
            for (int j = 0; j < 4; j++) a0[j] = a1[j] = _mm256_setzero_ps();
            for (size_t p = 0; p < kf; p += 8) {
                __m256 xv0 = _mm256_loadu_ps(x0 + p), xv1 = _mm256_loadu_ps(x1 + p);
                for (int j = 0; j < 4; j++) {
                    __m256 wv = _mm256_loadu_ps(w0 + j * ldw + p);
                    a0[j] = _mm256_fmadd_ps(xv0, wv, a0[j]);
                    a1[j] = _mm256_fmadd_ps(xv1, wv, a1[j]);
                }
            }
            if (kf < k) {
                __m256 xv0 = _mm256_maskload_ps(x0 + kf, tail), xv1 = _mm256_maskload_ps(x1 + kf, tail);
                for (int j = 0; j < 4; j++) {
                    __m256 wv = _mm256_maskload_ps(w0 + j * ldw + kf, tail);
                    a0[j] = _mm256_fmadd_ps(xv0, wv, a0[j]);
                    a1[j] = _mm256_fmadd_ps(xv1, wv, a1[j]);
                }
            }
            float *c0 = c + i * ldc + r, *c1 = c0 + ldc;
            _mm_storeu_ps(c0, _mm_add_ps(_mm_loadu_ps(c0), sum4(a0[0], a0[1], a0[2], a0[3])));
            _mm_storeu_ps(c1, _mm_add_ps(_mm_loadu_ps(c1), sum4(a1[0], a1[1], a1[2], a1[3])));
        }
        if (m4 < m)
            for (size_t v = 0; v < 2; v++)
                lstm_f32_gemv_avx2(m - m4, k, w + m4 * ldw, ldw, x0 + v * ldx, c + (i + v) * ldc + m4);
    }
    for (size_t i = n2; i < n; i++) lstm_f32_gemv_avx2(m, k, w, ldw, x + i * ldx, c + i * ldc);
}
#else
typedef int lstm_f32_avx2_unused; /* ISO C forbids an empty translation unit */
#endif
