/* s16_avx2.c - int8 x int16 kernels (int8-a16 layers) for x86-64 with AVX2, used only when the CPU has it.
 * Weights widened to int16 (vpmovsxbw), vpmaddwd against the broadcast int16 activations (no saturation:
 * |w| <= 127), int32 lanes; every LSTM_S16_BLOCK_GROUPS groups each row's partial sums are added (int32
 * cannot overflow within a block, kernels.h), sign-extended and added to its int64 total: the reference's
 * exact sums. */
#include "kernels.h"

#ifdef LSTM_HAVE_X86_KERNELS
#include "kernels_x86.h"
#include <immintrin.h>
#include <string.h>

#define AVX2 __attribute__((target("avx2")))
#define AVX2_INLINE AVX2 static inline __attribute__((always_inline))

/* q[0..3] (one column group) in every 64-bit lane. */
AVX2_INLINE __m256i q_lanes16(const int16_t *q) {
    int64_t q4;
    memcpy(&q4, q, 8);
    return _mm256_set1_epi64x((long long)q4);
}

/* a[j] (j = 0..3) hold rows 4j..4j+3 of a panel as two int32 partial sums each: add them to the 16 int64
 * row totals t[0..3] (4 rows each, in row order). */
AVX2_INLINE void fold(__m256i *t, const __m256i *a) {
    __m256i lo = _mm256_permute4x64_epi64(_mm256_hadd_epi32(a[0], a[1]), 0xD8); /* rows 0..7, int32 */
    __m256i hi = _mm256_permute4x64_epi64(_mm256_hadd_epi32(a[2], a[3]), 0xD8); /* rows 8..15 */
    t[0] = _mm256_add_epi64(t[0], _mm256_cvtepi32_epi64(_mm256_castsi256_si128(lo)));
    t[1] = _mm256_add_epi64(t[1], _mm256_cvtepi32_epi64(_mm256_extracti128_si256(lo, 1)));
    t[2] = _mm256_add_epi64(t[2], _mm256_cvtepi32_epi64(_mm256_castsi256_si128(hi)));
    t[3] = _mm256_add_epi64(t[3], _mm256_cvtepi32_epi64(_mm256_extracti128_si256(hi, 1)));
}

/* One panel x V vectors (q + v * ldq), rows < rows of acc + v * ldacc written (all 16 with `whole`). */
AVX2_INLINE void tile(int V, const int8_t *panel, size_t g0, size_t g1, const int16_t *q, size_t ldq, size_t r0,
                      size_t rows, int64_t *acc, size_t ldacc, int whole) {
    __m256i t[3][4];
    UNROLL for (int v = 0; v < V; v++)
        UNROLL for (int j = 0; j < 4; j++) t[v][j] = _mm256_setzero_si256();
    for (size_t gb = g0; gb < g1; gb += LSTM_S16_BLOCK_GROUPS) {
        size_t ge = g1 - gb < LSTM_S16_BLOCK_GROUPS ? g1 : gb + LSTM_S16_BLOCK_GROUPS;
        __m256i a[3][4];
        UNROLL for (int v = 0; v < V; v++)
            UNROLL for (int j = 0; j < 4; j++) a[v][j] = _mm256_setzero_si256();
        for (size_t g = gb; g < ge; g++) {
            const int8_t *b = panel + g * 64;
            __m256i qb[3];
            UNROLL for (int v = 0; v < V; v++) qb[v] = q_lanes16(q + (size_t)v * ldq + (g - g0) * 4);
            UNROLL for (int j = 0; j < 4; j++) { /* rows 4j..4j+3: 16 bytes -> 16 int16 -> 8 pair sums */
                __m256i wv = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(b + 16 * j)));
                UNROLL for (int v = 0; v < V; v++) a[v][j] = _mm256_add_epi32(a[v][j], _mm256_madd_epi16(wv, qb[v]));
            }
        }
        UNROLL for (int v = 0; v < V; v++) fold(t[v], a[v]);
    }
    UNROLL for (int v = 0; v < V; v++) {
        int64_t *out = acc + (size_t)v * ldacc + r0;
        if (whole || r0 + 16 <= rows) {
            UNROLL for (int j = 0; j < 4; j++) _mm256_storeu_si256((__m256i *)(void *)(out + 4 * j), t[v][j]);
        } else {
            int64_t tmp[16];
            UNROLL for (int j = 0; j < 4; j++) _mm256_storeu_si256((__m256i *)(void *)(tmp + 4 * j), t[v][j]);
            memcpy(out, tmp, (rows - r0) * sizeof(int64_t));
        }
    }
}

AVX2 static void tile_1(const int8_t *panel, size_t g0, size_t g1, const int16_t *q, size_t r0, size_t rows,
                        int64_t *acc, int whole) {
    tile(1, panel, g0, g1, q, 0, r0, rows, acc, 0, whole);
}
AVX2 static void tile_n(const int8_t *panel, size_t g0, size_t g1, const int16_t *q, size_t ldq, size_t r0,
                        size_t rows, int64_t *acc, size_t ldacc) {
    tile(LSTM_AVX2_INT_TILE, panel, g0, g1, q, ldq, r0, rows, acc, ldacc, 0);
}

AVX2 void lstm_s16_gemv_avx2(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1,
                             const int16_t *q, int64_t *acc) {
    for (size_t r0 = 0; r0 < lstm_r16(rows); r0 += 16) tile_1(w + (r0 / 16) * groups * 64, g0, g1, q, r0, rows, acc, 1);
}

/* Panel after panel, each widened weight block feeding LSTM_AVX2_INT_TILE vectors, then the rest one by one. */
AVX2 void lstm_s16_gemm_avx2(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n,
                             const int16_t *q, size_t ldq, int64_t *acc, size_t ldacc) {
    for (size_t r0 = 0; r0 < lstm_r16(rows); r0 += 16) {
        const int8_t *panel = w + (r0 / 16) * groups * 64;
        size_t i = 0;
        for (; i + LSTM_AVX2_INT_TILE <= n; i += LSTM_AVX2_INT_TILE)
            tile_n(panel, g0, g1, q + i * ldq, ldq, r0, rows, acc + i * ldacc, ldacc);
        for (; i < n; i++) tile_1(panel, g0, g1, q + i * ldq, r0, rows, acc + i * ldacc, 0);
    }
}

#else
typedef int lstm_s16_avx2_unused; /* ISO C forbids an empty translation unit */
#endif
