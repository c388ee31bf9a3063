/* s8_avx2.c - int8 kernels for x86-64 with AVX2 and FMA (compiled for any x86-64, used only when the CPU
 * has them). Every int8 x int8 sum equals the reference's exactly for every input: the batched products
 * widen the weights to int16 and sum them in pairs into int32 (vpmaddwd), once per weight load for several
 * vectors; the matrix-vector product uses vpmaddubsw on |q| and sign-flipped weights, whose 16-bit pair sums
 * cannot saturate because model.c rejects the weight -128 (lstm_s8_gemv_avx2). The products with float
 * activations (gemv_f32, gemm_f32) convert each weight load to float once for several vectors. */
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

/* One vector: each 32-byte load (8 rows x 4 columns of a group) against |q| as unsigned bytes with the
 * weights' signs flipped where q is negative (vpsignb), so that each byte product is w q; vpmaddubsw sums
 * them in pairs into int16 and vpmaddwd by 1 adds the pairs into one int32 per row, in row order. Exact:
 * |w| <= 127 (model.c rejects -128) and |q| <= 128, so a pair sum is at most 2 * 127 * 128 = 32512 < 2^15
 * and vpmaddubsw never saturates. Three operations per 32 products where widening the weights to int16 for
 * vpmaddwd took four per 16: [1024 x 256] 42-45 -> 61-63 GMAC/s, [256 x 128] 46 -> 69 (a Sapphire Rapids core
 * running this AVX2 code). In the batched products the sign flip would be one operation per weight and
 * vector, where the widening is shared by the vectors: they keep vpmaddwd. */
AVX2 void lstm_s8_gemv_avx2(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1,
                              const int8_t *q, const int32_t *rowsum, int32_t *acc_out) {
    (void)rowsum;
    const __m256i ones = _mm256_set1_epi16(1);
    for (size_t r0 = 0; r0 < lstm_r16(rows); r0 += 16) {
        const int8_t *panel = w + (r0 / 16) * groups * 64;
        __m256i acc[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
        for (size_t g = g0; g < g1; g++) {
            const int8_t *b = panel + g * 64;
            int32_t q4;
            memcpy(&q4, q + (g - g0) * 4, 4);
            __m256i qs = _mm256_set1_epi32(q4), qa = _mm256_abs_epi8(qs); /* q0..q3 eight times; |q| */
            for (int j = 0; j < 2; j++) { /* rows 8j..8j+7 */
                __m256i wv = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(const void *)(b + 32 * j)), qs);
                acc[j] = _mm256_add_epi32(acc[j], _mm256_madd_epi16(_mm256_maddubs_epi16(qa, wv), ones));
            }
        }
        _mm256_storeu_si256((__m256i *)(void *)(acc_out + r0), acc[0]);
        _mm256_storeu_si256((__m256i *)(void *)(acc_out + r0 + 8), acc[1]);
    }
}

/* Forced inlining, so that a tile's vector count is a constant: loops over it unroll and the accumulator
 * arrays live in registers. */
#define AVX2_INLINE AVX2 static inline __attribute__((always_inline))

/* Up to 3 vectors: 4 accumulators each (16 rows) plus a widened weight block and the vectors' activations
 * fill the 16 ymm registers (GCC keeps a few accumulators in memory then: measured as fast as 2 vectors;
 * with clang faster). */
#define S8_TILE 3

/* q[0..3] as int16, four times. */
AVX2_INLINE __m256i q_int16(const int8_t *q) {
    int32_t q4;
    memcpy(&q4, q, 4);
    return _mm256_cvtepi8_epi16(_mm_set1_epi32(q4));
}

/* One vector's 4 accumulators of a panel (rows 4j..4j+3 as pair sums in acc[j]) as 16 row sums in row
 * order; the first `valid` stored at o. */
AVX2_INLINE void store_panel_sums(const __m256i *acc, int32_t *o, size_t valid) {
    __m256i lo = _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc[0], acc[1]), 0xD8);
    __m256i hi = _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc[2], acc[3]), 0xD8);
    if (valid >= 16) {
        _mm256_storeu_si256((__m256i *)(void *)o, lo);
        _mm256_storeu_si256((__m256i *)(void *)(o + 8), hi);
    } else {
        int32_t t[16];
        _mm256_storeu_si256((__m256i *)(void *)t, lo);
        _mm256_storeu_si256((__m256i *)(void *)(t + 8), hi);
        memcpy(o, t, valid * sizeof(int32_t));
    }
}

