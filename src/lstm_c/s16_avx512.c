/* s16_avx512.c - int8 x int16 kernels (int8-a16 layers) for x86-64 with AVX-512 (F, BW) and VNNI, used only
 * when the CPU has them. Each 64-byte weight group (16 rows x 4 columns) is widened to int16 by two
 * vpmovsxbw; vpdpwssd adds the two products of each int16 pair into one int32 lane, so a row's 4 columns
 * land in two lanes. Every LSTM_S16_BLOCK_GROUPS groups (int32 cannot overflow within a block, kernels.h)
 * the two lanes of each row are sign-extended to int64 and added to the row's int64 total: exact, the
 * reference's sums. */
#include "kernels.h"

#ifdef LSTM_HAVE_X86_KERNELS
#include "kernels_x86.h"
#include <immintrin.h>
#include <string.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
#define AVX512_INLINE AVX512 static inline __attribute__((always_inline))

/* q[0..3] (one column group) in every 64-bit lane. */
AVX512_INLINE __m512i q_lanes16(const int16_t *q) {
    int64_t q4;
    memcpy(&q4, q, 8);
    return _mm512_set1_epi64(q4);
}

/* The int64 totals of 8 rows plus the two int32 partial sums per row of `a` (row r: lanes 2r, 2r + 1). */
AVX512_INLINE __m512i fold(__m512i total, __m512i a) {
    __m512i lo = _mm512_srai_epi64(_mm512_slli_epi64(a, 32), 32), hi = _mm512_srai_epi64(a, 32);
    return _mm512_add_epi64(total, _mm512_add_epi64(lo, hi));
}

/* Store 8 int64 row sums of rows [r, r + 8) that are < rows. */
AVX512_INLINE void store8(int64_t *out, size_t r, size_t rows, __m512i v) {
    size_t c = rows > r ? (rows - r < 8 ? rows - r : 8) : 0;
    _mm512_mask_storeu_epi64(out + r, (__mmask8)((1U << c) - 1U), v);
}

/* P panels (16 P rows from r0) x V vectors (q + v * ldq): every widened weight block feeds V vectors,
 * every activation broadcast P panels; the int32 accumulators stay in registers (loops unrolled). */
AVX512_INLINE void tile(int P, int V, const int8_t *base, size_t groups, size_t g0, size_t g1, const int16_t *q,
                        size_t ldq, size_t r0, size_t rows, int64_t *acc, size_t ldacc) {
    __m512i total[4][4][2];
    UNROLL for (int p = 0; p < P; p++)
        UNROLL for (int v = 0; v < V; v++) total[p][v][0] = total[p][v][1] = _mm512_setzero_si512();
    for (size_t gb = g0; gb < g1; gb += LSTM_S16_BLOCK_GROUPS) {
        size_t ge = g1 - gb < LSTM_S16_BLOCK_GROUPS ? g1 : gb + LSTM_S16_BLOCK_GROUPS;
        __m512i a[4][4][2];
        UNROLL for (int p = 0; p < P; p++)
            UNROLL for (int v = 0; v < V; v++) a[p][v][0] = a[p][v][1] = _mm512_setzero_si512();
        for (size_t g = gb; g < ge; g++) {
            __m512i qb[4];
            UNROLL for (int v = 0; v < V; v++) qb[v] = q_lanes16(q + (size_t)v * ldq + (g - g0) * 4);
            UNROLL for (int p = 0; p < P; p++) {
                const int8_t *b = base + ((size_t)p * groups + g) * 64;
                __m512i w0 = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(const void *)b));
                __m512i w1 = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(const void *)(b + 32)));
                UNROLL for (int v = 0; v < V; v++) {
                    a[p][v][0] = _mm512_dpwssd_epi32(a[p][v][0], w0, qb[v]);
                    a[p][v][1] = _mm512_dpwssd_epi32(a[p][v][1], w1, qb[v]);
                }
            }
        }
        UNROLL for (int p = 0; p < P; p++)
            UNROLL for (int v = 0; v < V; v++) {
                total[p][v][0] = fold(total[p][v][0], a[p][v][0]);
                total[p][v][1] = fold(total[p][v][1], a[p][v][1]);
            }
    }
    UNROLL for (int p = 0; p < P; p++)
        UNROLL for (int v = 0; v < V; v++) {
            int64_t *out = acc + (size_t)v * ldacc;
            store8(out, r0 + 16 * (size_t)p, rows, total[p][v][0]);
            store8(out, r0 + 16 * (size_t)p + 8, rows, total[p][v][1]);
        }
}

AVX512 static void tile_4x1(const int8_t *base, size_t groups, size_t g0, size_t g1, const int16_t *q,
                            size_t r0, size_t rows, int64_t *acc) {
    tile(4, 1, base, groups, g0, g1, q, 0, r0, rows, acc, 0);
}
AVX512 static void tile_1x1(const int8_t *base, size_t groups, size_t g0, size_t g1, const int16_t *q,
                            size_t r0, size_t rows, int64_t *acc) {
    tile(1, 1, base, groups, g0, g1, q, 0, r0, rows, acc, 0);
}
AVX512 static void tile_1x4(const int8_t *base, size_t groups, size_t g0, size_t g1, const int16_t *q,
                            size_t ldq, size_t r0, size_t rows, int64_t *acc, size_t ldacc) {
    tile(1, 4, base, groups, g0, g1, q, ldq, r0, rows, acc, ldacc);
}

/* Four panels (64 rows) at a time share each activation broadcast. */
AVX512 void lstm_s16_gemv_avx512(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1,
                                 const int16_t *q, int64_t *acc) {
    size_t panels = lstm_r16(rows) / 16, p = 0;
    for (; p + 4 <= panels; p += 4) tile_4x1(w + p * groups * 64, groups, g0, g1, q, p * 16, rows, acc);
    for (; p < panels; p++) tile_1x1(w + p * groups * 64, groups, g0, g1, q, p * 16, rows, acc);
}

/* Panel after panel (it stays in L1), its widened weights feeding 4 vectors at a time. */
AVX512 void lstm_s16_gemm_avx512(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n,
                                 const int16_t *q, size_t ldq, int64_t *acc, size_t ldacc) {
    size_t panels = lstm_r16(rows) / 16;
    for (size_t p = 0; p < panels; p++) {
        const int8_t *base = w + p * groups * 64;
        size_t i = 0;
        for (; i + 4 <= n; i += 4) tile_1x4(base, groups, g0, g1, q + i * ldq, ldq, p * 16, rows, acc + i * ldacc, ldacc);
        for (; i < n; i++) tile_1x1(base, groups, g0, g1, q + i * ldq, p * 16, rows, acc + i * ldacc);
    }
}

#else
typedef int lstm_s16_avx512_unused; /* ISO C forbids an empty translation unit */
#endif
