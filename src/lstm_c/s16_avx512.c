/* s16_avx512.c - int8 x int16 kernels (int8-a16 and int16x8 layers) for x86-64 with AVX-512 (F, BW, VL) and
 * VNNI, used only when the CPU has them.
 *
 * Each activation q in [-32768, 32767] is split into bytes, q = 256 * hi + lo with hi = q >> 8 (arithmetic,
 * signed, [-128, 127]) and lo = q & 255 (unsigned, [0, 255]), so both halves of the product are vpdpbusd
 * (unsigned x signed bytes, 64 multiplies per instruction) on the int8 weight panels as they are stored, the
 * layout int8-dynamic reads; no weight is widened:
 *   lo: vpdpbusd(lo bytes, w)                       = sum w * lo
 *   hi: vpdpbusd(w ^ 0x80 = w + 128 as unsigned, hi) = sum w * hi + 128 * sum hi
 * The second sum's excess 128 * sum hi is the same for every row (a property of the vector, not of the
 * weights, so no row sums are needed): its accumulator starts at -128 * sum hi. Per block of at most
 * LSTM_S16_BLOCK_GROUPS groups (512 columns) the row's sum is then 256 * hi_acc + lo_acc in int32, exact:
 * |hi_acc| <= 127 * 128 * 512 < 2^23 at the end (< 2^25 while it runs), |lo_acc| <= 127 * 255 * 512 < 2^24,
 * and 256 * hi_acc as well as the block's true sum |sum w * q| are <= 127 * 32768 * 512 = 2 130 706 432
 * < 2^31 (model.c rejects weight -128): no int32 operation overflows. The block sums are sign-extended and added into the int64 outputs.
 * The bytes are split once per block and vector into a stack buffer (1 KiB per vector) and reused by every
 * panel. Integer sums: the reference's, bit for bit. */
#include "kernels.h"

#ifdef LSTM_HAVE_X86_KERNELS
#include "kernels_x86.h"
#include <immintrin.h>
#include <string.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
#define AVX512_INLINE AVX512 static inline __attribute__((always_inline))

#define BLOCK LSTM_S16_BLOCK_GROUPS /* groups per split block and per int32 sum */
#define BLOCK_COLS (4 * BLOCK)


/* Split q[0 .. 4n) (n <= BLOCK groups) into b; returns the sum of the high bytes. Each int16 lane of the
 * running sum adds at most BLOCK_COLS / 32 = 16 values of magnitude <= 128: no overflow. */
AVX512_INLINE int32_t split(const int16_t *q, size_t n, lstm_s16_split *b) {
    __m512i s = _mm512_setzero_si512();
    for (size_t k = 0; k < 4 * n; k += 32) { /* k + 32 <= BLOCK_COLS: the stores stay inside b */
        size_t left = 4 * n - k;
        __mmask32 m = left >= 32 ? (__mmask32)0xFFFFFFFFU : (__mmask32)((1U << left) - 1U);
        __m512i v = _mm512_maskz_loadu_epi16(m, q + k), h = _mm512_srai_epi16(v, 8);
        s = _mm512_add_epi16(s, h);
        _mm256_storeu_si256((__m256i *)(void *)(b->hi + k), _mm512_cvtepi16_epi8(h));
        _mm256_storeu_si256((__m256i *)(void *)(b->lo + k), _mm512_cvtepi16_epi8(v));
    }
    return _mm512_reduce_add_epi32(_mm512_madd_epi16(s, _mm512_set1_epi16(1)));
}

/* Bytes 4g .. 4g + 3 of a split row in every 32-bit lane. */
AVX512_INLINE __m512i lanes(const void *bytes, size_t g) {
    int32_t v;
    memcpy(&v, (const char *)bytes + 4 * g, 4);
    return _mm512_set1_epi32(v);
}

/* out[r .. r + 8) (those < rows) = or += the int64 values of the 8 int32 lanes in `v`. */
AVX512_INLINE void put8(int64_t *out, size_t r, size_t rows, __m256i v, int first) {
    size_t c = rows > r ? (rows - r < 8 ? rows - r : 8) : 0;
    __mmask8 m = (__mmask8)((1U << c) - 1U);
    __m512i x = _mm512_cvtepi32_epi64(v);
    if (!first) x = _mm512_add_epi64(x, _mm512_maskz_loadu_epi64(m, out + r));
    _mm512_mask_storeu_epi64(out + r, m, x);
}

/* P panels (16 P rows from r0; `base` is the first panel) x V vectors over groups [gb, gb + n) (one block):
 * each weight load (and its ^ 0x80) feeds V vectors, each broadcast P panels; the 2 P V int32 accumulators
 * stay in registers (loops unrolled). PF > 0: prefetch each panel's weights PF groups ahead (long blocks of
 * a matrix-vector product, whose weights stream from L2: 0.91-0.96x the step time at H = 256). The block's
 * sums go into acc + v * ldacc (stored if `first`). */
