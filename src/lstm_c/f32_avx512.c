/* f32_avx512.c - fp32 products of our own for x86-64 AVX-512, over packed weight panels (lstm_format.h):
 * one 16-row panel is one register; every output is summed in blocks of LSTM_F32_BLOCK columns, each a chain
 * of fused multiply-adds in k order from 0, the blocks of a superblock summed, then added to y (the "fma"
 * family of kernels.h: the same bits
 * as the AVX2, aarch64 NEON and Cortex-M kernels). No horizontal reduction. */
#include "kernels.h"

#ifdef LSTM_HAVE_X86_KERNELS
#include "kernels_x86.h"
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
#define ALWAYS static inline __attribute__((always_inline))

/* rows r0 .. r0 + 15 of a panel that exist when `rows` rows do */
AVX512 ALWAYS __mmask16 rows_mask(size_t r0, size_t rows) {
    size_t valid = rows - r0;
    return valid >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1U << valid) - 1U);
}

/* NP panels from row r0 times NV vectors: NP * NV accumulators in registers, one weight load per panel
 * and k feeding NV fused multiply-adds; each block's accumulators are added into the superblock sums, which
 * are added to y (in memory, masked to the rows that exist) at the end of each superblock.
 * DEFINE_TILE(NAME, MV, MP) defines one for at most MV vectors and MP panels: accumulator arrays no larger
 * than the shape needs (an [8][8] pair made GCC spill the 4 x 4 tiles: 87 -> 65 GMAC/s). In NAME_at, panel
 * i starts at row r0 + PROW(i): RA = H, RB = 16 gives the four gates of 16 units (lstm_f32_step_cell_avx512);
 * NAME is NAME_at with RA = 16, RB = 64, consecutive panels. */
#define PROW(i) ((size_t)((i) & 3) * RA + (size_t)((i) >> 2) * RB)
#define DEFINE_TILE(NAME, MV, MP)                                                                                      \
AVX512 ALWAYS void NAME##_at(const float *w, size_t rows, size_t cols, size_t r0, size_t k0, size_t k1,                \
                        const float *x, size_t ldx, float *y, size_t ldy, const int NP, const int NV,                  \
                        const size_t RA, const size_t RB) {                                                            \
    __m512 acc[MV][MP], sup[MV][MP]; /* [vector][panel] */                                                             \
    __mmask16 mask[8];                                                                                                 \
    const float *p = w + r0 * cols;                                                                                    \
    _Pragma("GCC unroll 8")                                                                                            \
    for (int i = 0; i < NP; i++) mask[i] = rows_mask(r0 + PROW(i), rows);                                              \
    for (size_t sb = k0; sb < k1; sb += LSTM_F32_SPAN) {                                                               \
        size_t se = k1 - sb > LSTM_F32_SPAN ? sb + LSTM_F32_SPAN : k1;                                                 \
        for (int v = 0; v < NV; v++) /* the superblock's sums start from +0 */                                         \
            for (int i = 0; i < NP; i++) sup[v][i] = _mm512_setzero_ps();                                              \
        for (size_t kb = sb; kb < se; kb += LSTM_F32_BLOCK) {                                                          \
            size_t ke = se - kb > LSTM_F32_BLOCK ? kb + LSTM_F32_BLOCK : se;                                           \
            _Pragma("GCC unroll 8")                                                                                    \
            for (int v = 0; v < NV; v++)                                                                               \
                _Pragma("GCC unroll 8")                                                                                \
                for (int i = 0; i < NP; i++) acc[v][i] = _mm512_setzero_ps();                                          \
            for (size_t k = kb; k < ke; k++) {                                                                         \
                __m512 wv[8];                                                                                          \
                _Pragma("GCC unroll 8")                                                                                \
                for (int i = 0; i < NP; i++) wv[i] = _mm512_loadu_ps(p + PROW(i) * cols + k * 16);                     \
                _Pragma("GCC unroll 8")                                                                                \
                for (int v = 0; v < NV; v++) {                                                                         \
                    __m512 xb = _mm512_set1_ps(x[v * ldx + k - k0]);                                                   \
                    _Pragma("GCC unroll 8")                                                                            \
                    for (int i = 0; i < NP; i++) acc[v][i] = _mm512_fmadd_ps(wv[i], xb, acc[v][i]);                    \
                }                                                                                                      \
            }                                                                                                          \
            _Pragma("GCC unroll 8")                                                                                    \
            for (int v = 0; v < NV; v++) /* sup = sup + acc */                                                         \
                _Pragma("GCC unroll 8")                                                                                \
                for (int i = 0; i < NP; i++) sup[v][i] = _mm512_add_ps(sup[v][i], acc[v][i]);                          \
        }                                                                                                              \
        _Pragma("GCC unroll 8")                                                                                        \
        for (int v = 0; v < NV; v++)                                                                                   \
            _Pragma("GCC unroll 8")                                                                                    \
            for (int i = 0; i < NP; i++) {                                                                             \
                float *yi = y + v * ldy + r0 + PROW(i);                                                                \
                _mm512_mask_storeu_ps(yi, mask[i], _mm512_add_ps(_mm512_maskz_loadu_ps(mask[i], yi), sup[v][i]));      \
            }                                                                                                          \
    }                                                                                                                  \
}                                                                                                                      \
AVX512 ALWAYS void NAME(const float *w, size_t rows, size_t cols, size_t r0, size_t k0, size_t k1, const float *x,     \
                        size_t ldx, float *y, size_t ldy, const int NP, const int NV) {                                \
    NAME##_at(w, rows, cols, r0, k0, k1, x, ldx, y, ldy, NP, NV, 16, 64); /* consecutive panels */                     \
}
DEFINE_TILE(tile, 4, 8)     /* the gemv (1 vector x 8 panels) and the tiles of 4 panels x 4 vectors */
DEFINE_TILE(tile_wide, 8, 2) /* 2 panels x 8 vectors, superblock by superblock (vectors() below) */

