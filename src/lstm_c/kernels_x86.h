/* kernels_x86.h - the x86-64 kernels that dispatch.c puts in the AVX2 and AVX-512 tables. */
#ifndef LSTM_KERNELS_X86_H
#define LSTM_KERNELS_X86_H

#include "kernels.h"

/* Complete unrolling of the loops over a tile's vectors and accumulators, whatever the optimisation level
 * (GCC unrolls them by itself only at -O3), so that accumulator arrays live in registers. */
#if defined(__clang__)
#define UNROLL _Pragma("unroll")
#else
#define UNROLL _Pragma("GCC unroll 4")
#endif

/* Vectors per tile of the AVX2 batched int8 products whose widened weight block feeds every vector of the
 * tile (lstm_s8_gemm_avx2's int16 path, lstm_s16_gemm_avx2): 3 with clang; 2 with GCC, which at 3 gives each
 * vector's broadcast a register of its own and spills accumulators (16 ymm registers). [1024 x 512] x 64 on a
 * Sapphire Rapids core running the AVX2 code: gemm_s8 GCC 55 GMAC/s at 3, 62-65 at 2, clang 71-73 either way;
 * gemm_s16 GCC 700 us at 3, 514-531 at 2, clang 435 at 3, 480 at 2. The same sums at any width. */
#if defined(__clang__)
#define LSTM_AVX2_INT_TILE 3
#else
#define LSTM_AVX2_INT_TILE 2
#endif

#define LSTM_DECLARE_ISA_KERNELS(isa)                                                                        \
    LSTM_DECLARE_F32_KERNELS(isa)                                                                            \
    LSTM_DECLARE_INT_KERNELS(isa)                                                                            \
    void lstm_s8_gemv_f32_##isa(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1,           \
                                const float *x, const float *scale, float *y);                               \
    void lstm_s8_gemm_f32_##isa(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n, \
                                const float *x, size_t ldx, const float *scale, float *y, size_t ldy);       \
    float lstm_quantize_##isa(const float *v, size_t n, int8_t *q, size_t padded);                           \
    void lstm_q8_gates_##isa(float *y, const float *bias, const int32_t *acc_x, float sx,                    \
                             const float *scale_x, const int32_t *acc_h, float sh, const float *scale_h,      \
                             size_t n);                                                                      \
    void lstm_cell_update_##isa(size_t hidden, float *gates, float *c, float *hfull);                        \
    void lstm_activate_##isa(unsigned activation, float *v, size_t n);                                        \
    void lstm_cell_update_f32_##isa(size_t hidden, float *gates, float *c, float *hfull);                    \
    void lstm_cell_update_f32_range_##isa(size_t hidden, size_t j0, size_t j1, const float *gates, float *c,  \
                                          float *hfull);                                                     \
    void lstm_activate_f32_##isa(unsigned activation, float *v, size_t n);                                    \
    float lstm_quantize16_##isa(const float *v, size_t n, int16_t *q, size_t padded);                        \
    void lstm_q16_gates_##isa(float *y, const float *bias, const int64_t *acc_x, float sx,                   \
                              const float *scale_x, const int64_t *acc_h, float sh, const float *scale_h,     \
                              size_t n);

LSTM_DECLARE_ISA_KERNELS(avx2)
LSTM_DECLARE_ISA_KERNELS(avx512)
void lstm_f32_step_cell_avx512(const float *w, size_t hidden, size_t cols, size_t kx, const float *x, const float *h,
                               float *gates, float *c, float *hout);

/* AVX-VNNI (s8_avx2_vnni.c, s16_avx2_vnni.c): compilers that know _mm256_dpbusd_avx_epi32 (GCC 11, clang 12 and later);
 * LSTM_NO_AVX_VNNI leaves it out. */
#if !defined(LSTM_NO_AVX_VNNI) &&                                                                             \
    ((defined(__clang__) && __clang_major__ >= 12) || (!defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 11))
#define LSTM_HAVE_AVX_VNNI_KERNELS 1
#define LSTM_AVX2_VNNI_TARGET __attribute__((target("avx2,fma,avxvnni")))
/* The avx2_vnni table's products with vpdpbusd on 256-bit registers: int8 x int8 (s8_avx2_vnni.c) and
 * int8 x int16 (s16_avx2_vnni.c). */
LSTM_DECLARE_INT_KERNELS(avx2_vnni)
#endif

/* int8 x int16 products (s16_avx512.c, s16_avx2_vnni.c): one block of a vector's activations split into
 * bytes, hi[k] = q[k] >> 8 and lo[k] = q[k] & 255, reused by every panel. */
typedef struct lstm_s16_split {
    int8_t hi[4 * LSTM_S16_BLOCK_GROUPS];
    uint8_t lo[4 * LSTM_S16_BLOCK_GROUPS];
} lstm_s16_split;

/* AMX (AMX-TILE, AMX-INT8; s8_amx.c): Linux only (the process must ask the kernel for the tile state,
 * dispatch.c), compilers that know the instructions (GCC 11, clang 12 and later); LSTM_NO_AMX leaves it out. */
#if defined(__linux__) && !defined(LSTM_NO_AMX) &&                                                            \
    ((defined(__clang__) && __clang_major__ >= 12) || (!defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 11))
#define LSTM_HAVE_AMX_KERNELS 1
/* gemm_s8 on AMX tiles (TDPBSSD); one vector, or no columns, go to lstm_s8_gemm_avx512. */
void lstm_s8_gemm_amx(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n, const int8_t *q,
                      size_t ldq, const int32_t *rowsum, int32_t *acc, size_t ldacc);
/* gemm_s16 on AMX tiles (activations split into high and low bytes, s16_amx.c); fewer than 5 vectors, or
 * no columns, go to lstm_s16_gemm_avx512. */
void lstm_s16_gemm_amx(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n,
                       const int16_t *q, size_t ldq, int64_t *acc, size_t ldacc);
#endif

#endif /* LSTM_KERNELS_X86_H */
