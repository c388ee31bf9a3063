/* testlib.c - harness, random numbers, random networks and the model-file writer of testlib.h. */
#include "testlib.h"

#include "sha256.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "lstm_format.h"

/* ---- harness ---------------------------------------------------------------------------------------- */

#define MAX_REPORTS_PER_TEST 10

static int g_passed, g_failed, g_test_failures;
static const char *g_test_name = "";
static char g_context[200];

void test_context(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_context, sizeof g_context, fmt, ap);
    va_end(ap);
}

void check_at(int ok, const char *file, int line, const char *what) {
    if (ok) return;
    if (g_test_failures < MAX_REPORTS_PER_TEST)
        printf("  FAIL %s: %s:%d: %s%s%s\n", g_test_name, file, line, what, g_context[0] ? " -- " : "", g_context);
    else if (g_test_failures == MAX_REPORTS_PER_TEST) printf("  (further failures of %s not shown)\n", g_test_name);
    g_test_failures++;
}

void check_status_at(lstm_status got, lstm_status want, const char *file, int line, const char *what) {
    char msg[512];
    if (got == want) return;
    snprintf(msg, sizeof msg, "%s returned %d (%s), expected %d (%s)", what, (int)got, lstm_status_str(got),
             (int)want, lstm_status_str(want));
    check_at(0, file, line, msg);
}

void check_error_at(double err, double tol, const char *file, int line, const char *what) {
    char msg[512];
    if (err <= tol) return;
    snprintf(msg, sizeof msg, "%s = %.3g, more than %.3g", what, err, tol);
    check_at(0, file, line, msg);
}

void run_test(const char *name, void (*fn)(void)) {
    g_test_name = name;
    g_test_failures = 0;
    g_context[0] = '\0';
    fn();
    if (g_test_failures == 0) {
        g_passed++;
        printf("ok   %s\n", name);
    } else {
        g_failed++;
        printf("FAIL %s (%d failed checks)\n", name, g_test_failures);
    }
    fflush(stdout);
}

int test_summary(void) {
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 && g_passed > 0 ? 0 : 1;
}

/* ---- helpers ---------------------------------------------------------------------------------------- */

void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        printf("out of memory allocating %lu bytes\n", (unsigned long)n);
        exit(2);
    }
    return p;
}

uint64_t rng_next(rng *r) {
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

float rng_uniform(rng *r, float scale) {
    double u = (double)(rng_next(r) >> 11) / 9007199254740992.0; /* [0, 1) with 53 bits */
    return (float)((2.0 * u - 1.0) * scale);
}

float *random_floats(rng *r, size_t n, float scale) {
    float *v = (float *)xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) v[i] = rng_uniform(r, scale);
    return v;
}

float *random_inputs(uint64_t seed, size_t n, size_t width, float scale) {
    rng r = {seed};
    return random_floats(&r, n * width, scale);
}

uint32_t get32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
uint64_t get64(const unsigned char *p) { return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32; }
void put32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
void put64(unsigned char *p, uint64_t v) {
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

uint32_t crc32_ieee(const unsigned char *p, size_t n, uint32_t crc) {
    static uint32_t table[256];
    static int ready;
    if (!ready) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320U & (0U - (c & 1U)));
            table[i] = c;
        }
        ready = 1;
    }
    crc = ~crc;
    for (size_t i = 0; i < n; i++) crc = (crc >> 8) ^ table[(crc ^ p[i]) & 0xffU];
    return ~crc;
}

/* The fingerprint lstm_embed/format.py writes: the first 8 bytes (little-endian) of the SHA-256 of every
 * tensor's role, index, dtype, rows, cols (u32 each) and data, in table order. */
