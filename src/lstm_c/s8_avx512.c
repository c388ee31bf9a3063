/* s8_avx512.c - int8 kernels for x86-64 with AVX-512 (F, BW, VL) and VNNI, used only when the CPU has
 * them. vpdpbusd multiplies unsigned by signed bytes, so activations go in as q + 128 and the sum is
 * corrected by 128 * rowsum(W): exact, no saturation (int32 bounds are checked when a model opens). */
#include "kernels.h"

#ifdef LSTM_HAVE_X86_KERNELS
#include "kernels_x86.h"
#include <immintrin.h>
#include <string.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,fma")))

/* Within each 128-bit lane: [a0 + a1, a2 + a3, b0 + b1, b2 + b3]. */
AVX512 static inline __m512 pair_sums(__m512 a, __m512 b) {
    return _mm512_add_ps(_mm512_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
}

/* Gather index: row r sits at position 4 * (r % 4) + r / 4. */
AVX512 static inline __m512i row_order(void) {
    return _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
}

/* The order of kernels.h: 4 partial sums per row (a rounded multiply, then a rounded add: no FMA), then
 * (s0 + s1) + (s2 + s3) by two rounds of pairwise adds, then y += scale * sum: the reference's bits. */
AVX512 void lstm_s8_gemv_f32_avx512(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1,
                                   const float *x, const float *scale, float *y) {
    for (size_t r0 = 0; r0 < rows; r0 += 16) {
        const int8_t *panel = w + (r0 / 16) * groups * 64;
        __m512 acc[4];
        for (int j = 0; j < 4; j++) acc[j] = _mm512_setzero_ps();
        for (size_t g = g0; g < g1; g++) {
            const int8_t *b = panel + g * 64;
            __m512 xb = _mm512_broadcast_f32x4(_mm_loadu_ps(x + (g - g0) * 4));
            for (int j = 0; j < 4; j++) { /* rows 4j..4j+3: 16 bytes -> 16 floats */
                __m128i bytes = _mm_loadu_si128((const __m128i *)(const void *)(b + 16 * j));
                acc[j] = _mm512_add_ps(acc[j], _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(bytes)), xb));
            }
        }
        /* acc[j], 128-bit lane i: the 4 partial sums of row 4j + i. Pairwise adds within lanes leave row
         * 4j + i at position 4i + j; one permutation restores row order. */
        __m512 h01 = pair_sums(acc[0], acc[1]), h23 = pair_sums(acc[2], acc[3]);
        __m512 sums = _mm512_permutexvar_ps(row_order(), pair_sums(h01, h23));
        __mmask16 valid = (__mmask16)(r0 + 16 <= rows ? 0xFFFF : (1U << (rows - r0)) - 1U);
        __m512 yv = _mm512_maskz_loadu_ps(valid, y + r0);
        yv = _mm512_add_ps(yv, _mm512_mul_ps(_mm512_maskz_loadu_ps(valid, scale + r0), sums));
        _mm512_mask_storeu_ps(y + r0, valid, yv);
    }
}

/* Forced inlining, so that a tile's vector count is a constant, and complete unrolling of the loops over it
 * whatever the optimisation level: the accumulator arrays then live in registers. */
#define AVX512_INLINE AVX512 static inline __attribute__((always_inline))

/* One panel (16 rows) against V <= 4 vectors (x + v * ldx): for each vector exactly the operations of
 * lstm_s8_gemv_f32_avx512, with each 16-byte weight load converted to float once for all V vectors (16
 * accumulators, 4 converted weight blocks and 4 activation broadcasts: 24 of the 32 zmm registers). */
