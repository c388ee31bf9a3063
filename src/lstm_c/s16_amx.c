/* s16_amx.c - the batched int8 x int16 product of int8-a16 layers (gemm_s16) on Intel AMX tiles (AMX-TILE,
 * AMX-INT8), in the AMX table (dispatch.c) when the CPU has it and the process was granted the tile state.
 *
 * AMX multiplies bytes only, so each int16 activation is split into q = 256 hi + lo, hi = q >> 8 in
 * [-128, 127] (signed: TDPBSSD), lo = q & 255 in [0, 255] (unsigned: TDPBUSD), and
 * sum W q = 256 sum W hi + sum W lo, each int32 sum over at most LSTM_S16_BLOCK_GROUPS groups (|sum| <=
 * 255 * 128 * 512 < 2^31), combined in int64: exact, the same bits as every other table (docs/int8_a16.md).
 *
 * Per block of 16 vectors and LSTM_S16_BLOCK_GROUPS groups, the split bytes go to two stack buffers of
 * 16 x 512 bytes, zero-padded to whole tiles (16 vectors, 64 columns): one tile shape for every call, no
 * second configuration for partial blocks. The weight tiles (panels of lstm_format.h, 16 groups x 64
 * bytes) may then read groups past g1, which meet zero activations; where such a read would pass the end
 * of the matrix the tile comes from a zero-padded copy. Tiles: 0, 1 the hi sums of two panels, 2, 3 their
 * lo sums, 4 the hi bytes, 5 the lo bytes, 6, 7 the two panels' weights: each A tile feeds two products,
 * each B tile two (hi and lo). */
#include "kernels.h"
#ifdef LSTM_HAVE_X86_KERNELS
#include "kernels_x86.h"
#endif

#ifdef LSTM_HAVE_AMX_KERNELS
#include "amx_tiles.h"
#include <immintrin.h>
#include <string.h>

#define AMX16 __attribute__((target("amx-tile,amx-int8,avx512f,avx512bw,avx512vl")))
#define AMX16_INLINE AMX16 static inline __attribute__((always_inline))

/* Below this many vectors the AVX-512 kernel is used: its tiles of 4 vectors beat AMX at n = 4 (gemm_s16
 * of W_hh at H = 256: 14.4 against 18.1 us); AMX wins from 5 on (17.0 against 22.5 us; docs/amx.md). */
#define AMX16_MIN_VECTORS 5
#define SPLIT_COLS (4 * LSTM_S16_BLOCK_GROUPS) /* bytes per vector in the split buffers */

AMX16 static void configure(void) {
    tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) {
        cfg.rows[t] = 16;
        cfg.colsb[t] = 64;
    }
    MEMORY_BARRIER();
    _tile_loadconfig(&cfg);
}

/* hi and lo bytes of m vectors' columns [c0, c0 + cols) (vector v at q + v * ldq), rows of SPLIT_COLS bytes
 * zero-padded to `padded` columns; rows m .. 15 all zero over `padded` columns. */
AMX16 static void split(const int16_t *q, size_t ldq, size_t m, size_t c0, size_t cols, size_t padded, int8_t *hi,
                        uint8_t *lo) {
    for (size_t v = 0; v < 16; v++) {
        int8_t *h = hi + v * SPLIT_COLS;
        uint8_t *l = lo + v * SPLIT_COLS;
        size_t n = v < m ? cols : 0;
        const int16_t *x = v < m ? q + v * ldq + c0 : q;
        for (size_t k = 0; k < padded; k += 32) {
            size_t left = k < n ? n - k : 0;
            __mmask32 keep = left >= 32 ? 0xFFFFFFFFu : (__mmask32)((1u << left) - 1u);
            __m512i words = _mm512_maskz_loadu_epi16(keep, left ? x + k : x);
            _mm256_storeu_si256((__m256i *)(void *)(h + k), _mm512_cvtepi16_epi8(_mm512_srai_epi16(words, 8)));
            _mm256_storeu_si256((__m256i *)(void *)(l + k), _mm512_cvtepi16_epi8(words));
        }
    }
}

/* acc[v][r] (=, or += when add) 256 hi[v][r] + lo[v][r] for v < m, r < nr (nr <= 16), int64. */
AMX16 static void combine(const int32_t *hi, const int32_t *lo, size_t m, size_t nr, int add, int64_t *acc,
                          size_t ldacc) {
    __mmask8 k0 = (__mmask8)(nr >= 8 ? 0xFF : (1u << nr) - 1u), k1 = (__mmask8)(nr >= 16 ? 0xFF : nr > 8 ? (1u << (nr - 8)) - 1u : 0);
    for (size_t v = 0; v < m; v++) {
        __m512i h = _mm512_loadu_si512(hi + 16 * v), l = _mm512_loadu_si512(lo + 16 * v);
        __m512i s0 = _mm512_add_epi64(_mm512_slli_epi64(_mm512_cvtepi32_epi64(_mm512_castsi512_si256(h)), 8),
                                      _mm512_cvtepi32_epi64(_mm512_castsi512_si256(l)));
        __m512i s1 = _mm512_add_epi64(_mm512_slli_epi64(_mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(h, 1)), 8),
                                      _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(l, 1)));
        int64_t *out = acc + v * ldacc;
        if (add) {
            s0 = _mm512_add_epi64(s0, _mm512_maskz_loadu_epi64(k0, out));
            s1 = _mm512_add_epi64(s1, _mm512_maskz_loadu_epi64(k1, out + 8));
        }
        _mm512_mask_storeu_epi64(out, k0, s0);
        _mm512_mask_storeu_epi64(out + 8, k1, s1);
    }
}

