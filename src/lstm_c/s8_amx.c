/* s8_amx.c - the batched int8 x int8 product (gemm_s8) on Intel AMX (AMX-TILE, AMX-INT8), used only when the
 * CPU has it and the kernel granted the process its tile state (dispatch.c asks).
 *
 * The int8 panel layout of lstm_format.h is an AMX B tile as it stands: 16 consecutive column groups of a
 * panel are 16 tile rows of 64 bytes (16 weight rows x 4 columns each), stride 64. The A tile holds up to
 * 16 activation vectors x 64 columns (stride ldq), the C tile those vectors x the panel's 16 rows as int32.
 * TDPBSSD multiplies signed by signed bytes: no +128 offset and no rowsum correction (the AVX-512 VNNI
 * kernel needs both); the sums are exact integers, the same bits as every other table.
 *
 * Tiles (configure): accumulators 0-3 for 2 blocks of 16 vectors x 2 panels, activations 4, 5, weights 6,
 * 7. The whole chunks of 16 groups are one pass; a K tail of fewer groups is a second pass with tiles of its
 * width, which loads the first pass's sums back; a last block of n % 16 vectors has tiles of that many rows.
 * No padding, no copies of the operands: every tile load stays inside the caller's arrays. A call releases
 * the tiles before it returns. */
#include "kernels.h"
#ifdef LSTM_HAVE_X86_KERNELS
#include "kernels_x86.h"
#endif

#ifdef LSTM_HAVE_AMX_KERNELS
#include "amx_tiles.h"
#include <immintrin.h>
#include <string.h>

#define AMX __attribute__((target("amx-tile,amx-int8")))

/* Below this many vectors the AVX-512 VNNI kernel is as fast or faster (one vector: 5.5 against 5.9 us at
 * 1024 rows x 256 columns; docs/amx.md). */
#define AMX_MIN_VECTORS 2

/* Tiles for blocks of m vectors (m <= 16) and kk column groups (kk <= 16): accumulators 0-3 (m x 16 int32),
 * activations 4, 5 (m x 4 kk bytes), weights 6, 7 (kk x 64 bytes). */
AMX static void configure(size_t m, size_t kk) {
    tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) {
        cfg.rows[t] = (uint8_t)(t < 6 ? m : kk);
        cfg.colsb[t] = (uint16_t)(t == 4 || t == 5 ? 4 * kk : 64);
    }
    MEMORY_BARRIER();
    _tile_loadconfig(&cfg);
}

/* V blocks of vectors (16 apart) x P panels (pstride bytes apart), V, P in {1, 2}: accumulator 2v + p holds
 * block v x panel p. Sums over `chunks` steps of the configured kk groups from group g (activations from q),
 * added to the sums at out (accumulate) or from zero, stored at out (vector stride ldo int32). Every A and B
 * tile loaded feeds P and V products (2 x 2: 4 loads per 4 products; a tile is not reloaded while a product
 * still reads it). */
#define AMX_INLINE AMX static inline __attribute__((always_inline))
AMX_INLINE void tile_block(int V, int P, int accumulate, const int8_t *panel, size_t pstride, size_t g,
                           size_t chunks, const int8_t *q, size_t ldq, int32_t *out, size_t ldo) {
    const long so = (long)(ldo * 4), sq = (long)ldq;
    int32_t *o1 = out + 16 * ldo;
    if (accumulate) {
        _tile_loadd(0, out, so);
        if (P == 2) _tile_loadd(1, out + 16, so);
        if (V == 2) _tile_loadd(2, o1, so);
        if (V == 2 && P == 2) _tile_loadd(3, o1 + 16, so);
    } else {
        _tile_zero(0);
        if (P == 2) _tile_zero(1);
        if (V == 2) _tile_zero(2);
        if (V == 2 && P == 2) _tile_zero(3);
    }
    const int8_t *b = panel + g * 64, *q1 = q + 16 * ldq;
    for (size_t c = 0; c < chunks; c++, b += 1024, q += 64, q1 += 64) {
        _tile_loadd(4, q, sq);
        _tile_loadd(6, b, 64);
        _tile_dpbssd(0, 4, 6);
        if (P == 2) {
            _tile_loadd(7, b + pstride, 64);
            _tile_dpbssd(1, 4, 7);
        }
        if (V == 2) {
            _tile_loadd(5, q1, sq);
            _tile_dpbssd(2, 5, 6);
            if (P == 2) _tile_dpbssd(3, 5, 7);
        }
    }
    _tile_stored(0, out, so);
    if (P == 2) _tile_stored(1, out + 16, so);
    if (V == 2) _tile_stored(2, o1, so);
    if (V == 2 && P == 2) _tile_stored(3, o1 + 16, so);
}