AVX512_INLINE void panel_f32(int V, const int8_t *panel, size_t g0, size_t g1, const float *x, size_t ldx,
                             const float *scale, size_t r0, size_t rows, float *y, size_t ldy) {
    __m512 acc[4][4];
    UNROLL for (int v = 0; v < V; v++)
        UNROLL for (int j = 0; j < 4; j++) acc[v][j] = _mm512_setzero_ps();
    for (size_t g = g0; g < g1; g++) {
        const int8_t *b = panel + g * 64;
        __m512 xb[4], wf[4];
        UNROLL for (int v = 0; v < V; v++)
            xb[v] = _mm512_broadcast_f32x4(_mm_loadu_ps(x + (size_t)v * ldx + (g - g0) * 4));
        UNROLL for (int j = 0; j < 4; j++) {
            __m128i bytes = _mm_loadu_si128((const __m128i *)(const void *)(b + 16 * j));
            wf[j] = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(bytes));
        }
        UNROLL for (int v = 0; v < V; v++)
            UNROLL for (int j = 0; j < 4; j++) acc[v][j] = _mm512_add_ps(acc[v][j], _mm512_mul_ps(wf[j], xb[v]));
    }
    __mmask16 valid = (__mmask16)(r0 + 16 <= rows ? 0xFFFF : (1U << (rows - r0)) - 1U);
    __m512 sc = _mm512_maskz_loadu_ps(valid, scale + r0);
    UNROLL for (int v = 0; v < V; v++) {
        __m512 h01 = pair_sums(acc[v][0], acc[v][1]), h23 = pair_sums(acc[v][2], acc[v][3]);
        __m512 sums = _mm512_permutexvar_ps(row_order(), pair_sums(h01, h23));
        float *yv = y + (size_t)v * ldy + r0;
        _mm512_mask_storeu_ps(yv, valid, _mm512_add_ps(_mm512_maskz_loadu_ps(valid, yv), _mm512_mul_ps(sc, sums)));
    }
}

#define PANEL_F32(V)                                                                                         \
    AVX512 static void panel_f32_##V(const int8_t *panel, size_t g0, size_t g1, const float *x, size_t ldx,  \
                                     const float *scale, size_t r0, size_t rows, float *y, size_t ldy) {     \
        panel_f32(V, panel, g0, g1, x, ldx, scale, r0, rows, y, ldy);                                        \
    }
PANEL_F32(4)
PANEL_F32(3)
PANEL_F32(2)
PANEL_F32(1)

/* One pass over the weights: panel after panel (it stays in L1), all vectors against it, 4 at a time, the
 * remaining 1 to 3 together. Every output bit-identical to lstm_s8_gemv_f32_avx512 on its vector. */
AVX512 void lstm_s8_gemm_f32_avx512(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n,
                                     const float *x, size_t ldx, const float *scale, float *y, size_t ldy) {
    for (size_t r0 = 0; r0 < rows; r0 += 16) {
        const int8_t *panel = w + (r0 / 16) * groups * 64;
        size_t i = 0;
        for (; i + 4 <= n; i += 4) panel_f32_4(panel, g0, g1, x + i * ldx, ldx, scale, r0, rows, y + i * ldy, ldy);
        switch (n - i) {
        case 3: panel_f32_3(panel, g0, g1, x + i * ldx, ldx, scale, r0, rows, y + i * ldy, ldy); break;
        case 2: panel_f32_2(panel, g0, g1, x + i * ldx, ldx, scale, r0, rows, y + i * ldy, ldy); break;
        case 1: panel_f32_1(panel, g0, g1, x + i * ldx, ldx, scale, r0, rows, y + i * ldy, ldy); break;
        default: break;
        }
    }
}

/* Activations q[4g .. 4g+3] + 128 as unsigned bytes, in every 32-bit lane. */
AVX512 static inline __m512i q_lanes(const int8_t *q) {
    int32_t q4;
    memcpy(&q4, q, 4);
    return _mm512_xor_si512(_mm512_set1_epi32(q4), _mm512_set1_epi32((int)0x80808080U));
}

/* acc - 128 * rowsum for rows [r0, r0 + 16), stored for the rows < rows. */
AVX512 static inline void store_sums(__m512i acc, const int32_t *rowsum, size_t r0, size_t rows, int32_t *out) {
    __mmask16 valid = (__mmask16)(r0 + 16 <= rows ? 0xFFFF : (1U << (rows - r0)) - 1U);
    __m512i rs = _mm512_slli_epi32(_mm512_maskz_loadu_epi32(valid, rowsum + r0), 7);
    _mm512_mask_storeu_epi32(out + r0, valid, _mm512_sub_epi32(acc, rs));
}

/* One panel x one vector: the edges of the tiling. */
AVX512 static void tile_1x1(const int8_t *base, size_t g0, size_t g1, const int8_t *q,
                            const int32_t *rowsum, size_t r0, size_t rows, int32_t *acc) {
    __m512i a = _mm512_setzero_si512();
    for (size_t g = g0; g < g1; g++)
        a = _mm512_dpbusd_epi32(a, q_lanes(q + (g - g0) * 4), _mm512_loadu_si512(base + g * 64));
    store_sums(a, rowsum, r0, rows, acc);
}

