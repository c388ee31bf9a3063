/* q8_avx512.c - int8 kernels for x86-64 with AVX-512 (F, BW, VL) and VNNI, used only when the CPU has
 * them. vpdpbusd multiplies unsigned by signed bytes, so activations go in as q + 128 and the sum is
 * corrected by 128 * rowsum(W): exact, no saturation (int32 bounds are checked when a model opens). */
#include "blas.h"
#include "kernels.h"

#ifdef LSTM_HAVE_X86_KERNELS
#include <immintrin.h>
#include <string.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,fma")))

/* Within each 128-bit lane: [a0 + a1, a2 + a3, b0 + b1, b2 + b3]. */
AVX512 static inline __m512 pair_sums(__m512 a, __m512 b) {
    return _mm512_add_ps(_mm512_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
}

/* Gather index: row r sits at position 4 * (r % 4) + r / 4. */
AVX512 static inline __m512i row_order(void) {
    return _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
}

AVX512 static void gemv_f32_avx512(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1,
                                   const float *x, const float *scale, float *y) {
    for (size_t r0 = 0; r0 < rows; r0 += 16) {
        const int8_t *panel = w + (r0 / 16) * groups * 64;
        __m512 acc[4];
        for (int j = 0; j < 4; j++) acc[j] = _mm512_setzero_ps();
        for (size_t g = g0; g < g1; g++) {
            const int8_t *b = panel + g * 64;
            __m512 xb = _mm512_broadcast_f32x4(_mm_loadu_ps(x + (g - g0) * 4));
            for (int j = 0; j < 4; j++) { /* rows 4j..4j+3: 16 bytes -> 16 floats */
                __m128i bytes = _mm_loadu_si128((const __m128i *)(const void *)(b + 16 * j));
                acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(bytes)), xb, acc[j]);
            }
        }
        /* acc[j], 128-bit lane i: the 4 partial sums of row 4j + i. Pairwise adds within lanes leave row
         * 4j + i at position 4i + j; one permutation restores row order. */
        __m512 h01 = pair_sums(acc[0], acc[1]), h23 = pair_sums(acc[2], acc[3]);
        __m512 sums = _mm512_permutexvar_ps(row_order(), pair_sums(h01, h23));
        __mmask16 valid = (__mmask16)(r0 + 16 <= rows ? 0xFFFF : (1U << (rows - r0)) - 1U);
        __m512 yv = _mm512_maskz_loadu_ps(valid, y + r0);
        yv = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(valid, scale + r0), sums, yv);
        _mm512_mask_storeu_ps(y + r0, valid, yv);
    }
}

/* Activations q[4g .. 4g+3] + 128 as unsigned bytes, in every 32-bit lane. */
AVX512 static inline __m512i q_lanes(const int8_t *q) {
    int32_t q4;
    memcpy(&q4, q, 4);
    return _mm512_xor_si512(_mm512_set1_epi32(q4), _mm512_set1_epi32((int)0x80808080U));
}

/* acc - 128 * rowsum for rows [r0, r0 + 16), stored for the rows < rows. */
AVX512 static inline void store_sums(__m512i acc, const int32_t *rowsum, size_t r0, size_t rows, int32_t *out) {
    __mmask16 valid = (__mmask16)(r0 + 16 <= rows ? 0xFFFF : (1U << (rows - r0)) - 1U);
    __m512i rs = _mm512_slli_epi32(_mm512_maskz_loadu_epi32(valid, rowsum + r0), 7);
    _mm512_mask_storeu_epi32(out + r0, valid, _mm512_sub_epi32(acc, rs));
}

/* One panel x one vector: the edges of the tiling. */
AVX512 static void tile_1x1(const int8_t *base, size_t g0, size_t g1, const int8_t *q,
                            const int32_t *rowsum, size_t r0, size_t rows, int32_t *acc) {
    __m512i a = _mm512_setzero_si512();
    for (size_t g = g0; g < g1; g++)
        a = _mm512_dpbusd_epi32(a, q_lanes(q + (g - g0) * 4), _mm512_loadu_si512(base + g * 64));
    store_sums(a, rowsum, r0, rows, acc);
}

/* Four panels (64 rows) at a time share each broadcast of the activations; the accumulators stay in
 * registers because the trip counts are constants. */