/* The weight tile of `panel`'s groups [g, g + 16): in place, or a zero-padded copy in `copy` when those
 * bytes would pass `end` (the matrix's end). */
AMX16_INLINE const int8_t *weights(const int8_t *panel, size_t g, const int8_t *end, int8_t *copy) {
    const int8_t *b = panel + g * 64;
    if ((size_t)(end - b) >= 1024) return b;
    size_t have = (size_t)(end - b);
    memcpy(copy, b, have);
    memset(copy + have, 0, 1024 - have);
    MEMORY_BARRIER();
    return copy;
}

/* P panels (P = 1, 2; pstride bytes apart) against the 16 split vectors over `chunks` tiles of 64 columns
 * from group g: hi sums to hs[p], lo sums to ls[p] (16 x 16 int32 each). */
AMX16_INLINE void panels(int P, const int8_t *panel, size_t pstride, size_t g, size_t chunks, const int8_t *end,
                         const int8_t *hi, const uint8_t *lo, int32_t *hs, int32_t *ls, int8_t *copy) {
    _tile_zero(0);
    _tile_zero(2);
    if (P == 2) {
        _tile_zero(1);
        _tile_zero(3);
    }
    for (size_t c = 0; c < chunks; c++) {
        _tile_loadd(4, hi + 64 * c, SPLIT_COLS);
        _tile_loadd(5, lo + 64 * c, SPLIT_COLS);
        _tile_loadd(6, weights(panel, g + 16 * c, end, copy), 64);
        _tile_dpbssd(0, 4, 6);
        _tile_dpbusd(2, 5, 6);
        if (P == 2) {
            _tile_loadd(7, weights(panel + pstride, g + 16 * c, end, copy + 1024), 64);
            _tile_dpbssd(1, 4, 7);
            _tile_dpbusd(3, 5, 7);
        }
    }
    _tile_stored(0, hs, 64);
    _tile_stored(2, ls, 64);
    if (P == 2) {
        _tile_stored(1, hs + 256, 64);
        _tile_stored(3, ls + 256, 64);
    }
}

AMX16 static void panels_1(const int8_t *panel, size_t pstride, size_t g, size_t chunks, const int8_t *end,
                           const int8_t *hi, const uint8_t *lo, int32_t *hs, int32_t *ls, int8_t *copy) {
    panels(1, panel, pstride, g, chunks, end, hi, lo, hs, ls, copy);
}
AMX16 static void panels_2(const int8_t *panel, size_t pstride, size_t g, size_t chunks, const int8_t *end,
                           const int8_t *hi, const uint8_t *lo, int32_t *hs, int32_t *ls, int8_t *copy) {
    panels(2, panel, pstride, g, chunks, end, hi, lo, hs, ls, copy);
}

AMX16 void lstm_s16_gemm_amx(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n,
                             const int16_t *q, size_t ldq, int64_t *acc, size_t ldacc) {
    if (n < AMX16_MIN_VECTORS || g1 == g0) {
        lstm_s16_gemm_avx512(w, rows, groups, g0, g1, n, q, ldq, acc, ldacc);
        return;
    }
    int8_t hi[16 * SPLIT_COLS], copy[2 * 1024];
    uint8_t lo[16 * SPLIT_COLS];
    int32_t hs[2 * 256], ls[2 * 256];
    size_t pstride = groups * 64, panels_n = lstm_r16(rows) / 16;
    const int8_t *end = w + panels_n * pstride;
    configure();
    for (size_t i = 0; i < n; i += 16) {
        size_t m = n - i < 16 ? n - i : 16;
        for (size_t gb = g0; gb < g1; gb += LSTM_S16_BLOCK_GROUPS) {
            size_t kg = g1 - gb < LSTM_S16_BLOCK_GROUPS ? g1 - gb : LSTM_S16_BLOCK_GROUPS;
            size_t chunks = (kg + 15) / 16;
            split(q + i * ldq, ldq, m, 4 * (gb - g0), 4 * kg, 64 * chunks, hi, lo);
            MEMORY_BARRIER(); /* the tile loads read hi[] and lo[] */
            int add = gb != g0;
            size_t p = 0;
            for (; p + 2 <= panels_n; p += 2) {
                panels_2(w + p * pstride, pstride, gb, chunks, end, hi, lo, hs, ls, copy);
                size_t r0 = 16 * p, nr = rows - r0 < 32 ? rows - r0 : 32;
                combine(hs, ls, m, nr < 16 ? nr : 16, add, acc + i * ldacc + r0, ldacc);
                if (nr > 16) combine(hs + 256, ls + 256, m, nr - 16, add, acc + i * ldacc + r0 + 16, ldacc);
            }
            if (p < panels_n) {
                panels_1(w + p * pstride, pstride, gb, chunks, end, hi, lo, hs, ls, copy);
                combine(hs, ls, m, rows - 16 * p, add, acc + i * ldacc + 16 * p, ldacc);
            }
        }
    }
    _tile_release();
}

#else
typedef int lstm_s16_amx_unused; /* ISO C forbids an empty translation unit */
#endif