/* Four panels (64 rows) at a time share each broadcast of the activations; the accumulators stay in
 * registers (loops unrolled). */
AVX512 void lstm_s8_gemv_avx512(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1,
                                  const int8_t *q, const int32_t *rowsum, int32_t *acc_out) {
    size_t panels = lstm_r16(rows) / 16, p = 0;
    for (; p + 4 <= panels; p += 4) {
        const int8_t *base = w + p * groups * 64;
        __m512i acc[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(),
                          _mm512_setzero_si512()};
        for (size_t g = g0; g < g1; g++) {
            __m512i qb = q_lanes(q + (g - g0) * 4);
            UNROLL for (int j = 0; j < 4; j++)
                acc[j] = _mm512_dpbusd_epi32(acc[j], qb, _mm512_loadu_si512(base + (j * groups + g) * 64));
        }
        UNROLL for (int j = 0; j < 4; j++) store_sums(acc[j], rowsum, (p + (size_t)j) * 16, rows, acc_out);
    }
    for (; p < panels; p++) tile_1x1(w + p * groups * 64, g0, g1, q, rowsum, p * 16, rows, acc_out);
}

/* A full tile: 4 panels (64 rows) x 4 vectors. Each weight block loaded feeds 4 vectors, each broadcast
 * of activations feeds 4 panels, and the 16 accumulators stay in registers (loops unrolled). */
AVX512 static void tile_4x4(const int8_t *base, size_t groups, size_t g0, size_t g1, const int8_t *q, size_t ldq,
                            const int32_t *rowsum, size_t r0, size_t rows, int32_t *acc, size_t ldacc) {
    __m512i a[4][4];
    UNROLL for (int j = 0; j < 4; j++)
        UNROLL for (int v = 0; v < 4; v++) a[j][v] = _mm512_setzero_si512();
    for (size_t g = g0; g < g1; g++) {
        __m512i wb[4], qb[4];
        UNROLL for (int j = 0; j < 4; j++) wb[j] = _mm512_loadu_si512(base + (j * groups + g) * 64);
        UNROLL for (int v = 0; v < 4; v++) qb[v] = q_lanes(q + v * ldq + (g - g0) * 4);
        UNROLL for (int j = 0; j < 4; j++)
            UNROLL for (int v = 0; v < 4; v++) a[j][v] = _mm512_dpbusd_epi32(a[j][v], qb[v], wb[j]);
    }
    UNROLL for (int j = 0; j < 4; j++)
        UNROLL for (int v = 0; v < 4; v++) store_sums(a[j][v], rowsum, r0 + 16 * (size_t)j, rows, acc + v * ldacc);
}

#if defined(__clang__)
#define UNROLL8 _Pragma("unroll")
#else
#define UNROLL8 _Pragma("GCC unroll 8")
#endif

/* NP <= 2 panels x NV <= 8 vectors of activations already biased to unsigned bytes (u = q + 128): each
 * broadcast is a plain load (no xor, no move from a general register competing with vpdpbusd for ports 0
 * and 5), each weight block feeds NV vectors, 16 accumulators stay in registers. */
AVX512_INLINE void tile_u8(const int NP, const int NV, const int8_t *base, size_t groups, size_t g0, size_t g1,
                           const uint8_t *u, size_t ldu, const int32_t *rowsum, size_t r0, size_t rows,
                           int32_t *acc, size_t ldacc) {
    __m512i a[2][8];
    UNROLL8 for (int j = 0; j < NP; j++)
        UNROLL8 for (int v = 0; v < NV; v++) a[j][v] = _mm512_setzero_si512();
    for (size_t g = g0; g < g1; g++) {
        __m512i wb[2];
        UNROLL8 for (int j = 0; j < NP; j++) wb[j] = _mm512_loadu_si512(base + (j * groups + g) * 64);
        UNROLL8 for (int v = 0; v < NV; v++) {
            int32_t q4;
            memcpy(&q4, u + (size_t)v * ldu + (g - g0) * 4, 4);
            __m512i qb = _mm512_set1_epi32(q4);
            UNROLL8 for (int j = 0; j < NP; j++) a[j][v] = _mm512_dpbusd_epi32(a[j][v], qb, wb[j]);
        }
    }
    UNROLL8 for (int j = 0; j < NP; j++)
        UNROLL8 for (int v = 0; v < NV; v++) store_sums(a[j][v], rowsum, r0 + 16 * (size_t)j, rows, acc + v * ldacc);
}