AVX512_INLINE void tile(int P, int V, int PF, const int8_t *base, size_t groups, size_t gb, size_t n,
                        const lstm_s16_split *sb, const int32_t *sumhi, size_t r0, size_t rows, int first,
                        int64_t *acc, size_t ldacc) {
    __m512i ah[4][4], al[4][4];
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    UNROLL for (int v = 0; v < V; v++) {
        __m512i start = _mm512_set1_epi32(-128 * sumhi[v]);
        UNROLL for (int p = 0; p < P; p++) ah[p][v] = start, al[p][v] = _mm512_setzero_si512();
    }
#pragma GCC unroll 2 /* two groups per iteration: 1.66x gemv_s8's time instead of 1.90x at H = 64 */
    for (size_t g = 0; g < n; g++) {
        __m512i bh[4], bl[4];
        UNROLL for (int v = 0; v < V; v++) bh[v] = lanes(sb[v].hi, g), bl[v] = lanes(sb[v].lo, g);
        UNROLL for (int p = 0; p < P; p++) {
            __m512i w = _mm512_loadu_si512(base + ((size_t)p * groups + gb + g) * 64);
            if (PF && g + PF < n) /* the line PF groups ahead in this panel, within the block */
                _mm_prefetch((const char *)(base + ((size_t)p * groups + gb + g + PF) * 64), _MM_HINT_T0);
            __m512i wu = _mm512_xor_si512(w, flip);
            UNROLL for (int v = 0; v < V; v++) {
                ah[p][v] = _mm512_dpbusd_epi32(ah[p][v], wu, bh[v]);
                al[p][v] = _mm512_dpbusd_epi32(al[p][v], bl[v], w);
            }
        }
    }
    UNROLL for (int p = 0; p < P; p++)
        UNROLL for (int v = 0; v < V; v++) {
            __m512i t = _mm512_add_epi32(_mm512_slli_epi32(ah[p][v], 8), al[p][v]);
            int64_t *out = acc + (size_t)v * ldacc;
            size_t r = r0 + 16 * (size_t)p;
            put8(out, r, rows, _mm512_castsi512_si256(t), first);
            put8(out, r + 8, rows, _mm512_extracti64x4_epi64(t, 1), first);
        }
}

#define TILE(P, V)                                                                                           \
    AVX512 static void tile_##P##x##V(const int8_t *base, size_t groups, size_t gb, size_t n,                \
                                      const lstm_s16_split *sb, const int32_t *sumhi, size_t r0, size_t rows,   \
                                      int first, int64_t *acc, size_t ldacc) {                               \
        tile(P, V, 0, base, groups, gb, n, sb, sumhi, r0, rows, first, acc, ldacc);                          \
    }
TILE(4, 1)
TILE(1, 1)
TILE(2, 4)
TILE(1, 4)
AVX512 static void tile_4x1_pf(const int8_t *base, size_t groups, size_t gb, size_t n, const lstm_s16_split *sb,
                               const int32_t *sumhi, size_t r0, size_t rows, int first, int64_t *acc, size_t ldacc) {
    tile(4, 1, 8, base, groups, gb, n, sb, sumhi, r0, rows, first, acc, ldacc);
}

/* Rows with no columns: every sum is 0. */
static void zero_rows(int64_t *acc, size_t rows) { memset(acc, 0, rows * sizeof(int64_t)); }

/* One vector: block after block, split once, then four panels (64 rows) at a time (with prefetching from
 * 32 groups per block: below that it measured no gain). */
AVX512 static void one_vector(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1,
                              const int16_t *q, int64_t *acc) {
    size_t panels = lstm_r16(rows) / 16;
    lstm_s16_split sb;
    if (g1 <= g0) zero_rows(acc, rows);
    for (size_t gb = g0; gb < g1; gb += BLOCK) {
        size_t n = g1 - gb < BLOCK ? g1 - gb : BLOCK, p = 0;
        int32_t sumhi = split(q + (gb - g0) * 4, n, &sb);
        for (; p + 4 <= panels; p += 4)
            (n >= 32 ? tile_4x1_pf : tile_4x1)(w + p * groups * 64, groups, gb, n, &sb, &sumhi, p * 16, rows,
                                               gb == g0, acc, 0);
        for (; p < panels; p++)
            tile_1x1(w + p * groups * 64, groups, gb, n, &sb, &sumhi, p * 16, rows, gb == g0, acc, 0);
    }
}

AVX512 void lstm_s16_gemv_avx512(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1,
                                 const int16_t *q, int64_t *acc) {
    one_vector(w, rows, groups, g0, g1, q, acc);
}

/* Four vectors at a time: per block, the four are split once, then every pair of panels (its block of
 * weights, 16 KiB at most, stays in L1 for the four) feeds all four; the other vectors one by one. */
AVX512 void lstm_s16_gemm_avx512(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n,
                                 const int16_t *q, size_t ldq, int64_t *acc, size_t ldacc) {
    size_t panels = lstm_r16(rows) / 16, i = 0;
    lstm_s16_split sb[4];
    int32_t sumhi[4];
    for (; i + 4 <= n; i += 4) {
        if (g1 <= g0)
            for (size_t v = 0; v < 4; v++) zero_rows(acc + (i + v) * ldacc, rows);
        for (size_t gb = g0; gb < g1; gb += BLOCK) {
            size_t nb = g1 - gb < BLOCK ? g1 - gb : BLOCK, p = 0;
            for (size_t v = 0; v < 4; v++) sumhi[v] = split(q + (i + v) * ldq + (gb - g0) * 4, nb, &sb[v]);
            for (; p + 2 <= panels; p += 2)
                tile_2x4(w + p * groups * 64, groups, gb, nb, sb, sumhi, p * 16, rows, gb == g0, acc + i * ldacc, ldacc);
            for (; p < panels; p++)
                tile_1x4(w + p * groups * 64, groups, gb, nb, sb, sumhi, p * 16, rows, gb == g0, acc + i * ldacc, ldacc);
        }
    }
    for (; i < n; i++) one_vector(w, rows, groups, g0, g1, q + i * ldq, acc + i * ldacc);
}

#else
typedef int lstm_s16_avx512_unused; /* ISO C forbids an empty translation unit */
#endif
