/* f32_avx2.c - fp32 products of our own for x86-64 with AVX2 and FMA, over packed weight panels
 * (lstm_format.h): a 16-row panel is two registers; every output is summed in blocks of LSTM_F32_BLOCK
 * columns, each a chain of fused multiply-adds in k order from 0, the blocks of a superblock summed, then
 * added to y (the "fma" family of
 * kernels.h: the same bits as the AVX-512, aarch64 NEON and Cortex-M kernels). No horizontal reduction. */
#include "kernels.h"

#ifdef LSTM_HAVE_X86_KERNELS
#include "kernels_x86.h"
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))
#define ALWAYS static inline __attribute__((always_inline))

/* lanes of rows r0 .. r0 + 7 that exist when `rows` rows do */
AVX2 ALWAYS __m256i rows_mask(size_t r0, size_t rows) {
    size_t valid = r0 >= rows ? 0 : rows - r0;
    int v = valid >= 8 ? 8 : (int)valid;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(v), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* NH half-panels (8 rows each) from row r0 times NV vectors: NH * NV accumulators in registers. Half h is
 * rows r0 + 8h .. r0 + 8h + 7: panel (r0 + 8h) / 16, lanes 8 * (h % 2) ... of each k. */
AVX2 ALWAYS void tile(const float *w, size_t rows, size_t cols, size_t r0, size_t k0, size_t k1, const float *x,
                      size_t ldx, float *y, size_t ldy, const int NH, const int NV) {
    __m256 acc[6][8], sup[6][8];
    __m256i mask[8];
    const float *half[8];
#pragma GCC unroll 8
    for (int h = 0; h < NH; h++) {
        size_t r = r0 + 8 * (size_t)h;
        mask[h] = rows_mask(r, rows);
        half[h] = w + (r / 16) * cols * 16 + r % 16;
    }
    const int full = r0 + 8 * (size_t)NH <= rows; /* every row of the tile exists: plain loads and stores */
    for (size_t sb = k0; sb < k1; sb += LSTM_F32_SPAN) {
        size_t se = k1 - sb > LSTM_F32_SPAN ? sb + LSTM_F32_SPAN : k1;
        for (int v = 0; v < NV; v++) /* the superblock's sums start from +0 */
            for (int h = 0; h < NH; h++) sup[v][h] = _mm256_setzero_ps();
        for (size_t kb = sb; kb < se; kb += LSTM_F32_BLOCK) {
            size_t ke = se - kb > LSTM_F32_BLOCK ? kb + LSTM_F32_BLOCK : se;
#pragma GCC unroll 6
            for (int v = 0; v < NV; v++)
#pragma GCC unroll 8
                for (int h = 0; h < NH; h++) acc[v][h] = _mm256_setzero_ps();
            for (size_t k = kb; k < ke; k++) {
                __m256 wv[8];
#pragma GCC unroll 8
                for (int h = 0; h < NH; h++) wv[h] = _mm256_loadu_ps(half[h] + k * 16);
#pragma GCC unroll 6
                for (int v = 0; v < NV; v++) {
                    __m256 xb = _mm256_broadcast_ss(x + v * ldx + k - k0);
#pragma GCC unroll 8
                    for (int h = 0; h < NH; h++) acc[v][h] = _mm256_fmadd_ps(wv[h], xb, acc[v][h]);
                }
            }
#pragma GCC unroll 6
            for (int v = 0; v < NV; v++) /* sup = sup + acc */
#pragma GCC unroll 8
                for (int h = 0; h < NH; h++) sup[v][h] = _mm256_add_ps(sup[v][h], acc[v][h]);
        }
        /* y = y + the superblock's sums */
#pragma GCC unroll 6
        for (int v = 0; v < NV; v++)
#pragma GCC unroll 8
            for (int h = 0; h < NH; h++) {
                float *yh = y + v * ldy + r0 + 8 * (size_t)h;
                if (full)
                    _mm256_storeu_ps(yh, _mm256_add_ps(_mm256_loadu_ps(yh), sup[v][h]));
                else
                    _mm256_maskstore_ps(yh, mask[h], _mm256_add_ps(_mm256_maskload_ps(yh, mask[h]), sup[v][h]));
            }
    }
}

/* 4 panels (8 accumulators) at a time, then the rest. */
AVX2 void lstm_f32_gemv_avx2(const float *w, size_t rows, size_t cols, size_t k0, size_t k1, const float *x, float *y) {
    size_t r0 = 0, end = lstm_r16(rows);
    for (; r0 + 64 <= end; r0 += 64) tile(w, rows, cols, r0, k0, k1, x, 0, y, 0, 8, 1);
    switch ((end - r0) / 16) {
    case 3: tile(w, rows, cols, r0, k0, k1, x, 0, y, 0, 6, 1); break;
    case 2: tile(w, rows, cols, r0, k0, k1, x, 0, y, 0, 4, 1); break;
    case 1: tile(w, rows, cols, r0, k0, k1, x, 0, y, 0, 2, 1); break;
    default: break;
    }
}

/* One panel (2 registers) at a time for tiles of 6 vectors (12 accumulators), then the rest. */
AVX2 void lstm_f32_gemm_avx2(const float *w, size_t rows, size_t cols, size_t k0, size_t k1, size_t n, const float *x,
                        size_t ldx, float *y, size_t ldy) {
    for (size_t r0 = 0; r0 < rows; r0 += 16) {
        size_t i = 0;
        for (; i + 6 <= n; i += 6) tile(w, rows, cols, r0, k0, k1, x + i * ldx, ldx, y + i * ldy, ldy, 2, 6);
        const float *xi = x + i * ldx;
        float *yi = y + i * ldy;
        switch (n - i) {
        case 5: tile(w, rows, cols, r0, k0, k1, xi, ldx, yi, ldy, 2, 5); break;
        case 4: tile(w, rows, cols, r0, k0, k1, xi, ldx, yi, ldy, 2, 4); break;
        case 3: tile(w, rows, cols, r0, k0, k1, xi, ldx, yi, ldy, 2, 3); break;
        case 2: tile(w, rows, cols, r0, k0, k1, xi, ldx, yi, ldy, 2, 2); break;
        case 1: tile(w, rows, cols, r0, k0, k1, xi, ldx, yi, ldy, 2, 1); break;
        default: break;
        }
    }
}

#else
typedef int lstm_f32_avx2_unused; /* ISO C forbids an empty translation unit */
#endif