/* One panel (16 rows) against V vectors (q + v * ldq): the loop of lstm_s8_gemv_avx2 with each 16-byte
 * weight load widened once for all V vectors. Row sums stored for the first `valid` rows of the panel. */
AVX2_INLINE void panel_s8(int V, const int8_t *panel, size_t g0, size_t g1, const int8_t *q, size_t ldq,
                          int32_t *out, size_t ldout, size_t valid) {
    __m256i acc[S8_TILE][4];
    UNROLL for (int v = 0; v < V; v++)
        UNROLL for (int j = 0; j < 4; j++) acc[v][j] = _mm256_setzero_si256();
    for (size_t g = g0; g < g1; g++) {
        const int8_t *b = panel + g * 64;
        __m256i qb[S8_TILE];
        UNROLL for (int v = 0; v < V; v++) qb[v] = q_int16(q + (size_t)v * ldq + (g - g0) * 4);
        UNROLL for (int j = 0; j < 4; j++) {
            __m256i wv = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(b + 16 * j)));
            UNROLL for (int v = 0; v < V; v++) acc[v][j] = _mm256_add_epi32(acc[v][j], _mm256_madd_epi16(wv, qb[v]));
        }
    }
    UNROLL for (int v = 0; v < V; v++) store_panel_sums(acc[v], out + (size_t)v * ldout, valid);
}

AVX2 static void panel_s8_3(const int8_t *p, size_t g0, size_t g1, const int8_t *q, size_t ldq, int32_t *o,
                            size_t ldo, size_t valid) {
    panel_s8(3, p, g0, g1, q, ldq, o, ldo, valid);
}
AVX2 static void panel_s8_2(const int8_t *p, size_t g0, size_t g1, const int8_t *q, size_t ldq, int32_t *o,
                            size_t ldo, size_t valid) {
    panel_s8(2, p, g0, g1, q, ldq, o, ldo, valid);
}
AVX2 static void panel_s8_1(const int8_t *p, size_t g0, size_t g1, const int8_t *q, size_t ldq, int32_t *o,
                            size_t ldo, size_t valid) {
    panel_s8(1, p, g0, g1, q, ldq, o, ldo, valid);
}

/* One panel (16 rows) against V vectors whose activations were widened to int16 beforehand (q16 + v * ld16,
 * column k at [k - 4 g0]): each weight block is widened once for the V vectors and each vector's 4 columns
 * are broadcast from memory (a load, no widening per use), so only the 4V accumulators, one weight block
 * and one broadcast are live: no spills at V = 3 (panel_s8 above keeps its V widened activations in
 * registers and spills). */
AVX2_INLINE void panel_s16q(int V, const int8_t *panel, size_t g0, size_t g1, const int16_t *q16, size_t ld16,
                            int32_t *out, size_t ldout, size_t valid) {
    __m256i acc[S8_TILE][4];
    UNROLL for (int v = 0; v < V; v++)
        UNROLL for (int j = 0; j < 4; j++) acc[v][j] = _mm256_setzero_si256();
    for (size_t g = g0; g < g1; g++) {
        const int8_t *b = panel + g * 64;
        const int16_t *qg = q16 + (g - g0) * 4;
        UNROLL for (int j = 0; j < 4; j++) {
            __m256i wv = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(b + 16 * j)));
            UNROLL for (int v = 0; v < V; v++) {
                int64_t q4;
                memcpy(&q4, qg + (size_t)v * ld16, 8);
                acc[v][j] = _mm256_add_epi32(acc[v][j], _mm256_madd_epi16(wv, _mm256_set1_epi64x(q4)));
            }
        }
    }
    UNROLL for (int v = 0; v < V; v++) store_panel_sums(acc[v], out + (size_t)v * ldout, valid);
}

