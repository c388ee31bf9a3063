/* s8_amx.c - the batched int8 x int8 product (gemm_s8) on Intel AMX (AMX-TILE, AMX-INT8), used only when the
 * CPU has it and the kernel granted the process its tile state (dispatch.c asks).
 *
 * The int8 panel layout of lstm_format.h is an AMX B tile as it stands: 16 consecutive column groups of a
 * panel are 16 tile rows of 64 bytes (16 weight rows x 4 columns each), stride 64. The A tile holds up to
 * 16 activation vectors x 64 columns (stride ldq), the C tile those vectors x the panel's 16 rows as int32.
 * TDPBSSD multiplies signed by signed bytes: no +128 offset and no rowsum correction (the AVX-512 VNNI
 * kernel needs both); the sums are exact integers, the same bits as every other table.
 *
 * Tiles: 0, 1 accumulators (2 blocks of 16 vectors x one panel); 2, 3 their activations over 64 columns;
 * 4 the panel's 64 columns; 5, 6, 7 the same for the last kt < 16 groups (a K tail, its own shapes: no
 * padding and no copies, every load stays inside the caller's arrays). A call configures the tiles once for
 * its blocks of 16 vectors and once more for a last block of n % 16, and releases them before it returns. */
#include "kernels.h"
#ifdef LSTM_HAVE_X86_KERNELS
#include "kernels_x86.h"
#endif

#ifdef LSTM_HAVE_AMX_KERNELS
#include <immintrin.h>
#include <string.h>

#define AMX __attribute__((target("amx-tile,amx-int8")))

/* Below this many vectors the AVX-512 VNNI kernel is as fast (measured: docs/amx.md). */
#define AMX_MIN_VECTORS 4

/* The 64-byte operand of LDTILECFG (palette 1). */
typedef struct tile_config {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

/* GCC's AMX intrinsics are asm statements that do not tell the compiler which memory they read (LDTILECFG
 * names only the operand's first 8 bytes): a compiler barrier after the configuration is written. */
#define MEMORY_BARRIER() __asm__ __volatile__("" ::: "memory")

/* Tiles for blocks of m vectors (m <= 16) and a K tail of kt groups (0: no tail tiles). */
AMX static void configure(size_t m, size_t kt) {
    tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 4; t++) { /* accumulators and activations: m rows of 64 bytes */
        cfg.rows[t] = (uint8_t)m;
        cfg.colsb[t] = 64;
    }
    cfg.rows[4] = 16;
    cfg.colsb[4] = 64;
    if (kt) {
        cfg.rows[5] = cfg.rows[6] = (uint8_t)m;
        cfg.colsb[5] = cfg.colsb[6] = (uint16_t)(4 * kt);
        cfg.rows[7] = (uint8_t)kt;
        cfg.colsb[7] = 64;
    }
    MEMORY_BARRIER();
    _tile_loadconfig(&cfg);
}

/* Sums of one panel (its groups from g0: `chunks` of 16, then kt) against one block of vectors (V = 1:
 * tile 0) or two blocks 16 vectors apart (V = 2: tiles 0 and 1), stored at out (vector stride ldo int32). */
#define AMX_INLINE AMX static inline __attribute__((always_inline))
AMX_INLINE void panel_block(int V, const int8_t *panel, size_t g0, size_t chunks, size_t kt, const int8_t *q,
                            size_t ldq, int32_t *out, size_t ldo) {
    const int8_t *q1 = q + 16 * ldq, *b = panel + g0 * 64;
    _tile_zero(0);
    if (V == 2) _tile_zero(1);
    for (size_t c = 0; c < chunks; c++, b += 1024) {
        _tile_loadd(4, b, 64);
        _tile_loadd(2, q + 64 * c, (long)ldq);
        _tile_dpbssd(0, 2, 4);
        if (V == 2) {
            _tile_loadd(3, q1 + 64 * c, (long)ldq);
            _tile_dpbssd(1, 3, 4);
        }
    }
    if (kt) {
        _tile_loadd(7, b, 64);
        _tile_loadd(5, q + 64 * chunks, (long)ldq);
        _tile_dpbssd(0, 5, 7);
        if (V == 2) {
            _tile_loadd(6, q1 + 64 * chunks, (long)ldq);
            _tile_dpbssd(1, 6, 7);
        }
    }
    _tile_stored(0, out, (long)(ldo * 4));
    if (V == 2) _tile_stored(1, out + 16 * ldo, (long)(ldo * 4));
}

AMX static void panel_block_1(const int8_t *panel, size_t g0, size_t chunks, size_t kt, const int8_t *q, size_t ldq,
                              int32_t *out, size_t ldo) {
    panel_block(1, panel, g0, chunks, kt, q, ldq, out, ldo);
}
AMX static void panel_block_2(const int8_t *panel, size_t g0, size_t chunks, size_t kt, const int8_t *q, size_t ldq,
                              int32_t *out, size_t ldo) {
    panel_block(2, panel, g0, chunks, kt, q, ldq, out, ldo);
}

/* The vectors [i0, i0 + count) in blocks of m (count a multiple of m), panel after panel (a panel stays in
 * L1 while every block uses it). A last partial panel (rows % 16) goes through a 16 x 16 buffer, so that
 * only rows < rows are written. */
AMX static void blocks(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t chunks, size_t kt, size_t m,
                       size_t i0, size_t count, const int8_t *q, size_t ldq, int32_t *acc, size_t ldacc) {
    int32_t tail[16 * 16];
    for (size_t r0 = 0; r0 < rows; r0 += 16) {
        const int8_t *panel = w + (r0 / 16) * groups * 64;
        if (r0 + 16 <= rows) {
            size_t i = i0;
            for (; i + 2 * m <= i0 + count; i += 2 * m)
                panel_block_2(panel, g0, chunks, kt, q + i * ldq, ldq, acc + i * ldacc + r0, ldacc);
            if (i < i0 + count) panel_block_1(panel, g0, chunks, kt, q + i * ldq, ldq, acc + i * ldacc + r0, ldacc);
        } else {
            for (size_t i = i0; i < i0 + count; i += m) {
                panel_block_1(panel, g0, chunks, kt, q + i * ldq, ldq, tail, 16);
                for (size_t v = 0; v < m; v++)
                    memcpy(acc + (i + v) * ldacc + r0, tail + 16 * v, (rows - r0) * sizeof(int32_t));
            }
        }
    }
}

AMX void lstm_s8_gemm_amx(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n,
                          const int8_t *q, size_t ldq, const int32_t *rowsum, int32_t *acc, size_t ldacc) {
    if (n < AMX_MIN_VECTORS || g1 == g0) {
        lstm_s8_gemm_avx512(w, rows, groups, g0, g1, n, q, ldq, rowsum, acc, ldacc);
        return;
    }
    size_t chunks = (g1 - g0) / 16, kt = (g1 - g0) % 16, full = n / 16 * 16;
    if (full) {
        configure(16, kt);
        blocks(w, rows, groups, g0, chunks, kt, 16, 0, full, q, ldq, acc, ldacc);
    }
    if (n > full) {
        configure(n - full, kt);
        blocks(w, rows, groups, g0, chunks, kt, n - full, full, n - full, q, ldq, acc, ldacc);
    }
    _tile_release();
}

#else
typedef int lstm_s8_amx_unused; /* ISO C forbids an empty translation unit */
#endif