AVX512 void lstm_f32_gemv_avx512(const float *w, size_t rows, size_t cols, size_t k0, size_t k1, const float *x,
                          float *y) {
    size_t r0 = 0;
    for (; r0 + 128 <= lstm_r16(rows); r0 += 128) tile(w, rows, cols, r0, k0, k1, x, 0, y, 0, 8, 1);
    switch ((lstm_r16(rows) - r0) / 16) {
    case 7: tile(w, rows, cols, r0, k0, k1, x, 0, y, 0, 7, 1); break;
    case 6: tile(w, rows, cols, r0, k0, k1, x, 0, y, 0, 6, 1); break;
    case 5: tile(w, rows, cols, r0, k0, k1, x, 0, y, 0, 5, 1); break;
    case 4: tile(w, rows, cols, r0, k0, k1, x, 0, y, 0, 4, 1); break;
    case 3: tile(w, rows, cols, r0, k0, k1, x, 0, y, 0, 3, 1); break;
    case 2: tile(w, rows, cols, r0, k0, k1, x, 0, y, 0, 2, 1); break;
    case 1: tile(w, rows, cols, r0, k0, k1, x, 0, y, 0, 1, 1); break;
    default: break;
    }
}

/* NP panels from r0 for the vectors [0, n), superblock by superblock: one superblock of two panels (32 KB)
 * stays in L1 while every tile of 8 vectors (then 4, 2, 1) passes over it. Tiles of 4 panels x 4 vectors
 * over all the columns streamed each panel group from L2 once per tile: 65-71 GMAC/s at H = 256, 64 vectors,
 * against 76-80 now (tools/bench_gemm.c; this core's FMA peak measures 102-109). Each output's superblock
 * sums still reach y in superblock order: the bits of tile() over [k0, k1), and of the gemv. */
AVX512 ALWAYS void vectors(const float *w, size_t rows, size_t cols, size_t r0, size_t k0, size_t k1, size_t n,
                           const float *x, size_t ldx, float *y, size_t ldy, const int NP) {
    for (size_t sb = k0; sb < k1; sb += LSTM_F32_SPAN) {
        size_t se = k1 - sb > LSTM_F32_SPAN ? sb + LSTM_F32_SPAN : k1, i = 0;
        const float *xs = x + (sb - k0);
        for (; i + 8 <= n; i += 8) tile_wide(w, rows, cols, r0, sb, se, xs + i * ldx, ldx, y + i * ldy, ldy, NP, 8);
        if (n - i >= 4) tile_wide(w, rows, cols, r0, sb, se, xs + i * ldx, ldx, y + i * ldy, ldy, NP, 4), i += 4;
        if (n - i >= 2) tile_wide(w, rows, cols, r0, sb, se, xs + i * ldx, ldx, y + i * ldy, ldy, NP, 2), i += 2;
        if (n - i >= 1) tile_wide(w, rows, cols, r0, sb, se, xs + i * ldx, ldx, y + i * ldy, ldy, NP, 1);
    }
}