uint64_t file_fingerprint(const unsigned char *file, size_t len) {
    lstm_sha256 s;
    lstm_sha256_init(&s);
    uint32_t count = get32(file + LSTM_HDR_TENSOR_COUNT);
    for (uint32_t i = 0; i < count && LSTM_HDR_SIZE + (size_t)(i + 1) * LSTM_TENSOR_ENTRY_SIZE <= len; i++) {
        const unsigned char *e = file + LSTM_HDR_SIZE + (size_t)i * LSTM_TENSOR_ENTRY_SIZE;
        uint64_t rows = get32(e + LSTM_TENSOR_ROWS), cols = get32(e + LSTM_TENSOR_COLS), off = get64(e + LSTM_TENSOR_OFFSET);
        uint32_t dtype = get32(e + LSTM_TENSOR_DTYPE);
        uint64_t nbytes = dtype == LSTM_DTYPE_I8_BLOCKED   ? (rows + 15) / 16 * 16 * cols
                        : dtype == LSTM_DTYPE_F32_PANELS ? (rows + 15) / 16 * 16 * cols * 4
                                                         : rows * cols * 4;
        lstm_sha256_update(&s, e, 20);
        if (off <= len && nbytes <= len - off) lstm_sha256_update(&s, file + off, (size_t)nbytes);
    }
    unsigned char d[32];
    lstm_sha256_final(&s, d);
    return get64(d);
}

void set_file_crc(unsigned char *file, size_t len) {
    uint64_t declared = get64(file + LSTM_HDR_FILE_SIZE);
    size_t n = declared < len ? (size_t)declared : len;
    put32(file + LSTM_HDR_CRC32, 0);
    put32(file + LSTM_HDR_CRC32, crc32_ieee(file, n, 0));
}

void fix_file_crc(unsigned char *file, size_t len) {
    if (len >= LSTM_HDR_SIZE) put64(file + LSTM_HDR_FINGERPRINT, file_fingerprint(file, len));
    set_file_crc(file, len);
}

double max_abs_diff_ff(const float *a, const float *b, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d != d) return INFINITY; /* a NaN is never hidden behind a smaller difference */
        if (d > m) m = d;
    }
    return m;
}

double max_abs_diff_fd(const float *a, const double *b, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d != d) return INFINITY;
        if (d > m) m = d;
    }
    return m;
}

/* ---- random networks -------------------------------------------------------------------------------- */

void net_make(net *n, const net_spec *spec) {
    rng r = {spec->seed};
    size_t H = spec->hidden_size;
    memset(n, 0, sizeof *n);
    n->spec = *spec;
    n->hr = spec->proj_size ? spec->proj_size : spec->hidden_size;
    n->layer_out = n->hr * spec->num_directions;
    n->output_size = spec->head_size ? spec->head_size : n->layer_out;
    for (uint32_t l = 0; l < spec->num_layers; l++)
        for (uint32_t d = 0; d < spec->num_directions; d++) {
            net_cell *c = &n->cells[l][d];
            c->in = l == 0 ? spec->input_size : n->layer_out;
            c->w = random_floats(&r, 4 * H * (c->in + n->hr), spec->scale);
            c->b = random_floats(&r, 4 * H, spec->scale);
            if (spec->proj_size) c->w_hr = random_floats(&r, (size_t)spec->proj_size * H, spec->scale);
        }
    if (spec->head_size) {
        n->head_w = random_floats(&r, (size_t)spec->head_size * n->layer_out, spec->scale);
        n->head_b = random_floats(&r, spec->head_size, spec->scale);
    }
}

void net_free(net *n) {
    for (uint32_t l = 0; l < LSTM_MAX_LAYERS; l++)
        for (uint32_t d = 0; d < 2; d++) {
            free(n->cells[l][d].w);
            free(n->cells[l][d].b);
            free(n->cells[l][d].w_hr);
        }
    free(n->head_w);
    free(n->head_b);
    memset(n, 0, sizeof *n);
}

/* ---- the writer ------------------------------------------------------------------------------------- */

typedef struct tensor_ref {
    uint32_t role, index, rows, cols;
    const float *data;
} tensor_ref;

