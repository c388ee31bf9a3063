/* s8_avx2_vnni.c - int8 x int8 products for x86-64 CPUs with AVX2 and AVX-VNNI (the VEX-encoded vpdpbusd
 * on 256-bit registers): Intel's cores without AVX-512 from Alder Lake on (client chips, Sierra Forest and
 * other E-core servers), where the AVX2 table's products widen bytes to 16 bits and run at fp32's rate.
 * The design of s8_avx512.c on 8-lane registers: vpdpbusd multiplies unsigned by signed bytes, so activations
 * go in as q + 128 and the sums are corrected by 128 * rowsum(W): exact int32 sums, the reference's for every
 * input (int32 bounds are checked when a model opens). A 64-byte column group of a panel (16 rows x 4
 * columns, lstm_format.h) is two registers: rows 0-7, then rows 8-15. */
#include "kernels.h"

#ifdef LSTM_HAVE_X86_KERNELS
#include "kernels_x86.h"
#endif

#ifdef LSTM_HAVE_AVX_VNNI_KERNELS
#include <immintrin.h>
#include <string.h>

#define VNNI LSTM_AVX2_VNNI_TARGET
#define VNNI_INLINE VNNI static inline __attribute__((always_inline))

#if defined(__clang__)
#define UNROLL6 _Pragma("unroll")
#else
#define UNROLL6 _Pragma("GCC unroll 6")
#endif

/* acc - 128 * rowsum for the 8 rows from r, stored for the rows < rows (none when r >= rows). */
VNNI_INLINE void store_sums8(__m256i acc, const int32_t *rowsum, size_t r, size_t rows, int32_t *out) {
    if (r + 8 <= rows) {
        __m256i rs = _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)(const void *)(rowsum + r)), 7);
        _mm256_storeu_si256((__m256i *)(void *)(out + r), _mm256_sub_epi32(acc, rs));
    } else if (r < rows) {
        __m256i valid = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(rows - r)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        __m256i rs = _mm256_slli_epi32(_mm256_maskload_epi32((const int *)(rowsum + r), valid), 7);
        _mm256_maskstore_epi32((int *)(out + r), valid, _mm256_sub_epi32(acc, rs));
    }
}

/* Activations q[4g .. 4g+3] + 128 as unsigned bytes, in every 32-bit lane. */
VNNI_INLINE __m256i q_lanes(const int8_t *q) {
    int32_t q4;
    memcpy(&q4, q, 4);
    return _mm256_xor_si256(_mm256_set1_epi32(q4), _mm256_set1_epi32((int)0x80808080U));
}

/* NP <= 4 panels from `base` (panel j at base + j * groups * 64) against one vector: 2 NP accumulators. */
VNNI_INLINE void panels_1v(const int NP, const int8_t *base, size_t groups, size_t g0, size_t g1, const int8_t *q,
                           const int32_t *rowsum, size_t r0, size_t rows, int32_t *out) {
    __m256i a[4][2];
    UNROLL6 for (int j = 0; j < NP; j++) a[j][0] = a[j][1] = _mm256_setzero_si256();
    for (size_t g = g0; g < g1; g++) {
        __m256i qb = q_lanes(q + (g - g0) * 4);
        UNROLL6 for (int j = 0; j < NP; j++) {
            const int8_t *b = base + ((size_t)j * groups + g) * 64;
            a[j][0] = _mm256_dpbusd_avx_epi32(a[j][0], qb, _mm256_loadu_si256((const __m256i *)(const void *)b));
            a[j][1] = _mm256_dpbusd_avx_epi32(a[j][1], qb, _mm256_loadu_si256((const __m256i *)(const void *)(b + 32)));
        }
    }
    UNROLL6 for (int j = 0; j < NP; j++) {
        store_sums8(a[j][0], rowsum, r0 + 16 * (size_t)j, rows, out);
        store_sums8(a[j][1], rowsum, r0 + 16 * (size_t)j + 8, rows, out);
    }
}

/* Four panels (64 rows, 8 accumulators) share each broadcast of the activations, then one at a time. */
VNNI void lstm_s8_gemv_avx2_vnni(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, const int8_t *q,
                                 const int32_t *rowsum, int32_t *acc) {
    size_t panels = lstm_r16(rows) / 16, p = 0;
    for (; p + 4 <= panels; p += 4) panels_1v(4, w + p * groups * 64, groups, g0, g1, q, rowsum, p * 16, rows, acc);
    for (; p < panels; p++) panels_1v(1, w + p * groups * 64, groups, g0, g1, q, rowsum, p * 16, rows, acc);
}