/* Up to 4 panels from r0 for the vectors [0, n) over all of [k0, k1): tiles of 4 vectors, then the rest. */
#define VECTORS4(NP)                                                                                         \
    do {                                                                                                     \
        size_t i = 0;                                                                                        \
        for (; i + 4 <= n; i += 4) tile(w, rows, cols, r0, k0, k1, x + i * ldx, ldx, y + i * ldy, ldy, NP, 4); \
        switch (n - i) {                                                                                     \
        case 3: tile(w, rows, cols, r0, k0, k1, x + i * ldx, ldx, y + i * ldy, ldy, NP, 3); break;          \
        case 2: tile(w, rows, cols, r0, k0, k1, x + i * ldx, ldx, y + i * ldy, ldy, NP, 2); break;          \
        case 1: tile(w, rows, cols, r0, k0, k1, x + i * ldx, ldx, y + i * ldy, ldy, NP, 1); break;          \
        default: break;                                                                                      \
        }                                                                                                    \
    } while (0)

/* Up to 128 columns, 4 panels (at most 32 KB) stay in L1 across the tiles of 4 vectors; wider, the
 * superblock-ordered tiles of 2 panels x 8 vectors above. */
AVX512 void lstm_f32_gemm_avx512(const float *w, size_t rows, size_t cols, size_t k0, size_t k1, size_t n,
                          const float *x, size_t ldx, float *y, size_t ldy) {
    size_t r0 = 0;
    if (k1 - k0 > 128) {
        for (; r0 + 32 <= lstm_r16(rows); r0 += 32) vectors(w, rows, cols, r0, k0, k1, n, x, ldx, y, ldy, 2);
        if (r0 < lstm_r16(rows)) vectors(w, rows, cols, r0, k0, k1, n, x, ldx, y, ldy, 1);
        return;
    }
    for (; r0 + 64 <= lstm_r16(rows); r0 += 64) VECTORS4(4);
    switch ((lstm_r16(rows) - r0) / 16) {
    case 3: VECTORS4(3); break;
    case 2: VECTORS4(2); break;
    case 1: VECTORS4(1); break;
    default: break;
    }
}

/* The fused fp32 step (kernels.h: f32_step_cell): for each block of 16 units, its four gates' rows (4 panels,
 * H rows apart) over the x columns, the cell of the block before (whose gates are complete), then the h
 * columns. The cell's divisions and exps run while the next panels stream in from L2: a step at H = 64,
 * 1.10 -> 1.03 us; H = 128, 3.99 -> 3.85 us; lstm_run's h part at H = 128, 2.19 -> 2.09 us. Blocks of 32 units
 * (8 panels), or each block's cell right after its own gates, gained nothing: the cell's ~450 instructions
 * filled the reorder window before the next loads could issue. Below 96 KB of weights (lstm_run's h part
 * at H = 64: 64 KB) the panels come mostly from L1, the 4 chains of a 16-unit tile wait on FMA latency
 * (575 -> 610 ns), and the unfused sequence runs instead. */
AVX512 void lstm_f32_step_cell_avx512(const float *w, size_t hidden, size_t cols, size_t kx, const float *x,
                                      const float *h, float *gates, float *c, float *hout) {
    size_t rows = 4 * hidden, j = 0, streamed = rows * (x ? cols : cols - kx) * sizeof(float);
    if (hidden % 16 || streamed < 96 * 1024) { /* blocks straddling gates, or weights in L1: unfused */
        if (x) lstm_f32_gemv_avx512(w, rows, cols, 0, kx, x, gates);
        lstm_f32_gemv_avx512(w, rows, cols, kx, cols, h, gates);
        lstm_cell_update_f32_avx512(hidden, gates, c, hout);
        return;
    }
    for (; j < hidden; j += 16) {
        if (x) tile_at(w, rows, cols, j, 0, kx, x, 0, gates, 0, 4, 1, hidden, 16);
        if (j) lstm_cell_update_f32_range_avx512(hidden, j - 16, j, gates, c, hout);
        tile_at(w, rows, cols, j, kx, cols, h, 0, gates, 0, 4, 1, hidden, 16);
    }
    lstm_cell_update_f32_range_avx512(hidden, j - 16, j, gates, c, hout);
}

#else
typedef int lstm_f32_avx512_unused; /* ISO C forbids an empty translation unit */
#endif