/* Every tensor of the net in the natural order; returns how many. */
static size_t list_tensors(const net *n, tensor_ref *out) {
    size_t k = 0, H4 = 4 * (size_t)n->spec.hidden_size;
    for (uint32_t l = 0; l < n->spec.num_layers; l++)
        for (uint32_t d = 0; d < n->spec.num_directions; d++) {
            const net_cell *c = &n->cells[l][d];
            uint32_t index = l * 2 + d;
            out[k++] = (tensor_ref){LSTM_ROLE_WEIGHT, index, (uint32_t)H4, c->in + n->hr, c->w};
            out[k++] = (tensor_ref){LSTM_ROLE_BIAS, index, (uint32_t)H4, 1, c->b};
            if (n->spec.proj_size)
                out[k++] = (tensor_ref){LSTM_ROLE_PROJ, index, n->spec.proj_size, n->spec.hidden_size, c->w_hr};
        }
    if (n->spec.head_size) {
        out[k++] = (tensor_ref){LSTM_ROLE_HEAD_W, 0, n->spec.head_size, n->layer_out, n->head_w};
        out[k++] = (tensor_ref){LSTM_ROLE_HEAD_B, 0, n->spec.head_size, 1, n->head_b};
    }
    return k;
}

static size_t align_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

/* fp32 layer weights and projections are stored as packed panels (lstm_format.h), the rest row-major. */
static int is_packed(const tensor_ref *t) { return t->role == LSTM_ROLE_WEIGHT || t->role == LSTM_ROLE_PROJ; }
static size_t stored_rows(const tensor_ref *t) { return is_packed(t) ? align_up(t->rows, 16) : t->rows; }

/* The fixed header of a file whose tensor table and tensors are written: sizes, every layer's dtype, then
 * the fingerprint and the CRC. */
static void finish_file(unsigned char *f, const net *n, size_t header_size, size_t pos, size_t count,
                        lstm_layer_dtype dtype) {
    memcpy(f + LSTM_HDR_MAGIC, LSTM_FILE_MAGIC, LSTM_FILE_MAGIC_LEN);
    put32(f + LSTM_HDR_VERSION, LSTM_FORMAT_VERSION);
    put32(f + LSTM_HDR_HEADER_SIZE, (uint32_t)header_size);
    put64(f + LSTM_HDR_FILE_SIZE, pos);
    put32(f + LSTM_HDR_INPUT_SIZE, n->spec.input_size);
    put32(f + LSTM_HDR_HIDDEN_SIZE, n->spec.hidden_size);
    put32(f + LSTM_HDR_PROJ_SIZE, n->spec.proj_size);
    put32(f + LSTM_HDR_NUM_LAYERS, n->spec.num_layers);
    put32(f + LSTM_HDR_NUM_DIRECTIONS, n->spec.num_directions);
    put32(f + LSTM_HDR_HEAD_SIZE, n->spec.head_size);
    put32(f + LSTM_HDR_HEAD_ACTIVATION, n->spec.head_activation);
    put32(f + LSTM_HDR_TENSOR_COUNT, (uint32_t)count);
    for (uint32_t l = 0; l < n->spec.num_layers; l++) f[LSTM_HDR_LAYER_DTYPES + l] = (unsigned char)dtype;
    fix_file_crc(f, pos);
}

unsigned char *net_write(const net *n, int reversed, size_t *len) {
    tensor_ref list[LSTM_MAX_TENSORS], t[LSTM_MAX_TENSORS];
    size_t count = list_tensors(n, list), offsets[LSTM_MAX_TENSORS];
    for (size_t i = 0; i < count; i++) t[i] = list[reversed ? count - 1 - i : i];
    size_t header_size = LSTM_HDR_SIZE + count * LSTM_TENSOR_ENTRY_SIZE;
    size_t pos = align_up(header_size, LSTM_TENSOR_ALIGN);
    for (size_t i = 0; i < count; i++) {
        offsets[i] = pos;
        pos += align_up(stored_rows(&t[i]) * t[i].cols * sizeof(float), LSTM_TENSOR_ALIGN);
    }
    unsigned char *f = (unsigned char *)xmalloc(pos);
    memset(f, 0, pos);
    for (size_t i = 0; i < count; i++) {
        unsigned char *e = f + LSTM_HDR_SIZE + i * LSTM_TENSOR_ENTRY_SIZE;
        size_t rows = t[i].rows, cols = t[i].cols;
        int packed = is_packed(&t[i]);
        put32(e + LSTM_TENSOR_ROLE, t[i].role);
        put32(e + LSTM_TENSOR_INDEX, t[i].index);
        put32(e + LSTM_TENSOR_DTYPE, packed ? LSTM_DTYPE_F32_PANELS : LSTM_DTYPE_F32);
        put32(e + LSTM_TENSOR_ROWS, t[i].rows);
        put32(e + LSTM_TENSOR_COLS, t[i].cols);
        put64(e + LSTM_TENSOR_OFFSET, offsets[i]);
        for (size_t r = 0; r < rows; r++) /* little-endian float32, whatever the host's byte order */
            for (size_t k = 0; k < cols; k++) {
                uint32_t u;
                memcpy(&u, &t[i].data[r * cols + k], 4);
                put32(f + offsets[i] + 4 * (packed ? panel_index(r, k, cols) : r * cols + k), u);
            }
    }
    finish_file(f, n, header_size, pos, count, LSTM_LAYER_FP32);
    *len = pos;
    return f;
}