/* The NP panels from `base` against m biased vectors: tiles of 8, then 4, 2 and 1. */
#define TILE_U8_AT(NP, NV) \
    tile_u8(NP, NV, base, groups, g0, g1, u + i * ldu, ldu, rowsum, r0, rows, acc + i * ldacc, ldacc)
#define TILES_U8(NP)                                                                                          \
    AVX512 static void tiles_u8_##NP(const int8_t *base, size_t groups, size_t g0, size_t g1, const uint8_t *u, \
                                     size_t m, size_t ldu, const int32_t *rowsum, size_t r0, size_t rows,       \
                                     int32_t *acc, size_t ldacc) {                                              \
        size_t i = 0;                                                                                          \
        for (; i + 8 <= m; i += 8) TILE_U8_AT(NP, 8);                                                          \
        if (m - i >= 4) TILE_U8_AT(NP, 4), i += 4;                                                             \
        if (m - i >= 2) TILE_U8_AT(NP, 2), i += 2;                                                             \
        if (m - i >= 1) TILE_U8_AT(NP, 1);                                                                     \
    }
TILES_U8(2)
TILES_U8(1)

/* The activations of a chunk of vectors biased once into U8Q_BYTES (16 KB) on the stack. [1024 x 512] x 64
 * vectors (tools/bench_gemm.c): 148-157 us with 4 x 4 tiles xoring each broadcast -> 116-121 us (290 GMAC/s;
 * this core's vpdpbusd peak is 385). */
#define U8Q_BYTES 16384

/* Chunk after chunk of vectors, each biased once, then one pass over the weights (2 panels at a time: 8 KB
 * at H = 256, in L1 for every tile). Exact int32 sums, the reference's for every input; only rows < rows are
 * written. Rows of more than 2048 columns (8 vectors would not fit in U8Q_BYTES) take the 4 x 4 tiles that
 * bias every broadcast. */
AVX512 void lstm_s8_gemm_avx512(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n,
                                  const int8_t *q, size_t ldq, const int32_t *rowsum, int32_t *acc, size_t ldacc) {
    size_t panels = lstm_r16(rows) / 16, cols = (g1 - g0) * 4;
    if (cols * 8 > U8Q_BYTES) {
        size_t full_p = panels / 4 * 4, full_v = n / 4 * 4;
        for (size_t p = 0; p < panels; p++) {
            const int8_t *base = w + p * groups * 64;
            if (p % 4 == 0 && p < full_p)
                for (size_t i = 0; i < full_v; i += 4)
                    tile_4x4(base, groups, g0, g1, q + i * ldq, ldq, rowsum, p * 16, rows, acc + i * ldacc, ldacc);
            for (size_t i = p < full_p ? full_v : 0; i < n; i++)
                tile_1x1(base, g0, g1, q + i * ldq, rowsum, p * 16, rows, acc + i * ldacc);
        }
        return;
    }
    uint8_t u[U8Q_BYTES] __attribute__((aligned(64)));
    size_t chunk = cols ? U8Q_BYTES / cols / 8 * 8 : n;
    for (size_t c0 = 0; c0 < n; c0 += chunk) {
        size_t m = n - c0 < chunk ? n - c0 : chunk, p = 0;
        for (size_t v = 0; v < m; v++)
            for (size_t k = 0; k < cols; k++) u[v * cols + k] = (uint8_t)(q[(c0 + v) * ldq + k] ^ 0x80);
        for (; p + 2 <= panels; p += 2)
            tiles_u8_2(w + p * groups * 64, groups, g0, g1, u, m, cols, rowsum, p * 16, rows, acc + c0 * ldacc, ldacc);
        if (p < panels)
            tiles_u8_1(w + p * groups * 64, groups, g0, g1, u, m, cols, rowsum, p * 16, rows, acc + c0 * ldacc, ldacc);
    }
}

#else
typedef int lstm_s8_avx512_unused; /* ISO C forbids an empty translation unit */
#endif