#define TILE_BLOCK(V, P)                                                                                     \
    AMX static void tile_block_##V##x##P(int accumulate, const int8_t *panel, size_t pstride, size_t g,      \
                                         size_t chunks, const int8_t *q, size_t ldq, int32_t *out, size_t ldo) { \
        tile_block(V, P, accumulate, panel, pstride, g, chunks, q, ldq, out, ldo);                           \
    }
TILE_BLOCK(2, 2)
TILE_BLOCK(1, 2)
TILE_BLOCK(2, 1)
TILE_BLOCK(1, 1)

/* One pass with the configured tiles: the vectors [i0, i0 + count) in blocks of m (count a multiple of m),
 * `chunks` steps of kk groups from group g (activations from column 4 (g - g0) of each vector), two panels
 * at a time (they stay in L1 while every block of vectors uses them). A last partial panel (rows % 16)
 * goes through a 16 x 16 buffer, so that only rows < rows are read and written. */
AMX static void pass(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g, size_t chunks, size_t m,
                     int accumulate, size_t i0, size_t count, const int8_t *q, size_t ldq, int32_t *acc,
                     size_t ldacc) {
    size_t pstride = groups * 64, end = i0 + count;
    const int8_t *qg = q + 4 * (g - g0);
    size_t r0 = 0;
    for (; r0 + 32 <= rows; r0 += 32) {
        const int8_t *panel = w + (r0 / 16) * pstride;
        size_t i = i0;
        for (; i + 2 * m <= end; i += 2 * m)
            tile_block_2x2(accumulate, panel, pstride, g, chunks, qg + i * ldq, ldq, acc + i * ldacc + r0, ldacc);
        if (i < end) tile_block_1x2(accumulate, panel, pstride, g, chunks, qg + i * ldq, ldq, acc + i * ldacc + r0, ldacc);
    }
    if (r0 + 16 <= rows) {
        const int8_t *panel = w + (r0 / 16) * pstride;
        size_t i = i0;
        for (; i + 2 * m <= end; i += 2 * m)
            tile_block_2x1(accumulate, panel, pstride, g, chunks, qg + i * ldq, ldq, acc + i * ldacc + r0, ldacc);
        if (i < end) tile_block_1x1(accumulate, panel, pstride, g, chunks, qg + i * ldq, ldq, acc + i * ldacc + r0, ldacc);
        r0 += 16;
    }
    if (r0 < rows) {
        const int8_t *panel = w + (r0 / 16) * pstride;
        size_t used = (rows - r0) * sizeof(int32_t);
        int32_t part[16 * 16] = {0}; /* columns past rows: loaded and stored, never copied out */
        for (size_t i = i0; i < end; i += m) {
            if (accumulate)
                for (size_t v = 0; v < m; v++) memcpy(part + 16 * v, acc + (i + v) * ldacc + r0, used);
            MEMORY_BARRIER(); /* the tile load below reads part[] */
            tile_block_1x1(accumulate, panel, pstride, g, chunks, qg + i * ldq, ldq, part, 16);
            for (size_t v = 0; v < m; v++) memcpy(acc + (i + v) * ldacc + r0, part + 16 * v, used);
        }
    }
}

/* The vectors [i0, i0 + m * blocks) in blocks of m: the whole chunks of 16 groups, then a K tail of the last
 * (g1 - g0) % 16 groups with tiles configured for it, added to the first pass's sums. */
AMX static void sums(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t m, size_t i0,
                     size_t count, const int8_t *q, size_t ldq, int32_t *acc, size_t ldacc) {
    size_t chunks = (g1 - g0) / 16, kt = (g1 - g0) % 16;
    if (chunks) {
        configure(m, 16);
        pass(w, rows, groups, g0, g0, chunks, m, 0, i0, count, q, ldq, acc, ldacc);
    }
    if (kt) {
        configure(m, kt);
        pass(w, rows, groups, g0, g0 + 16 * chunks, 1, m, chunks != 0, i0, count, q, ldq, acc, ldacc);
    }
}

AMX void lstm_s8_gemm_amx(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n,
                          const int8_t *q, size_t ldq, const int32_t *rowsum, int32_t *acc, size_t ldacc) {
    if (n < AMX_MIN_VECTORS || g1 == g0) {
        lstm_s8_gemm_avx512(w, rows, groups, g0, g1, n, q, ldq, rowsum, acc, ldacc);
        return;
    }
    size_t full = n / 16 * 16;
    if (full) sums(w, rows, groups, g0, g1, 16, 0, full, q, ldq, acc, ldacc);
    if (n > full) sums(w, rows, groups, g0, g1, n - full, full, n - full, q, ldq, acc, ldacc);
    _tile_release();
}

#else
typedef int lstm_s8_amx_unused; /* ISO C forbids an empty translation unit */
#endif