/* ---- the int8 writer -------------------------------------------------------------------------------- */

typedef struct raw_tensor {
    uint32_t role, index, dtype, rows, cols;
    unsigned char *data; /* malloc'd, in file byte order */
    size_t bytes;
} raw_tensor;

static unsigned char *le_floats(const float *v, size_t n) {
    unsigned char *b = (unsigned char *)xmalloc(4 * n);
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        put32(b + 4 * i, u);
    }
    return b;
}

/* Row r of the [rows][ld] matrix m, columns [c0, c0 + n): per-row scale max |w| / 127 and int8 values in
 * [-127, 127] into q (row-major, width n). */
static void quantize_rows_ref(const float *m, size_t ld, size_t c0, size_t rows, size_t n, int8_t *q, float *scale) {
    for (size_t r = 0; r < rows; r++) {
        const float *row = m + r * ld + c0;
        float amax = 0.0f;
        for (size_t k = 0; k < n; k++) amax = fabsf(row[k]) > amax ? fabsf(row[k]) : amax;
        scale[r] = amax > 0.0f ? amax / 127.0f : 0.0f;
        for (size_t k = 0; k < n; k++) {
            float v = amax > 0.0f ? nearbyintf(row[k] / scale[r]) : 0.0f;
            q[r * n + k] = (int8_t)(v > 127.0f ? 127 : v < -127.0f ? -127 : (int)v);
        }
    }
}

/* Blocked layout of lstm_format.h: element (r, k) of a [rows][cols] int8 matrix (cols % 4 == 0). */
static size_t blocked_at(size_t r, size_t k, size_t cols) { return (r / 16 * (cols / 4) + k / 4) * 64 + (r % 16) * 4 + k % 4; }

static unsigned char *write_raw_tensors(raw_tensor *t, size_t count, const net *n, lstm_layer_dtype dtype,
                                        size_t *len);

