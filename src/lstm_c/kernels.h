/* kernels.h - the kernels picked per instruction set when a model is opened: the fp32 matrix-vector
 * and matrix-matrix products, and the int8 kernels over the blocked layout of lstm_format.h (blocks of 16 rows x 4 columns).
 *
 * An int8 matrix has `rows` rows (the blocked data holds r16(rows)) and `groups` column groups of 4 per panel
 * of 16 rows. Each kernel works on the column groups [g0, g1) and on every row; the activation vectors
 * are indexed from column 4 * g0. One table of function pointers per instruction set; the model picks one
 * when it is opened. All tables give identical integer results; float sums may differ in the last bits. */
#ifndef LSTM_KERNELS_H
#define LSTM_KERNELS_H

#include <stddef.h>
#include <stdint.h>

typedef struct lstm_kernels {
    /* fp32: y[m] += A[m][k] x[k], A row-major with row stride lda (the CBLAS path, or an own kernel) */
    void (*sgemv_acc)(size_t m, size_t k, const float *a, size_t lda, const float *x, float *y);
    /* fp32: C[n][m] += X[n][k] W[m][k]^T, all row-major with the given row strides */
    void (*sgemm_nt_acc)(size_t n, size_t m, size_t k, const float *x, size_t ldx, const float *w, size_t ldw,
                         float *c, size_t ldc);
    /* y[r] += scale[r] * sum_k W[r][k] x[k] */
    void (*gemv_f32)(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, const float *x,
                     const float *scale, float *y);
    /* acc[r] = sum_k W[r][k] q[k] exactly for r < rows (acc has room for r16(rows); entries past rows are
     * unspecified); rowsum[r] = sum over the same columns of W[r][k] (kernels that feed q + 128 as
     * unsigned bytes need it; others ignore it). */
    void (*gemv_s8)(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, const int8_t *q,
                    const int32_t *rowsum, int32_t *acc);
    /* gemv_s8 for n vectors in one pass over the weights: vector i at q + i * ldq, its sums at
     * acc + i * ldacc; only rows < rows are written. */
    void (*gemm_s8)(const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n,
                    const int8_t *q, size_t ldq, const int32_t *rowsum, int32_t *acc, size_t ldacc);
} lstm_kernels;

extern const lstm_kernels lstm_q8_reference;
#if defined(__x86_64__) && defined(__GNUC__) && !defined(LSTM_NO_SIMD)
#define LSTM_HAVE_X86_KERNELS 1
extern const lstm_kernels lstm_q8_avx2;
extern const lstm_kernels lstm_q8_avx512_vnni;
#endif

/* The table of an lstm_isa that lstm_isa_supported() accepts (dispatch.c). */
#include "lstm.h"
const lstm_kernels *lstm_kernels_for(lstm_isa isa);

/* Symmetric quantisation of v[n] to q[n] in [-127, 127]; returns the scale (v ~= scale * q).
 * q is zero-padded up to `padded` entries. A zero vector gets scale 0 and all-zero q. */
float lstm_q8_quantize(const float *v, size_t n, int8_t *q, size_t padded);

/* gemm_s8 built from a gemv_s8, vector by vector (panel_tail: 16 int32 of scratch). */
void lstm_q8_gemm_by_vectors(void (*gemv)(const int8_t *, size_t, size_t, size_t, size_t, const int8_t *,
                                          const int32_t *, int32_t *),
                             const int8_t *w, size_t rows, size_t groups, size_t g0, size_t g1, size_t n,
                             const int8_t *q, size_t ldq, const int32_t *rowsum, int32_t *acc, size_t ldacc,
                             int32_t *panel_tail);

/* y[i] = bias[i] + acc_x[i] * (sx * scale_x[i]) + acc_h[i] * (sh * scale_h[i]): the float epilogue of the
 * int8-dynamic path, shared by every ISA so that results stay identical. */
void lstm_q8_gates(float *y, const float *bias, const int32_t *acc_x, float sx, const float *scale_x,
                   const int32_t *acc_h, float sh, const float *scale_h, size_t n);

static inline size_t lstm_r4(size_t n) { return (n + 3) & ~(size_t)3; }
static inline size_t lstm_r16(size_t n) { return (n + 15) & ~(size_t)15; }

#endif /* LSTM_KERNELS_H */