AVX2 static void panel_s16q_tile(const int8_t *p, size_t g0, size_t g1, const int16_t *q, size_t ldq, int32_t *o,
                                 size_t ldo, size_t valid) {
    panel_s16q(LSTM_AVX2_INT_TILE, p, g0, g1, q, ldq, o, ldo, valid);
}
AVX2 static void panel_s16q_2(const int8_t *p, size_t g0, size_t g1, const int16_t *q, size_t ldq, int32_t *o,
                              size_t ldo, size_t valid) {
    panel_s16q(2, p, g0, g1, q, ldq, o, ldo, valid);
}
AVX2 static void panel_s16q_1(const int8_t *p, size_t g0, size_t g1, const int16_t *q, size_t ldq, int32_t *o,
                              size_t ldo, size_t valid) {
    panel_s16q(1, p, g0, g1, q, ldq, o, ldo, valid);
}

/* Activations widened to int16 on the stack, in chunks of vectors that fit S16Q_INT16S (16 KB); rows wider
 * than a tile of vectors can hold there fall back to panel_s8. At H = 256, 64 vectors: 860-900 -> 735-760 us
 * (tools/bench_gemm.c, the two builds alternating, best of each run). */
#define S16Q_INT16S 8192

/* Chunk after chunk of vectors: their activations widened once, then one pass over the weights (panel after
 * panel; a panel is at most a few KB and stays in L1) with the chunk's vectors LSTM_AVX2_INT_TILE at a time,
 * then the rest. Exact int32 sums (vpmaddwd pair sums of int16 products cannot saturate), so the reference's
 * for every input; only rows < rows are written. */
void lstm_s8_gemm_avx2(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n,
                       const int8_t *q, size_t ldq, const int32_t *rowsum, int32_t *acc, size_t ldacc) {
    (void)rowsum;
    size_t cols = (g1 - g0) * 4;
    if (cols * LSTM_AVX2_INT_TILE > S16Q_INT16S) {
        for (size_t r0 = 0; r0 < rows; r0 += 16) {
            const int8_t *panel = w + (r0 / 16) * groups * 64;
            size_t valid = rows - r0 < 16 ? rows - r0 : 16, i = 0;
            for (; i + S8_TILE <= n; i += S8_TILE)
                panel_s8_3(panel, g0, g1, q + i * ldq, ldq, acc + i * ldacc + r0, ldacc, valid);
            if (n - i == 2) panel_s8_2(panel, g0, g1, q + i * ldq, ldq, acc + i * ldacc + r0, ldacc, valid);
            if (n - i == 1) panel_s8_1(panel, g0, g1, q + i * ldq, ldq, acc + i * ldacc + r0, ldacc, valid);
        }
        return;
    }
    int16_t q16[S16Q_INT16S];
    size_t chunk = S16Q_INT16S / cols / LSTM_AVX2_INT_TILE * LSTM_AVX2_INT_TILE;
    for (size_t c0 = 0; c0 < n; c0 += chunk) {
        size_t m = n - c0 < chunk ? n - c0 : chunk;
        for (size_t v = 0; v < m; v++)
            for (size_t k = 0; k < cols; k++) q16[v * cols + k] = q[(c0 + v) * ldq + k];
        for (size_t r0 = 0; r0 < rows; r0 += 16) {
            const int8_t *panel = w + (r0 / 16) * groups * 64;
            size_t valid = rows - r0 < 16 ? rows - r0 : 16, i = 0;
            int32_t *o = acc + c0 * ldacc + r0;
            for (; i + LSTM_AVX2_INT_TILE <= m; i += LSTM_AVX2_INT_TILE)
                panel_s16q_tile(panel, g0, g1, q16 + i * cols, cols, o + i * ldacc, ldacc, valid);
            if (m - i == 2) panel_s16q_2(panel, g0, g1, q16 + i * cols, cols, o + i * ldacc, ldacc, valid);
            if (m - i == 1) panel_s16q_1(panel, g0, g1, q16 + i * cols, cols, o + i * ldacc, ldacc, valid);
        }
    }
}

/* ---- int8 weights x float activations, several vectors --------------------------------------------- */

#define F32_TILE 3

/* Lanes i < valid set (valid <= 8). */
AVX2_INLINE __m256i first_lanes(size_t valid) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)valid), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* Half a panel (8 rows: bytes 32 * half .. + 31 of each block) against V vectors (x + v * ldx): for each
 * vector the operations of lstm_s8_gemv_f32_avx2 on these rows, in its order (rounded multiply, rounded
 * add, group after group; (s0 + s1) + (s2 + s3); y + scale * sum), with each weight load converted to
 * float once for all V vectors. Rows past `valid` (<= 8) are neither read from scale / y nor written. */