unsigned char *net_write_q8(const net *n, lstm_layer_dtype dtype, size_t *len) {
    raw_tensor t[LSTM_MAX_TENSORS];
    size_t count = 0, H = n->spec.hidden_size, H4 = 4 * H, P = n->spec.proj_size, hr = n->hr;
    for (uint32_t l = 0; l < n->spec.num_layers; l++)
        for (uint32_t d = 0; d < n->spec.num_directions; d++) {
            const net_cell *c = &n->cells[l][d];
            uint32_t index = l * 2 + d;
            size_t in = c->in, ld = in + hr, cx = lstm_r4(in), cols = cx + lstm_r4(hr);
            int8_t *qx = (int8_t *)xmalloc(H4 * in + 1), *qh = (int8_t *)xmalloc(H4 * hr + 1);
            float *scales = (float *)xmalloc(2 * H4 * sizeof(float));
            quantize_rows_ref(c->w, ld, 0, H4, in, qx, scales);
            quantize_rows_ref(c->w, ld, in, H4, hr, qh, scales + H4);
            unsigned char *blk = (unsigned char *)xmalloc(lstm_r16(H4) * cols);
            memset(blk, 0, lstm_r16(H4) * cols);
            unsigned char *sums = (unsigned char *)xmalloc(2 * H4 * 4);
            for (size_t r = 0; r < H4; r++) {
                int32_t sx = 0, sh = 0;
                for (size_t k = 0; k < in; k++) {
                    blk[blocked_at(r, k, cols)] = (unsigned char)qx[r * in + k];
                    sx += qx[r * in + k];
                }
                for (size_t k = 0; k < hr; k++) {
                    blk[blocked_at(r, cx + k, cols)] = (unsigned char)qh[r * hr + k];
                    sh += qh[r * hr + k];
                }
                put32(sums + 4 * r, (uint32_t)sx);
                put32(sums + 4 * (H4 + r), (uint32_t)sh);
            }
            t[count++] = (raw_tensor){LSTM_ROLE_BIAS, index, LSTM_DTYPE_F32, (uint32_t)H4, 1, le_floats(c->b, H4), H4 * 4};
            t[count++] = (raw_tensor){LSTM_ROLE_WEIGHT, index, LSTM_DTYPE_I8_BLOCKED, (uint32_t)H4, (uint32_t)cols, blk,
                                      lstm_r16(H4) * cols};
            t[count++] = (raw_tensor){LSTM_ROLE_W_SCALE, index, LSTM_DTYPE_F32, 2, (uint32_t)H4, le_floats(scales, 2 * H4),
                                      2 * H4 * 4};
            t[count++] = (raw_tensor){LSTM_ROLE_W_ROWSUM, index, LSTM_DTYPE_I32, 2, (uint32_t)H4, sums, 2 * H4 * 4};
            free(qx);
            free(qh);
            free(scales);
            if (P) {
                size_t pc = lstm_r4(H);
                int8_t *qp = (int8_t *)xmalloc(P * H);
                float *ps = (float *)xmalloc(P * sizeof(float));
                quantize_rows_ref(c->w_hr, H, 0, P, H, qp, ps);
                unsigned char *pb = (unsigned char *)xmalloc(lstm_r16(P) * pc);
                memset(pb, 0, lstm_r16(P) * pc);
                for (size_t r = 0; r < P; r++)
                    for (size_t k = 0; k < H; k++) pb[blocked_at(r, k, pc)] = (unsigned char)qp[r * H + k];
                t[count++] = (raw_tensor){LSTM_ROLE_PROJ, index, LSTM_DTYPE_I8_BLOCKED, (uint32_t)P, (uint32_t)pc, pb,
                                          lstm_r16(P) * pc};
                t[count++] = (raw_tensor){LSTM_ROLE_PROJ_SCALE, index, LSTM_DTYPE_F32, (uint32_t)P, 1, le_floats(ps, P), P * 4};
                free(qp);
                free(ps);
            }
        }
    if (n->spec.head_size) {
        size_t hs = n->spec.head_size;
        t[count++] = (raw_tensor){LSTM_ROLE_HEAD_W, 0, LSTM_DTYPE_F32, (uint32_t)hs, n->layer_out,
                                  le_floats(n->head_w, hs * n->layer_out), hs * n->layer_out * 4};
        t[count++] = (raw_tensor){LSTM_ROLE_HEAD_B, 0, LSTM_DTYPE_F32, (uint32_t)hs, 1, le_floats(n->head_b, hs), hs * 4};
    }
    return write_raw_tensors(t, count, n, dtype, len);
}

