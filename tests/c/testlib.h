/* testlib.h - what the C tests share: a tiny test harness, a seeded random generator, random networks
 * and a model-file writer built from lstm_format.h alone (no code of the library's reader is used). */
#ifndef TESTLIB_H
#define TESTLIB_H

#include <stddef.h>
#include <stdint.h>

#include "lstm.h"

/* ---- harness ---------------------------------------------------------------------------------------- */

/* Record one check; prints the first few failures of each test with their place. */
void check_at(int ok, const char *file, int line, const char *what);
#define CHECK(cond) check_at((cond) != 0, __FILE__, __LINE__, #cond)
/* A call that must return a given status; the failure message names both statuses. */
void check_status_at(lstm_status got, lstm_status want, const char *file, int line, const char *what);
#define CHECK_STATUS(call, want) check_status_at((call), (want), __FILE__, __LINE__, #call)
#define CHECK_OK(call) CHECK_STATUS(call, LSTM_OK)
/* An error (e.g. a max_abs_diff) that must not exceed tol; the failure message shows both. */
void check_error_at(double err, double tol, const char *file, int line, const char *what);
#define CHECK_ERR(err, tol) check_error_at((err), (tol), __FILE__, __LINE__, #err)

/* Name what the following checks are about (printf-style), shown with their failures; "" for nothing. */
void test_context(const char *fmt, ...);

/* Run one test function (it passes when none of its checks failed). */
void run_test(const char *name, void (*fn)(void));
/* Print "N passed, M failed" and return the process exit code. */
int test_summary(void);

/* ---- helpers ---------------------------------------------------------------------------------------- */

/* malloc that aborts the test program on failure. */
void *xmalloc(size_t n);

/* splitmix64: a seeded generator, the same numbers on every platform. */
typedef struct rng { uint64_t s; } rng;
uint64_t rng_next(rng *r);
/* uniform in [-scale, scale) */
float rng_uniform(rng *r, float scale);
/* n uniform floats in [-scale, scale), malloc'd */
float *random_floats(rng *r, size_t n, float scale);

/* little-endian field access */
uint32_t get32(const unsigned char *p);
uint64_t get64(const unsigned char *p);
void put32(unsigned char *p, uint32_t v);
void put64(unsigned char *p, uint64_t v);

/* CRC32 (IEEE 802.3, as zlib.crc32) of n bytes, continuing from crc (0 to start). */
uint32_t crc32_ieee(const unsigned char *p, size_t n, uint32_t crc);
/* Recompute a model file's CRC32 field over its declared size (clipped to len), as a writer would. */
/* Recompute the fingerprint from the tensor table and data, then the CRC (set_file_crc: the CRC only). */
void fix_file_crc(unsigned char *file, size_t len);
void set_file_crc(unsigned char *file, size_t len);
uint64_t file_fingerprint(const unsigned char *file, size_t len);

/* Float index of element (r, k) of a packed [rows, cols] fp32 matrix (F32_PANELS in lstm_format.h). */
static inline size_t panel_index(size_t r, size_t k, size_t cols) { return r / 16 * cols * 16 + k * 16 + r % 16; }

/* largest |a[i] - b[i]| */
double max_abs_diff_ff(const float *a, const float *b, size_t n);
double max_abs_diff_fd(const float *a, const double *b, size_t n);

/* ---- random networks and their model files ---------------------------------------------------------- */

typedef struct net_spec {
    uint32_t input_size, hidden_size, proj_size, num_layers, num_directions, head_size, head_activation;
    uint64_t seed;
    float scale; /* every weight and bias uniform in [-scale, scale) */
} net_spec;

/* One direction of one layer, in the file's layout. */
typedef struct net_cell {
    float *w;    /* [4H][in + Hr]: [W_ih | W_hh], gate blocks i, f, g, o */
    float *b;    /* [4H] */
    float *w_hr; /* [P][H], or NULL */
    uint32_t in; /* input width of the layer */
} net_cell;

typedef struct net {
    net_spec spec;
    uint32_t hr, layer_out, output_size;
    net_cell cells[LSTM_MAX_LAYERS][2];
    float *head_w; /* [head][layer_out], or NULL */
    float *head_b; /* [head], or NULL */
} net;

void net_make(net *n, const net_spec *spec);
void net_free(net *n);

/* The model file of a net in a malloc'd buffer of exactly its size (*len). Tensors are listed in the
 * natural order (layer by layer, then the head) or, when `reversed`, in the opposite order. */
unsigned char *net_write(const net *n, int reversed, size_t *len);

/* The same net with every layer stored as `dtype` (LSTM_LAYER_INT8 or LSTM_LAYER_INT8_DYNAMIC; the head
 * stays fp32), as lstm_embed/format.py writes it: per-row symmetric quantisation (scale = max |w| / 127,
 * no clipping search) of W_ih, W_hh and the projection, the blocked layout, W_SCALE, W_ROWSUM, PROJ_SCALE. */
unsigned char *net_write_q8(const net *n, lstm_layer_dtype dtype, size_t *len);

/* ---- integer-only (int16x8) networks (docs/int16x8.md) ----------------------------------------------- */

/* Every stored value of an int16x8 model, unpadded and row-major; the writer lays them out. */
typedef struct int_net {
    uint32_t input_size, hidden_size, num_layers, head_size, head_activation;
    int8_t *w[LSTM_MAX_LAYERS];     /* [4H][in + H]: [W_ih | W_hh], gate blocks i, f, g, o */
    float *bias[LSTM_MAX_LAYERS];   /* [4H] float bias (stored, unused by the integer step) */
    float *wscale[LSTM_MAX_LAYERS]; /* [2][4H] (stored, unused by the integer step) */
    int32_t *qp[LSTM_MAX_LAYERS];   /* [5][4H]: M_x, S_x, M_h, S_h, B */
    int8_t *head_w;                 /* [head][H], or NULL */
    float *head_b;                  /* [head] */
    int32_t *head_qp;               /* [3][head]: M_y, S_y, B_y */
    float io[4];                    /* input_scale, inv_input_scale, output_scale, 0 */
} int_net;

/* A random valid int16x8 net: int8 weights in [-127, 127], multipliers in [2^30, 2^31) with shifts that
 * put typical pre-activations around 1 (some rows with extreme values: M = 0, S = 1, |B| = 2^29), random
 * float biases and scales. */
void int_net_make(int_net *n, uint32_t input_size, uint32_t hidden_size, uint32_t num_layers, uint32_t head_size,
                  uint32_t head_activation, uint64_t seed);
void int_net_free(int_net *n);
/* Its model file (layer dtype 4 everywhere), malloc'd, *len bytes; `dtype_override` >= 0 writes that
 * layer dtype byte for layer 0 instead (for malformed files). */
unsigned char *int_net_write(const int_net *n, int dtype_override, size_t *len);

/* A net, its file and the model opened over it. */
typedef struct tmodel {
    net n;
    unsigned char *bytes;
    size_t len;
    lstm_model *m;
} tmodel;

/* Build, write and open; returns 0 (after a failed check) if the library refuses the file. */
int tmodel_open(tmodel *t, const net_spec *spec);
void tmodel_close(tmodel *t);

/* A state of model m in a malloc'd buffer (*buf receives it, *len its size when len is not NULL). */
lstm_state *new_state(const lstm_model *m, void **buf, size_t *len);

/* n random inputs of width `width` in [-scale, scale) */
float *random_inputs(uint64_t seed, size_t n, size_t width, float scale);

#endif /* TESTLIB_H */
