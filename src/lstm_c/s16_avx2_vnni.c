/* s16_avx2_vnni.c - int8 x int16 products (int8-a16 and int16x8 layers) for x86-64 with AVX2 and AVX-VNNI:
 * s16_avx512.c's method on 256-bit registers. Each activation q = 256 * hi + lo (hi = q >> 8 signed, lo =
 * q & 255 unsigned) makes two vpdpbusd on the int8 weight panels as stored:
 *   lo: vpdpbusd(lo bytes, w)                       = sum w * lo
 *   hi: vpdpbusd(w ^ 0x80 = w + 128 as unsigned, hi) = sum w * hi + 128 * sum hi
 * the second accumulator starting at -128 * sum hi (the same for every row). Per block of at most
 * LSTM_S16_BLOCK_GROUPS groups the row's sum 256 * hi_acc + lo_acc is exact in int32 (the bounds of
 * s16_avx512.c), then sign-extended and added into the int64 outputs. A 64-byte column group of a panel is
 * two registers (rows 0-7, rows 8-15). Integer sums: the reference's, bit for bit. AVX2's own kernels
 * (s16_avx2.c) widen the weights to 16 bits: 16 multiply-adds per vpmaddwd against 64 for the two
 * vpdpbusd here. */
#include "kernels.h"

#ifdef LSTM_HAVE_X86_KERNELS
#include "kernels_x86.h"
#endif

#ifdef LSTM_HAVE_AVX_VNNI_KERNELS
#include <immintrin.h>
#include <string.h>

#define VNNI LSTM_AVX2_VNNI_TARGET
#define VNNI_INLINE VNNI static inline __attribute__((always_inline))

#define BLOCK LSTM_S16_BLOCK_GROUPS /* groups per split block and per int32 sum */

/* Split q[0 .. 4n) (n <= BLOCK groups) into b; returns the sum of the high bytes. (q - lo) / 256 is the
 * arithmetic shift, exact and portable. */
static int32_t split(const int16_t *q, size_t n, lstm_s16_split *b) {
    int32_t s = 0;
    for (size_t k = 0; k < 4 * n; k++) {
        int32_t v = q[k], lo = v & 255, hi = (v - lo) / 256;
        b->hi[k] = (int8_t)hi;
        b->lo[k] = (uint8_t)lo;
        s += hi;
    }
    return s;
}

/* Bytes 4g .. 4g + 3 of a split row in every 32-bit lane. */
VNNI_INLINE __m256i lanes(const void *bytes, size_t g) {
    int32_t v;
    memcpy(&v, (const char *)bytes + 4 * g, 4);
    return _mm256_set1_epi32(v);
}

/* out[r .. r + 8) (those < rows) = or += the int64 values of the 8 int32 lanes in `v`. */
VNNI_INLINE void put8(int64_t *out, size_t r, size_t rows, __m256i v, int first) {
    if (r + 8 <= rows) {
        __m256i a = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(v)), b = _mm256_cvtepi32_epi64(_mm256_extracti128_si256(v, 1));
        if (!first) {
            a = _mm256_add_epi64(a, _mm256_loadu_si256((const __m256i *)(const void *)(out + r)));
            b = _mm256_add_epi64(b, _mm256_loadu_si256((const __m256i *)(const void *)(out + r + 4)));
        }
        _mm256_storeu_si256((__m256i *)(void *)(out + r), a);
        _mm256_storeu_si256((__m256i *)(void *)(out + r + 4), b);
    } else if (r < rows) {
        int32_t t[8];
        _mm256_storeu_si256((__m256i *)(void *)t, v);
        for (size_t i = 0; r + i < rows; i++) out[r + i] = first ? (int64_t)t[i] : out[r + i] + t[i];
    }
}

/* P panels (16 P rows from r0, as 2 P half-panels; `base` is the first panel) x V vectors over groups
 * [gb, gb + n) (one block): each weight load (and its ^ 0x80) feeds V vectors, each broadcast 2 P halves;
 * the 4 P V accumulators stay in registers (P = 2, V = 1 or P = 1, V = 2: 8 of the 16 ymm). The block's sums
 * go into acc + v * ldacc (stored if `first`). */