/* A whole file from its tensors (each freed here), the header fields from n->spec, every layer `dtype`. */
static unsigned char *write_raw_tensors(raw_tensor *t, size_t count, const net *n, lstm_layer_dtype dtype,
                                        size_t *len) {
    size_t header_size = LSTM_HDR_SIZE + count * LSTM_TENSOR_ENTRY_SIZE, offsets[LSTM_MAX_TENSORS];
    size_t pos = align_up(header_size, LSTM_TENSOR_ALIGN);
    for (size_t i = 0; i < count; i++) {
        offsets[i] = pos;
        pos += align_up(t[i].bytes, LSTM_TENSOR_ALIGN);
    }
    unsigned char *f = (unsigned char *)xmalloc(pos);
    memset(f, 0, pos);
    for (size_t i = 0; i < count; i++) {
        unsigned char *e = f + LSTM_HDR_SIZE + i * LSTM_TENSOR_ENTRY_SIZE;
        put32(e + LSTM_TENSOR_ROLE, t[i].role);
        put32(e + LSTM_TENSOR_INDEX, t[i].index);
        put32(e + LSTM_TENSOR_DTYPE, t[i].dtype);
        put32(e + LSTM_TENSOR_ROWS, t[i].rows);
        put32(e + LSTM_TENSOR_COLS, t[i].cols);
        put64(e + LSTM_TENSOR_OFFSET, offsets[i]);
        memcpy(f + offsets[i], t[i].data, t[i].bytes);
        free(t[i].data);
    }
    finish_file(f, n, header_size, pos, count, dtype);
    *len = pos;
    return f;
}

/* ---- the int16x8 writer ----------------------------------------------------------------------------- */

static unsigned char *le_int32s(const int32_t *v, size_t n) {
    unsigned char *b = (unsigned char *)xmalloc(4 * n + 1);
    for (size_t i = 0; i < n; i++) put32(b + 4 * i, (uint32_t)v[i]);
    return b;
}

/* rows x cols int8 (row-major, width `width` per part, `parts` parts of widths part_w) into the blocked
 * layout, each part zero-padded to a multiple of 4 columns; row sums per part into sums (may be NULL). */
static unsigned char *blocked_parts(const int8_t *m, size_t rows, const size_t *part_w, int parts, int32_t *sums) {
    size_t cols = 0, ld = 0;
    for (int p = 0; p < parts; p++) {
        cols += lstm_r4(part_w[p]);
        ld += part_w[p];
    }
    unsigned char *blk = (unsigned char *)xmalloc(lstm_r16(rows) * cols + 1);
    memset(blk, 0, lstm_r16(rows) * cols);
    for (size_t r = 0; r < rows; r++) {
        size_t c0 = 0, k0 = 0;
        for (int p = 0; p < parts; p++) {
            int32_t sum = 0;
            for (size_t k = 0; k < part_w[p]; k++) {
                int8_t v = m[r * ld + k0 + k];
                blk[blocked_at(r, c0 + k, cols)] = (unsigned char)v;
                sum += v;
            }
            if (sums) sums[(size_t)p * rows + r] = sum;
            c0 += lstm_r4(part_w[p]);
            k0 += part_w[p];
        }
    }
    return blk;
}

static int32_t rand_range(rng *r, int32_t lo, int32_t hi) { return lo + (int32_t)(rng_next(r) % (uint64_t)(hi - lo + 1)); }

/* One requantisation (M, S) per row: M in [2^30, 2^31), S around `s_mid`; now and then an extreme. */
static void random_mult(rng *r, int32_t *mult, int32_t *shift, size_t n, int32_t s_mid) {
    for (size_t i = 0; i < n; i++) {
        mult[i] = rand_range(r, 1 << 30, 2147483647);
        shift[i] = rand_range(r, s_mid - 3, s_mid + 3);
        uint64_t pick = rng_next(r) % 64;
        if (pick == 0) mult[i] = 0;
        if (pick == 1) shift[i] = 1;
        if (pick == 2) shift[i] = LSTM_INT_MAX_SHIFT;
        if (pick == 3) mult[i] = 2147483647;
    }
}
static void random_bias(rng *r, int32_t *b, size_t n) {
    for (size_t i = 0; i < n; i++) {
        b[i] = rand_range(r, -(1 << 21), 1 << 21);
        uint64_t pick = rng_next(r) % 64;
        if (pick == 0) b[i] = LSTM_INT_MAX_ABS_BIAS;
        if (pick == 1) b[i] = -LSTM_INT_MAX_ABS_BIAS;
    }
}