AVX512 static void gemv_s8_avx512(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1,
                                  const int8_t *q, const int32_t *rowsum, int32_t *acc_out) {
    size_t panels = lstm_r16(rows) / 16, p = 0;
    for (; p + 4 <= panels; p += 4) {
        const int8_t *base = w + p * groups * 64;
        __m512i acc[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(),
                          _mm512_setzero_si512()};
        for (size_t g = g0; g < g1; g++) {
            __m512i qb = q_lanes(q + (g - g0) * 4);
            for (int j = 0; j < 4; j++)
                acc[j] = _mm512_dpbusd_epi32(acc[j], qb, _mm512_loadu_si512(base + (j * groups + g) * 64));
        }
        for (int j = 0; j < 4; j++) store_sums(acc[j], rowsum, (p + (size_t)j) * 16, rows, acc_out);
    }
    for (; p < panels; p++) tile_1x1(w + p * groups * 64, g0, g1, q, rowsum, p * 16, rows, acc_out);
}

/* A full tile: 4 panels (64 rows) x 4 vectors. Each weight block loaded feeds 4 vectors, each broadcast
 * of activations feeds 4 panels, and the 16 accumulators stay in registers (constant trip counts). */
AVX512 static void tile_4x4(const int8_t *base, size_t groups, size_t g0, size_t g1, const int8_t *q, size_t ldq,
                            const int32_t *rowsum, size_t r0, size_t rows, int32_t *acc, size_t ldacc) {
    __m512i a[4][4];
    for (int j = 0; j < 4; j++)
        for (int v = 0; v < 4; v++) a[j][v] = _mm512_setzero_si512();
    for (size_t g = g0; g < g1; g++) {
        __m512i wb[4], qb[4];
        for (int j = 0; j < 4; j++) wb[j] = _mm512_loadu_si512(base + (j * groups + g) * 64);
        for (int v = 0; v < 4; v++) qb[v] = q_lanes(q + v * ldq + (g - g0) * 4);
        for (int j = 0; j < 4; j++)
            for (int v = 0; v < 4; v++) a[j][v] = _mm512_dpbusd_epi32(a[j][v], qb[v], wb[j]);
    }
    for (int j = 0; j < 4; j++)
        for (int v = 0; v < 4; v++) store_sums(a[j][v], rowsum, r0 + 16 * (size_t)j, rows, acc + v * ldacc);
}

AVX512 static void gemm_s8_avx512(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n,
                                  const int8_t *q, size_t ldq, const int32_t *rowsum, int32_t *acc, size_t ldacc) {
    size_t panels = lstm_r16(rows) / 16, full_p = panels / 4 * 4, full_v = n / 4 * 4;
    for (size_t p = 0; p < panels; p++) {
        const int8_t *base = w + p * groups * 64;
        if (p % 4 == 0 && p < full_p)
            for (size_t i = 0; i < full_v; i += 4)
                tile_4x4(base, groups, g0, g1, q + i * ldq, ldq, rowsum, p * 16, rows, acc + i * ldacc, ldacc);
        for (size_t i = p < full_p ? full_v : 0; i < n; i++)
            tile_1x1(base, g0, g1, q + i * ldq, rowsum, p * 16, rows, acc + i * ldacc);
    }
}

/* fp32 y += A x, A row-major: 8 rows at a time share each load of x; the 8 sums are reduced together. */
AVX512 static void sgemv_avx512(size_t m, size_t k, const float *a, size_t lda, const float *x, float *y) {
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
AVX512 static void sgemm_nt_avx512(size_t n, size_t m, size_t k, const float *x, size_t ldx, const float *w,
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
            for (size_t v = 0; v < 4; v++) sgemv_avx512(m - m4, k, w + m4 * ldw, ldw, x0 + v * ldx, c + (i + v) * ldc + m4);
    }
    for (size_t i = n4; i < n; i++) sgemv_avx512(m, k, w, ldw, x + i * ldx, c + i * ldc);
}

const lstm_kernels lstm_q8_avx512_vnni = {sgemv_avx512, sgemm_nt_avx512, gemv_f32_avx512, gemv_s8_avx512, gemm_s8_avx512};

#endif