AVX2_INLINE void half_panel_f32(int V, const int8_t *half, size_t g0, size_t g1, const float *x, size_t ldx,
                                const float *scale, float *y, size_t ldy, size_t valid) {
    __m256 acc[F32_TILE][4];
    UNROLL for (int v = 0; v < V; v++)
        UNROLL for (int j = 0; j < 4; j++) acc[v][j] = _mm256_setzero_ps();
    for (size_t g = g0; g < g1; g++) {
        const int8_t *b = half + g * 64;
        __m256 xb[F32_TILE];
        UNROLL for (int v = 0; v < V; v++)
            xb[v] = _mm256_broadcast_ps((const __m128 *)(const void *)(x + (size_t)v * ldx + (g - g0) * 4));
        UNROLL for (int j = 0; j < 4; j++) { /* rows 2j, 2j+1 */
            __m128i bytes = _mm_loadl_epi64((const __m128i *)(const void *)(b + 8 * j));
            __m256 wf = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(bytes));
            UNROLL for (int v = 0; v < V; v++) acc[v][j] = _mm256_add_ps(acc[v][j], _mm256_mul_ps(wf, xb[v]));
        }
    }
    __m256i mask = first_lanes(valid);
    UNROLL for (int v = 0; v < V; v++) {
        float *yv = y + (size_t)v * ldy;
        __m256 sums = eight_rows(acc[v]);
        if (valid >= 8) {
            __m256 r = _mm256_add_ps(_mm256_loadu_ps(yv), _mm256_mul_ps(_mm256_loadu_ps(scale), sums));
            _mm256_storeu_ps(yv, r);
        } else {
            __m256 sc = _mm256_maskload_ps(scale, mask);
            _mm256_maskstore_ps(yv, mask, _mm256_add_ps(_mm256_maskload_ps(yv, mask), _mm256_mul_ps(sc, sums)));
        }
    }
}

AVX2 static void half_panel_f32_3(const int8_t *h, size_t g0, size_t g1, const float *x, size_t ldx,
                                  const float *scale, float *y, size_t ldy, size_t valid) {
    half_panel_f32(3, h, g0, g1, x, ldx, scale, y, ldy, valid);
}
AVX2 static void half_panel_f32_2(const int8_t *h, size_t g0, size_t g1, const float *x, size_t ldx,
                                  const float *scale, float *y, size_t ldy, size_t valid) {
    half_panel_f32(2, h, g0, g1, x, ldx, scale, y, ldy, valid);
}
AVX2 static void half_panel_f32_1(const int8_t *h, size_t g0, size_t g1, const float *x, size_t ldx,
                                  const float *scale, float *y, size_t ldy, size_t valid) {
    half_panel_f32(1, h, g0, g1, x, ldx, scale, y, ldy, valid);
}

/* One pass over the weights: 8 rows at a time (the rest of their panel stays in L1 for the other half),
 * all vectors against them, 3 at a time, then the remaining 1 or 2 together. */
void lstm_s8_gemm_f32_avx2(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n,
                           const float *x, size_t ldx, const float *scale, float *y, size_t ldy) {
    for (size_t r0 = 0; r0 < rows; r0 += 8) {
        const int8_t *half = w + (r0 / 16) * groups * 64 + (r0 % 16) * 4;
        size_t valid = rows - r0 < 8 ? rows - r0 : 8, i = 0;
        for (; i + F32_TILE <= n; i += F32_TILE)
            half_panel_f32_3(half, g0, g1, x + i * ldx, ldx, scale + r0, y + i * ldy + r0, ldy, valid);
        if (n - i == 2) half_panel_f32_2(half, g0, g1, x + i * ldx, ldx, scale + r0, y + i * ldy + r0, ldy, valid);
        if (n - i == 1) half_panel_f32_1(half, g0, g1, x + i * ldx, ldx, scale + r0, y + i * ldy + r0, ldy, valid);
    }
}

#else
typedef int lstm_s8_avx2_unused; /* ISO C forbids an empty translation unit */
#endif