/* Shift that brings sum_k w x (|w| ~ 64, |x| ~ xmax / 2 over `width` columns) near 2^20 with M ~ 1.5 * 2^30. */
static int32_t shift_for(size_t width, double xmax) {
    double a = 64.0 * (xmax / 2) * sqrt((double)width) + 1.0; /* typical |A| */
    int32_t s = (int32_t)floor(log2(a * 1.5 * 1073741824.0 / 1048576.0) + 0.5);
    return s < 4 ? 4 : s > 58 ? 58 : s;
}

void int_net_make(int_net *n, uint32_t input_size, uint32_t hidden_size, uint32_t num_layers, uint32_t head_size,
                  uint32_t head_activation, uint64_t seed) {
    rng r = {seed};
    memset(n, 0, sizeof *n);
    n->input_size = input_size;
    n->hidden_size = hidden_size;
    n->num_layers = num_layers;
    n->head_size = head_size;
    n->head_activation = head_activation;
    size_t H = hidden_size, H4 = 4 * H;
    for (uint32_t l = 0; l < num_layers; l++) {
        size_t in = l == 0 ? input_size : H;
        n->w[l] = (int8_t *)xmalloc(H4 * (in + H));
        for (size_t i = 0; i < H4 * (in + H); i++) n->w[l][i] = (int8_t)rand_range(&r, -127, 127);
        n->bias[l] = random_floats(&r, H4, 1.0f);
        n->wscale[l] = (float *)xmalloc(2 * H4 * sizeof(float));
        for (size_t i = 0; i < 2 * H4; i++) n->wscale[l][i] = 0.001f + (rng_uniform(&r, 0.0005f) + 0.0005f);
        n->qp[l] = (int32_t *)xmalloc(5 * H4 * sizeof(int32_t));
        random_mult(&r, n->qp[l], n->qp[l] + H4, H4, shift_for(in, l == 0 ? 32767.0 : 16384.0));
        random_mult(&r, n->qp[l] + 2 * H4, n->qp[l] + 3 * H4, H4, shift_for(H, 16384.0));
        random_bias(&r, n->qp[l] + 4 * H4, H4);
    }
    n->io[0] = 1.0f / 4096.0f;
    n->io[1] = 4096.0f;
    n->io[2] = 1.0f / 32768.0f;
    n->io[3] = 0.0f;
    if (head_size) {
        n->head_w = (int8_t *)xmalloc((size_t)head_size * H);
        for (size_t i = 0; i < (size_t)head_size * H; i++) n->head_w[i] = (int8_t)rand_range(&r, -127, 127);
        n->head_b = random_floats(&r, head_size, 1.0f);
        n->head_qp = (int32_t *)xmalloc(3 * (size_t)head_size * sizeof(int32_t));
        random_mult(&r, n->head_qp, n->head_qp + head_size, head_size, shift_for(H, 16384.0));
        random_bias(&r, n->head_qp + 2 * (size_t)head_size, head_size);
        if (head_activation == LSTM_ACT_NONE || head_activation == LSTM_ACT_RELU) n->io[2] = 1.0f / 1000.0f;
    }
}

void int_net_free(int_net *n) {
    for (uint32_t l = 0; l < LSTM_MAX_LAYERS; l++) {
        free(n->w[l]);
        free(n->bias[l]);
        free(n->wscale[l]);
        free(n->qp[l]);
    }
    free(n->head_w);
    free(n->head_b);
    free(n->head_qp);
    memset(n, 0, sizeof *n);
}