/* One panel x NV <= 6 vectors of activations already biased to unsigned bytes (u = q + 128, row stride ldu):
 * each weight pair loaded feeds NV vectors, each broadcast is a plain load, and the 12 accumulators, 2 weight
 * registers and the broadcast fill 15 of the 16 ymm registers. */
VNNI_INLINE void tile_u8(const int NV, const int8_t *panel, size_t g0, size_t g1, const uint8_t *u, size_t ldu,
                         const int32_t *rowsum, size_t r0, size_t rows, int32_t *acc, size_t ldacc) {
    __m256i a[6][2];
    UNROLL6 for (int v = 0; v < NV; v++) a[v][0] = a[v][1] = _mm256_setzero_si256();
    for (size_t g = g0; g < g1; g++) {
        const int8_t *b = panel + g * 64;
        __m256i w0 = _mm256_loadu_si256((const __m256i *)(const void *)b);
        __m256i w1 = _mm256_loadu_si256((const __m256i *)(const void *)(b + 32));
        UNROLL6 for (int v = 0; v < NV; v++) {
            int32_t u4;
            memcpy(&u4, u + (size_t)v * ldu + (g - g0) * 4, 4);
            __m256i qb = _mm256_set1_epi32(u4);
            a[v][0] = _mm256_dpbusd_avx_epi32(a[v][0], qb, w0);
            a[v][1] = _mm256_dpbusd_avx_epi32(a[v][1], qb, w1);
        }
    }
    UNROLL6 for (int v = 0; v < NV; v++) {
        store_sums8(a[v][0], rowsum, r0, rows, acc + (size_t)v * ldacc);
        store_sums8(a[v][1], rowsum, r0 + 8, rows, acc + (size_t)v * ldacc);
    }
}

#define TILE_U8(NV) tile_u8(NV, panel, g0, g1, u + i * ldu, ldu, rowsum, r0, rows, acc + i * ldacc, ldacc)

/* One panel against m biased vectors: tiles of 6, then the rest. */
VNNI static void panel_u8(const int8_t *panel, size_t g0, size_t g1, const uint8_t *u, size_t m, size_t ldu,
                          const int32_t *rowsum, size_t r0, size_t rows, int32_t *acc, size_t ldacc) {
    size_t i = 0;
    for (; i + 6 <= m; i += 6) TILE_U8(6);
    switch (m - i) {
    case 5: TILE_U8(5); break;
    case 4: TILE_U8(4); break;
    case 3: TILE_U8(3); break;
    case 2: TILE_U8(2); break;
    case 1: TILE_U8(1); break;
    default: break;
    }
}

/* The activations of a chunk of vectors biased once into U8Q_BYTES on the stack (as s8_avx512.c). */
#define U8Q_BYTES 16384

/* Chunk after chunk of vectors, each biased once, then one pass over the weights panel by panel (4 KB at
 * H = 256 and I = 256, in L1 for every tile). Exact int32 sums; only rows < rows are written. Rows of more
 * than 2,730 columns (6 vectors would not fit in U8Q_BYTES) go vector by vector through the gemv. */
VNNI void lstm_s8_gemm_avx2_vnni(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n,
                                 const int8_t *q, size_t ldq, const int32_t *rowsum, int32_t *acc, size_t ldacc) {
    size_t panels = lstm_r16(rows) / 16, cols = (g1 - g0) * 4;
    if (cols * 6 > U8Q_BYTES) {
        for (size_t i = 0; i < n; i++) lstm_s8_gemv_avx2_vnni(w, rows, groups, g0, g1, q + i * ldq, rowsum, acc + i * ldacc);
        return;
    }
    uint8_t u[U8Q_BYTES] __attribute__((aligned(32)));
    size_t chunk = cols ? U8Q_BYTES / cols / 6 * 6 : n;
    for (size_t c0 = 0; c0 < n; c0 += chunk) {
        size_t m = n - c0 < chunk ? n - c0 : chunk;
        for (size_t v = 0; v < m; v++)
            for (size_t k = 0; k < cols; k++) u[v * cols + k] = (uint8_t)(q[(c0 + v) * ldq + k] ^ 0x80);
        for (size_t p = 0; p < panels; p++)
            panel_u8(w + p * groups * 64, g0, g1, u, m, cols, rowsum, p * 16, rows, acc + c0 * ldacc, ldacc);
    }
}

#else
typedef int lstm_s8_avx2_vnni_unused; /* ISO C forbids an empty translation unit */
#endif