VNNI_INLINE void tile(const int P, const int V, const int8_t *base, size_t groups, size_t gb, size_t n,
                      const lstm_s16_split *sb, const int32_t *sumhi, size_t r0, size_t rows, int first, int64_t *acc,
                      size_t ldacc) {
    __m256i ah[4][2], al[4][2]; /* [half][vector] */
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    UNROLL for (int v = 0; v < V; v++) {
        __m256i start = _mm256_set1_epi32(-128 * sumhi[v]);
        UNROLL for (int h = 0; h < 2 * P; h++) ah[h][v] = start, al[h][v] = _mm256_setzero_si256();
    }
    for (size_t g = 0; g < n; g++) {
        __m256i bh[2], bl[2];
        UNROLL for (int v = 0; v < V; v++) bh[v] = lanes(sb[v].hi, g), bl[v] = lanes(sb[v].lo, g);
        UNROLL for (int h = 0; h < 2 * P; h++) {
            const int8_t *b = base + ((size_t)(h / 2) * groups + gb + g) * 64 + (h % 2) * 32;
            __m256i w = _mm256_loadu_si256((const __m256i *)(const void *)b), wu = _mm256_xor_si256(w, flip);
            UNROLL for (int v = 0; v < V; v++) {
                ah[h][v] = _mm256_dpbusd_avx_epi32(ah[h][v], wu, bh[v]);
                al[h][v] = _mm256_dpbusd_avx_epi32(al[h][v], bl[v], w);
            }
        }
    }
    UNROLL for (int h = 0; h < 2 * P; h++)
        UNROLL for (int v = 0; v < V; v++)
            put8(acc + (size_t)v * ldacc, r0 + 8 * (size_t)h, rows,
                 _mm256_add_epi32(_mm256_slli_epi32(ah[h][v], 8), al[h][v]), first);
}

#define TILE(P, V)                                                                                           \
    VNNI static void tile_##P##x##V(const int8_t *base, size_t groups, size_t gb, size_t n,                  \
                                    const lstm_s16_split *sb, const int32_t *sumhi, size_t r0, size_t rows,     \
                                    int first, int64_t *acc, size_t ldacc) {                                 \
        tile(P, V, base, groups, gb, n, sb, sumhi, r0, rows, first, acc, ldacc);                             \
    }
TILE(2, 1)
TILE(1, 1)
TILE(1, 2)

/* One vector: block after block, split once, then two panels (32 rows) at a time. */
VNNI void lstm_s16_gemv_avx2_vnni(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, const int16_t *q,
                                  int64_t *acc) {
    size_t panels = lstm_r16(rows) / 16;
    lstm_s16_split sb;
    if (g1 <= g0) memset(acc, 0, rows * sizeof(int64_t)); /* no columns: every sum is 0 */
    for (size_t gb = g0; gb < g1; gb += BLOCK) {
        size_t n = g1 - gb < BLOCK ? g1 - gb : BLOCK, p = 0;
        int32_t sumhi = split(q + (gb - g0) * 4, n, &sb);
        for (; p + 2 <= panels; p += 2)
            tile_2x1(w + p * groups * 64, groups, gb, n, &sb, &sumhi, p * 16, rows, gb == g0, acc, 0);
        if (p < panels) tile_1x1(w + p * groups * 64, groups, gb, n, &sb, &sumhi, p * 16, rows, gb == g0, acc, 0);
    }
}

/* Two vectors at a time: per block, both are split once, then every panel (8 KiB at most, in L1) feeds both;
 * an odd last vector alone. */
VNNI void lstm_s16_gemm_avx2_vnni(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n,
                                  const int16_t *q, size_t ldq, int64_t *acc, size_t ldacc) {
    size_t panels = lstm_r16(rows) / 16, i = 0;
    lstm_s16_split sb[2];
    int32_t sumhi[2];
    for (; i + 2 <= n; i += 2) {
        if (g1 <= g0)
            for (size_t v = 0; v < 2; v++) memset(acc + (i + v) * ldacc, 0, rows * sizeof(int64_t));
        for (size_t gb = g0; gb < g1; gb += BLOCK) {
            size_t nb = g1 - gb < BLOCK ? g1 - gb : BLOCK;
            for (size_t v = 0; v < 2; v++) sumhi[v] = split(q + (i + v) * ldq + (gb - g0) * 4, nb, &sb[v]);
            for (size_t p = 0; p < panels; p++)
                tile_1x2(w + p * groups * 64, groups, gb, nb, sb, sumhi, p * 16, rows, gb == g0, acc + i * ldacc, ldacc);
        }
    }
    if (i < n) lstm_s16_gemv_avx2_vnni(w, rows, groups, g0, g1, q + i * ldq, acc + i * ldacc);
}

#else
typedef int lstm_s16_avx2_vnni_unused; /* ISO C forbids an empty translation unit */
#endif