unsigned char *int_net_write(const int_net *n, int dtype_override, size_t *len) {
    raw_tensor t[LSTM_MAX_TENSORS];
    size_t count = 0, H = n->hidden_size, H4 = 4 * H;
    for (uint32_t l = 0; l < n->num_layers; l++) {
        uint32_t index = l * 2;
        size_t widths[2] = {l == 0 ? n->input_size : H, H};
        size_t cols = lstm_r4(widths[0]) + lstm_r4(H);
        int32_t *sums = (int32_t *)xmalloc(2 * H4 * sizeof(int32_t));
        unsigned char *blk = blocked_parts(n->w[l], H4, widths, 2, sums);
        t[count++] = (raw_tensor){LSTM_ROLE_WEIGHT, index, LSTM_DTYPE_I8_BLOCKED, (uint32_t)H4, (uint32_t)cols, blk,
                                  lstm_r16(H4) * cols};
        t[count++] = (raw_tensor){LSTM_ROLE_BIAS, index, LSTM_DTYPE_F32, (uint32_t)H4, 1, le_floats(n->bias[l], H4), H4 * 4};
        t[count++] = (raw_tensor){LSTM_ROLE_W_SCALE, index, LSTM_DTYPE_F32, 2, (uint32_t)H4,
                                  le_floats(n->wscale[l], 2 * H4), 2 * H4 * 4};
        t[count++] = (raw_tensor){LSTM_ROLE_W_ROWSUM, index, LSTM_DTYPE_I32, 2, (uint32_t)H4, le_int32s(sums, 2 * H4),
                                  2 * H4 * 4};
        t[count++] = (raw_tensor){LSTM_ROLE_QPARAMS, index, LSTM_DTYPE_I32, LSTM_QP_ROWS, (uint32_t)H4,
                                  le_int32s(n->qp[l], LSTM_QP_ROWS * H4), LSTM_QP_ROWS * H4 * 4};
        free(sums);
    }
    if (n->head_size) {
        size_t hs = n->head_size, widths[1] = {H};
        t[count++] = (raw_tensor){LSTM_ROLE_HEAD_W, 0, LSTM_DTYPE_I8_BLOCKED, (uint32_t)hs, (uint32_t)lstm_r4(H),
                                  blocked_parts(n->head_w, hs, widths, 1, NULL), lstm_r16(hs) * lstm_r4(H)};
        t[count++] = (raw_tensor){LSTM_ROLE_HEAD_B, 0, LSTM_DTYPE_F32, (uint32_t)hs, 1, le_floats(n->head_b, hs), hs * 4};
        t[count++] = (raw_tensor){LSTM_ROLE_HEAD_QPARAMS, 0, LSTM_DTYPE_I32, LSTM_HQP_ROWS, (uint32_t)hs,
                                  le_int32s(n->head_qp, LSTM_HQP_ROWS * hs), LSTM_HQP_ROWS * hs * 4};
    }
    t[count++] = (raw_tensor){LSTM_ROLE_IO_SCALES, 0, LSTM_DTYPE_F32, 1, LSTM_IO_COLS, le_floats(n->io, 4), 16};
    net hdr;
    memset(&hdr, 0, sizeof hdr);
    hdr.spec.input_size = n->input_size;
    hdr.spec.hidden_size = n->hidden_size;
    hdr.spec.num_layers = n->num_layers;
    hdr.spec.num_directions = 1;
    hdr.spec.head_size = n->head_size;
    hdr.spec.head_activation = n->head_activation;
    unsigned char *f = write_raw_tensors(t, count, &hdr, LSTM_LAYER_INT16X8, len);
    if (dtype_override >= 0) {
        f[LSTM_HDR_LAYER_DTYPES] = (unsigned char)dtype_override;
        fix_file_crc(f, *len);
    }
    return f;
}

/* ---- opened models and states ----------------------------------------------------------------------- */

int tmodel_open(tmodel *t, const net_spec *spec) {
    net_make(&t->n, spec);
    t->bytes = net_write(&t->n, 0, &t->len);
    t->m = NULL;
    lstm_status st = lstm_model_open(t->bytes, t->len, &t->m);
    CHECK_STATUS(st, LSTM_OK);
    return st == LSTM_OK;
}

void tmodel_close(tmodel *t) {
    lstm_model_close(t->m);
    free(t->bytes);
    net_free(&t->n);
    t->m = NULL;
    t->bytes = NULL;
}

lstm_state *new_state(const lstm_model *m, void **buf, size_t *len) {
    size_t size = lstm_state_size(m);
    lstm_state *s = NULL;
    *buf = xmalloc(size);
    CHECK_OK(lstm_state_init(m, *buf, size, &s));
    if (len) *len = size;
    return s;
}
