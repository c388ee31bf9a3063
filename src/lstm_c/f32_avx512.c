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
 * than the shape needs (an [8][8] pair made GCC spill the 4 x 4 tiles: 87 -> 65 GMAC/s). */
#define DEFINE_TILE(NAME, MV, MP)                                                                                  \
AVX512 ALWAYS void NAME(const float *w, size_t rows, size_t cols, size_t r0, size_t k0, size_t k1,                 \
                        const float *x, size_t ldx, float *y, size_t ldy, const int NP, const int NV) {            \
    __m512 acc[MV][MP], sup[MV][MP]; /* [vector][panel] */                                                         \
    __mmask16 mask[8];                                                                                             \
    const float *p = w + r0 * cols;                                                                                \
    _Pragma("GCC unroll 8")                                                                                        \
    for (int i = 0; i < NP; i++) mask[i] = rows_mask(r0 + 16 * (size_t)i, rows);                                   \
    for (size_t sb = k0; sb < k1; sb += LSTM_F32_SPAN) {                                                           \
        size_t se = k1 - sb > LSTM_F32_SPAN ? sb + LSTM_F32_SPAN : k1;                                             \
        for (int v = 0; v < NV; v++) /* the superblock's sums start from +0 */                                     \
            for (int i = 0; i < NP; i++) sup[v][i] = _mm512_setzero_ps();                                          \
        for (size_t kb = sb; kb < se; kb += LSTM_F32_BLOCK) {                                                      \
            size_t ke = se - kb > LSTM_F32_BLOCK ? kb + LSTM_F32_BLOCK : se;                                       \
            _Pragma("GCC unroll 8")                                                                                \
            for (int v = 0; v < NV; v++)                                                                           \
                _Pragma("GCC unroll 8")                                                                            \
                for (int i = 0; i < NP; i++) acc[v][i] = _mm512_setzero_ps();                                      \
            for (size_t k = kb; k < ke; k++) {                                                                     \
                __m512 wv[8];                                                                                      \
                _Pragma("GCC unroll 8")                                                                            \
                for (int i = 0; i < NP; i++) wv[i] = _mm512_loadu_ps(p + (size_t)i * cols * 16 + k * 16);          \
                _Pragma("GCC unroll 8")                                                                            \
                for (int v = 0; v < NV; v++) {                                                                     \
                    __m512 xb = _mm512_set1_ps(x[v * ldx + k - k0]);                                               \
                    _Pragma("GCC unroll 8")                                                                        \
                    for (int i = 0; i < NP; i++) acc[v][i] = _mm512_fmadd_ps(wv[i], xb, acc[v][i]);                \
                }                                                                                                  \
            }                                                                                                      \
            _Pragma("GCC unroll 8")                                                                                \
            for (int v = 0; v < NV; v++) /* sup = sup + acc */                                                     \
                _Pragma("GCC unroll 8")                                                                            \
                for (int i = 0; i < NP; i++) sup[v][i] = _mm512_add_ps(sup[v][i], acc[v][i]);                      \
        }                                                                                                          \
        _Pragma("GCC unroll 8")                                                                                    \
        for (int v = 0; v < NV; v++)                                                                               \
            _Pragma("GCC unroll 8")                                                                                \
            for (int i = 0; i < NP; i++) {                                                                         \
                float *yi = y + v * ldy + r0 + 16 * (size_t)i;                                                     \
                _mm512_mask_storeu_ps(yi, mask[i], _mm512_add_ps(_mm512_maskz_loadu_ps(mask[i], yi), sup[v][i]));  \
            }                                                                                                      \
    }                                                                                                              \
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

#else
typedef int lstm_f32_avx512_unused; /* ISO C forbids an empty translation unit */
#endif
