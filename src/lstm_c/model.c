/* model.c - reading and validating a model file (layout in lstm_format.h), and the model descriptor. */
#include <stdlib.h>
#include <string.h>

#include "elementwise.h"
#include "int_math.h"
#include "lstm_format.h"
#include "lstm_internal.h"
#include "sha256.h"


/* CRC-32 (IEEE 802.3, as zlib.crc32), four bits at a time from a 16-entry table: small in flash and on
 * the stack. */
uint32_t lstm_crc32(const unsigned char *p, size_t n, uint32_t crc) {
    static const uint32_t table[16] = {0x00000000U, 0x1DB71064U, 0x3B6E20C8U, 0x26D930ACU, 0x76DC4190U,
                                       0x6B6B51F4U, 0x4DB26158U, 0x5005713CU, 0xEDB88320U, 0xF00F9344U,
                                       0xD6D6A3E8U, 0xCB61B38CU, 0x9B64C2B0U, 0x86D3D2D4U, 0xA00AE278U,
                                       0xBDBDF21CU};
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        crc = table[crc & 15] ^ (crc >> 4);
        crc = table[crc & 15] ^ (crc >> 4);
    }
    return ~crc;
}

uint32_t lstm_max_abs_bits(const float *v, size_t n) { return lstm_max_abs_bits_inline(v, n); }

static uint32_t float_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

lstm_status lstm_check_input(const float *v, size_t n) {
    uint32_t max_bits = lstm_max_abs_bits(v, n);
    if (max_bits >= LSTM_FLOAT_INF_BITS) return LSTM_E_NONFINITE_INPUT;
    if (max_bits > float_bits(LSTM_MAX_ABS_INPUT)) return LSTM_E_INPUT_RANGE;
    return LSTM_OK;
}

/* CRC over the file with the CRC field read as zero. */
static uint32_t file_crc(const unsigned char *p, uint64_t size) {
    static const unsigned char zero[4] = {0, 0, 0, 0};
    uint32_t crc = lstm_crc32(p, LSTM_HDR_CRC32, 0);
    crc = lstm_crc32(zero, 4, crc);
    return lstm_crc32(p + LSTM_HDR_CRC32 + 4, (size_t)(size - LSTM_HDR_CRC32 - 4), crc);
}

static int in_range(uint32_t v, uint32_t lo, uint32_t hi) { return v >= lo && v <= hi; }

/* Header fields: dimensions and codes. */
static lstm_status read_header(const unsigned char *p, lstm_model *m) {
    lstm_model_info *in = &m->info;
    in->input_size = rd32(p + LSTM_HDR_INPUT_SIZE);
    in->hidden_size = rd32(p + LSTM_HDR_HIDDEN_SIZE);
    in->proj_size = rd32(p + LSTM_HDR_PROJ_SIZE);
    in->num_layers = rd32(p + LSTM_HDR_NUM_LAYERS);
    in->num_directions = rd32(p + LSTM_HDR_NUM_DIRECTIONS);
    in->head_size = rd32(p + LSTM_HDR_HEAD_SIZE);
    in->head_activation = rd32(p + LSTM_HDR_HEAD_ACTIVATION);
    in->fingerprint = rd64(p + LSTM_HDR_FINGERPRINT);
    if (rd32(p + LSTM_HDR_FLAGS) != 0) return LSTM_E_BAD_HEADER;
    if (!in_range(in->input_size, 1, LSTM_MAX_DIM) || !in_range(in->hidden_size, 1, LSTM_MAX_DIM))
        return LSTM_E_BAD_HEADER;
    if (in->proj_size >= in->hidden_size) return LSTM_E_BAD_HEADER; /* as torch: proj < hidden */
    if (!in_range(in->num_layers, 1, LSTM_MAX_LAYERS) || !in_range(in->num_directions, 1, 2))
        return LSTM_E_BAD_HEADER;
    if (in->head_size > LSTM_MAX_DIM || in->head_activation > LSTM_ACT_SOFTMAX) return LSTM_E_BAD_HEADER;
    if (in->head_size == 0 && in->head_activation != LSTM_ACT_NONE) return LSTM_E_BAD_HEADER;
    uint32_t n_int = 0;
    for (uint32_t l = 0; l < LSTM_MAX_LAYERS; l++) {
        uint32_t dt = p[LSTM_HDR_LAYER_DTYPES + l];
        in->layer_dtype[l] = dt;
        if (dt > LSTM_LAYER_INT16X8 || (l >= in->num_layers && dt != 0)) return LSTM_E_BAD_HEADER;
        n_int += dt == LSTM_LAYER_INT16X8;
    }
    /* int16x8: every layer or none; unidirectional, no projection, every width within LSTM_INT_MAX_WIDTH
     * (docs/int16x8.md: the bound that keeps every sum in int32) */
    if (n_int != 0 && (n_int != in->num_layers || in->num_directions != 1 || in->proj_size != 0 ||
                       lstm_r4(in->input_size) > LSTM_INT_MAX_WIDTH || in->hidden_size > LSTM_INT_MAX_WIDTH ||
                       in->head_size > LSTM_INT_MAX_WIDTH))
        return LSTM_E_BAD_HEADER;
    m->is_int = n_int != 0;
    for (uint32_t i = LSTM_HDR_RESERVED; i < LSTM_HDR_SIZE; i++)
        if (p[i] != 0) return LSTM_E_BAD_HEADER;
    m->hr = in->proj_size ? in->proj_size : in->hidden_size;
    m->layer_out = m->hr * in->num_directions;
    in->output_size = in->head_size ? in->head_size : m->layer_out;
    return LSTM_OK;
}

/* What a tensor of this role and index must be: 0 if the pair is not expected in this model. */
typedef struct tensor_want {
    uint32_t rows, cols, dtype;
} tensor_want;

static int expected(const lstm_model *m, uint32_t role, uint32_t index, tensor_want *t) {
    const lstm_model_info *in = &m->info;
    uint32_t H = in->hidden_size, P = in->proj_size, layer = index / 2, dir = index % 2;
    int layer_role = role != LSTM_ROLE_HEAD_W && role != LSTM_ROLE_HEAD_B && role != LSTM_ROLE_HEAD_QPARAMS &&
                     role != LSTM_ROLE_IO_SCALES;
    if (layer_role ? (layer >= in->num_layers || dir >= in->num_directions) : index != 0) return 0;
    int q8 = layer_role && in->layer_dtype[layer] != LSTM_LAYER_FP32;
    uint32_t width = layer == 0 ? in->input_size : m->layer_out;
    t->dtype = LSTM_DTYPE_F32;
    t->cols = 1;
    switch (role) {
    case LSTM_ROLE_WEIGHT:
        t->rows = 4 * H;
        t->cols = q8 ? (uint32_t)(lstm_r4(width) + lstm_r4(m->hr)) : width + m->hr;
        t->dtype = q8 ? LSTM_DTYPE_I8_BLOCKED : LSTM_DTYPE_F32_PANELS;
        return 1;
    case LSTM_ROLE_BIAS: t->rows = 4 * H; return 1;
    case LSTM_ROLE_PROJ:
        t->rows = P;
        t->cols = q8 ? (uint32_t)lstm_r4(H) : H;
        t->dtype = q8 ? LSTM_DTYPE_I8_BLOCKED : LSTM_DTYPE_F32_PANELS;
        return P > 0;
    case LSTM_ROLE_HEAD_W: /* integer-only models: per-row int8, the scales folded into HEAD_QPARAMS */
        t->rows = in->head_size;
        t->cols = m->is_int ? (uint32_t)lstm_r4(m->layer_out) : m->layer_out;
        t->dtype = m->is_int ? LSTM_DTYPE_I8_BLOCKED : LSTM_DTYPE_F32;
        return in->head_size > 0;
    case LSTM_ROLE_HEAD_B: t->rows = in->head_size; return in->head_size > 0;
    case LSTM_ROLE_W_SCALE: t->rows = 2; t->cols = 4 * H; return q8;
    case LSTM_ROLE_W_ROWSUM: t->rows = 2; t->cols = 4 * H; t->dtype = LSTM_DTYPE_I32; return q8;
    case LSTM_ROLE_PROJ_SCALE: t->rows = P; return q8 && P > 0;
    case LSTM_ROLE_QPARAMS: t->rows = LSTM_QP_ROWS; t->cols = 4 * H; t->dtype = LSTM_DTYPE_I32; return m->is_int;
    case LSTM_ROLE_HEAD_QPARAMS:
        t->rows = LSTM_HQP_ROWS;
        t->cols = in->head_size;
        t->dtype = LSTM_DTYPE_I32;
        return m->is_int && in->head_size > 0;
    case LSTM_ROLE_IO_SCALES: t->rows = 1; t->cols = LSTM_IO_COLS; return m->is_int;
    default: return 0;
    }
}

static uint64_t tensor_bytes(const tensor_want *t) {
    if (t->dtype == LSTM_DTYPE_I8_BLOCKED) return lstm_r16(t->rows) * (uint64_t)t->cols;
    if (t->dtype == LSTM_DTYPE_F32_PANELS) return lstm_r16(t->rows) * (uint64_t)t->cols * 4;
    return (uint64_t)t->rows * t->cols * 4;
}

/* A blocked int8 matrix: values in [-127, 127], zero in the padding rows and in the padding columns
 * [c_end, next group) of each part that ends at c_end. */
static int blocked_ok(const int8_t *w, uint32_t rows, uint32_t cols, uint32_t part_end[2], int parts) {
    size_t groups = cols / 4;
    for (size_t r = 0; r < lstm_r16(rows); r++)
        for (size_t k = 0; k < cols; k++) {
            int8_t v = w[(r / 16 * groups + k / 4) * 64 + (r % 16) * 4 + k % 4];
            int pad = r >= rows;
            for (int p = 0; p < parts; p++)
                pad |= k >= part_end[p] && k < lstm_r4(part_end[p]);
            if (v == -128 || (pad && v != 0)) return 0;
        }
    return 1;
}

/* The rows of a packed fp32 matrix past `rows` (up to a multiple of 16) hold +0.0 bits only. */
static int panel_padding_zero(const float *w, const tensor_want *t) {
    size_t last = t->rows / 16 * 16;
    if (last == t->rows) return 1;
    const uint32_t *bits = (const uint32_t *)(const void *)(w + last * t->cols); /* the last panel */
    for (size_t k = 0; k < t->cols; k++)
        for (size_t j = t->rows - last; j < 16; j++)
            if (bits[k * 16 + j] != 0) return 0;
    return 1;
}

/* Stored row sums must equal the int8 weights' (the VNNI kernel relies on them). */
static int rowsums_ok(const lstm_cell *c, uint32_t rows) {
    size_t groups = c->gx + c->gh;
    for (size_t r = 0; r < rows; r++) {
        int64_t sum[2] = {0, 0};
        for (size_t k = 0; k < groups * 4; k++)
            sum[k >= c->gx * 4] += c->wq[(r / 16 * groups + k / 4) * 64 + (r % 16) * 4 + k % 4];
        if (sum[0] != c->rowsum[r] || sum[1] != c->rowsum[rows + r]) return 0;
    }
    return 1;
}

/* int8 scales: >= 0 (else a malformed tensor), and at most LSTM_MAX_ABS_WEIGHT / 127 so that no
 * dequantised weight exceeds the limit (beyond: LSTM_E_NONFINITE_WEIGHT, as for a float weight). */
static lstm_status check_scales(const float *v, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (!(v[i] >= 0.0f)) return LSTM_E_BAD_TENSOR;
        if (!(v[i] <= LSTM_MAX_ABS_WEIGHT / 127.0f)) return LSTM_E_NONFINITE_WEIGHT;
    }
    return LSTM_OK;
}

static size_t slot_of(uint32_t role, uint32_t index) { return (size_t)(role - 1) * LSTM_MAX_LAYERS * 2 + index; }
#define LSTM_SLOTS (LSTM_ROLE_COUNT * LSTM_MAX_LAYERS * 2)

static void attach(lstm_model *m, uint32_t role, uint32_t index, const void *data, const tensor_want *t) {
    lstm_cell *c = &m->cells[index / 2][index % 2];
    switch (role) {
    case LSTM_ROLE_WEIGHT:
        if (t->dtype == LSTM_DTYPE_F32_PANELS) {
            c->w = (const float *)data;
            c->ld = t->cols;
        } else {
            c->wq = (const int8_t *)data;
        }
        break;
    case LSTM_ROLE_BIAS: c->b = (const float *)data; break;
    case LSTM_ROLE_PROJ:
        if (t->dtype == LSTM_DTYPE_F32_PANELS) c->w_hr = (const float *)data;
        else c->hrq = (const int8_t *)data;
        break;
    case LSTM_ROLE_HEAD_W:
        if (t->dtype == LSTM_DTYPE_F32) m->head_w = (const float *)data;
        else m->head_wq = (const int8_t *)data;
        break;
    case LSTM_ROLE_HEAD_B: m->head_b = (const float *)data; break;
    case LSTM_ROLE_W_SCALE: c->wscale = (const float *)data; break;
    case LSTM_ROLE_W_ROWSUM: c->rowsum = (const int32_t *)data; break;
    case LSTM_ROLE_QPARAMS: c->qp = (const int32_t *)data; break;
    case LSTM_ROLE_HEAD_QPARAMS: m->head_qp = (const int32_t *)data; break;
    case LSTM_ROLE_IO_SCALES: m->io_scales = (const float *)data; break;
    default: c->hr_scale = (const float *)data; break;
    }
}

/* Table entry t: its role, index, offset, and the shape it must have (0 if it has no place in this model). */
typedef struct entry {
    uint32_t role, index;
    uint64_t off, nbytes;
    tensor_want want;
} entry;

static int read_entry(const unsigned char *p, uint32_t t, const lstm_model *m, entry *e) {
    const unsigned char *q = p + LSTM_HDR_SIZE + (size_t)t * LSTM_TENSOR_ENTRY_SIZE;
    e->role = rd32(q + LSTM_TENSOR_ROLE);
    e->index = rd32(q + LSTM_TENSOR_INDEX);
    e->off = rd64(q + LSTM_TENSOR_OFFSET);
    if (e->role < 1 || e->role > LSTM_ROLE_COUNT || e->index >= 2 * LSTM_MAX_LAYERS ||
        !expected(m, e->role, e->index, &e->want))
        return 0;
    if (rd32(q + LSTM_TENSOR_DTYPE) != e->want.dtype || rd32(q + LSTM_TENSOR_ROWS) != e->want.rows ||
        rd32(q + LSTM_TENSOR_COLS) != e->want.cols || rd32(q + LSTM_TENSOR_RESERVED) != 0)
        return 0;
    e->nbytes = tensor_bytes(&e->want); /* every dimension <= 2^17: no overflow */
    return 1;
}

/* Every tensor where the header says, shaped as the model needs, once each, not overlapping; values in
 * range; the fingerprint recomputed from the table fields and data (as lstm_embed/format.py writes it).
 * Uses a few hundred bytes of stack: overlaps are found by re-reading earlier entries. */
static lstm_status read_tensors(const unsigned char *p, uint64_t file_size, uint32_t header_size,
                                uint32_t count, lstm_model *m) {
    unsigned char seen[(LSTM_SLOTS + 7) / 8];
    memset(seen, 0, sizeof seen);
    lstm_sha256 digest;
    lstm_sha256_init(&digest);
    for (uint32_t t = 0; t < count; t++) {
        entry e, u;
        if (!read_entry(p, t, m, &e)) return LSTM_E_BAD_TENSOR;
        size_t slot = slot_of(e.role, e.index);
        if (seen[slot / 8] & (1U << (slot % 8))) return LSTM_E_BAD_TENSOR;
        seen[slot / 8] |= (unsigned char)(1U << (slot % 8));
        if (e.off % LSTM_TENSOR_ALIGN != 0 || e.off < header_size || e.off > file_size || e.nbytes > file_size - e.off)
            return LSTM_E_BAD_TENSOR;
        for (uint32_t k = 0; k < t; k++) { /* earlier entries were valid when read */
            (void)read_entry(p, k, m, &u);
            if (e.off < u.off + u.nbytes && u.off < e.off + e.nbytes) return LSTM_E_BAD_TENSOR; /* overlap */
        }
        const unsigned char *data = p + e.off;
        if ((e.want.dtype == LSTM_DTYPE_F32 || e.want.dtype == LSTM_DTYPE_F32_PANELS) &&
            e.role != LSTM_ROLE_IO_SCALES && /* not weights: checked by int_params_ok */
            lstm_max_abs_bits((const float *)(const void *)data, (size_t)e.nbytes / 4) > float_bits(LSTM_MAX_ABS_WEIGHT))
            return LSTM_E_NONFINITE_WEIGHT; /* NaN, infinity, or beyond the weight limit */
        if (e.want.dtype == LSTM_DTYPE_F32_PANELS && !panel_padding_zero((const float *)(const void *)data, &e.want))
            return LSTM_E_BAD_TENSOR;
        unsigned char fields[20];
        wr32(fields, e.role);
        wr32(fields + 4, e.index);
        wr32(fields + 8, e.want.dtype);
        wr32(fields + 12, e.want.rows);
        wr32(fields + 16, e.want.cols);
        lstm_sha256_update(&digest, fields, sizeof fields);
        lstm_sha256_update(&digest, data, (size_t)e.nbytes);
        attach(m, e.role, e.index, data, &e.want);
    }
    for (uint32_t role = 1; role <= LSTM_ROLE_COUNT; role++) /* every expected tensor is there */
        for (uint32_t index = 0; index < 2 * LSTM_MAX_LAYERS; index++) {
            tensor_want want;
            size_t slot = slot_of(role, index);
            if (expected(m, role, index, &want) && !(seen[slot / 8] & (1U << (slot % 8)))) return LSTM_E_BAD_TENSOR;
        }
    unsigned char sum[32];
    lstm_sha256_final(&digest, sum);
    if (rd64(sum) != m->info.fingerprint) return LSTM_E_CHECKSUM; /* weights that are not the header's */
    return LSTM_OK;
}

/* Largest |h| the projection of cell c can produce from |o * tanh(c)| <= 1: the largest row sum of
 * |W_hr|, with room for float rounding. */
static float proj_bound(const lstm_model *m, const lstm_cell *c) {
    size_t H = m->info.hidden_size, P = m->info.proj_size, groups = lstm_r4(H) / 4;
    double bound = 0.0;
    for (size_t r = 0; r < P; r++) {
        double sum = 0.0;
        for (size_t k = 0; k < H; k++) {
            if (c->hrq) {
                int8_t v = c->hrq[(r / 16 * groups + k / 4) * 64 + (r % 16) * 4 + k % 4];
                sum += (double)c->hr_scale[r] * (v < 0 ? -v : v);
            } else {
                float v = c->w_hr[r / 16 * H * 16 + k * 16 + r % 16];
                sum += v < 0 ? -v : v;
            }
        }
        bound = sum > bound ? sum : bound;
    }
    return (float)(bound * (1.0 + 1.0 / 1024) + 1.0 / 1024);
}

/* A requantisation parameter row set of an int16x8 layer or head (docs/int16x8.md, "Parameters"):
 * multipliers M in [0, 2^31), shifts S in [1, 62], biases |B| <= 2^29, n of each. */
static int qparams_ok(const int32_t *mult, const int32_t *shift, const int32_t *bias, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (mult[i] < 0 || shift[i] < 1 || shift[i] > LSTM_INT_MAX_SHIFT) return 0;
        if (bias[i] < -LSTM_INT_MAX_ABS_BIAS || bias[i] > LSTM_INT_MAX_ABS_BIAS) return 0;
    }
    return 1;
}

/* An IO scale: finite, positive and at most 2^64 (so y = yq * output_scale is finite). */
static int io_scale_ok(float v) { return v > 0.0f && v <= LSTM_MAX_ABS_INPUT; }

/* The values only an integer-only model has: every layer's QPARAMS, the head's int8 weights and
 * HEAD_QPARAMS, IO_SCALES. LSTM_E_BAD_TENSOR for any value out of range. */
static lstm_status int_params_ok(const lstm_model *m) {
    const lstm_model_info *in = &m->info;
    size_t rows = 4 * (size_t)in->hidden_size;
    for (uint32_t l = 0; l < in->num_layers; l++) {
        const int32_t *qp = m->cells[l][0].qp;
        if (!qparams_ok(qp + LSTM_QP_MX * rows, qp + LSTM_QP_SX * rows, qp + LSTM_QP_B * rows, rows) ||
            !qparams_ok(qp + LSTM_QP_MH * rows, qp + LSTM_QP_SH * rows, qp + LSTM_QP_B * rows, rows))
            return LSTM_E_BAD_TENSOR;
    }
    if (in->head_size) {
        uint32_t parts[2] = {m->layer_out, 0};
        size_t n = in->head_size;
        const int32_t *q = m->head_qp;
        if (!blocked_ok(m->head_wq, in->head_size, (uint32_t)lstm_r4(m->layer_out), parts, 1) ||
            !qparams_ok(q + LSTM_HQP_M * n, q + LSTM_HQP_S * n, q + LSTM_HQP_B * n, n))
            return LSTM_E_BAD_TENSOR;
    }
    const float *io = m->io_scales;
    if (!io_scale_ok(io[LSTM_IO_INPUT_SCALE]) || !io_scale_ok(io[LSTM_IO_INV_INPUT_SCALE]) ||
        !io_scale_ok(io[LSTM_IO_OUTPUT_SCALE]) || float_bits(io[3]) != 0)
        return LSTM_E_BAD_TENSOR;
    return LSTM_OK;
}

/* Derived widths, and the checks of int8 layers that need several tensors at once. */
static lstm_status finish_cells(lstm_model *m) {
    lstm_model_info *in = &m->info;
    uint64_t H = in->hidden_size;
    in->param_count = (uint64_t)in->head_size * (m->layer_out + 1);
    for (uint32_t l = 0; l < in->num_layers; l++)
        for (uint32_t d = 0; d < in->num_directions; d++) {
            lstm_cell *c = &m->cells[l][d];
            c->dtype = in->layer_dtype[l];
            c->in = l == 0 ? in->input_size : m->layer_out;
            in->param_count += 4 * H * (c->in + m->hr + 1) + (uint64_t)in->proj_size * H;
            if (c->dtype == LSTM_LAYER_FP32) continue;
            uint32_t rows = 4 * in->hidden_size, parts[2];
            c->gx = (uint32_t)(lstm_r4(c->in) / 4);
            c->gh = (uint32_t)(lstm_r4(m->hr) / 4);
            parts[0] = c->in;
            parts[1] = 4 * c->gx + m->hr;
            if (!blocked_ok(c->wq, rows, 4 * (c->gx + c->gh), parts, 2) || !rowsums_ok(c, rows))
                return LSTM_E_BAD_TENSOR;
            lstm_status st = check_scales(c->wscale, 2 * (size_t)rows);
            if (st != LSTM_OK) return st;
            if (in->proj_size) {
                parts[0] = in->hidden_size;
                if (!blocked_ok(c->hrq, in->proj_size, (uint32_t)lstm_r4(in->hidden_size), parts, 1))
                    return LSTM_E_BAD_TENSOR;
                st = check_scales(c->hr_scale, in->proj_size);
                if (st != LSTM_OK) return st;
            }
        }
    if (m->is_int) {
        lstm_status st = int_params_ok(m);
        if (st != LSTM_OK) return st;
    }
    m->h_limit = 1.0f;
    if (in->proj_size)
        for (uint32_t l = 0; l < in->num_layers; l++)
            for (uint32_t d = 0; d < in->num_directions; d++) {
                float b = proj_bound(m, &m->cells[l][d]);
                m->h_limit = b > m->h_limit ? b : m->h_limit;
            }
    return LSTM_OK;
}

/* What a state holds (h and c: persist_floats from its data start) and where each part of the scratch a
 * step needs lives, in floats from the scratch's start (each part 16-float aligned). A full state carries
 * its scratch after h and c; a compact state has none (the caller passes a workspace). */
static void plan_state(lstm_model *m) {
    const lstm_model_info *in = &m->info;
    size_t H = in->hidden_size, cells = (size_t)in->num_layers * in->num_directions;
    size_t max_in = in->input_size > m->layer_out ? in->input_size : m->layer_out;
    size_t widest = max_in > m->hr ? max_in : m->hr;
    m->persist_floats = cells * (m->hr + H);
    m->off_xh = 0;
    m->off_gates = m->off_xh + lstm_r16(lstm_r4(max_in) + lstm_r4(m->hr));
    m->off_hfull = m->off_gates + lstm_r16(4 * H);
    /* only int8-dynamic and int8-a16 layers need the quantised vectors and exact sums: int8 and int32 for
     * int8-dynamic, int16 and int64 for int8-a16 (the wider when a model has both) */
    size_t q_bytes = 0, acc_words = 0;
    for (uint32_t l = 0; l < in->num_layers; l++) {
        uint32_t dt = in->layer_dtype[l];
        size_t qb = dt == LSTM_LAYER_INT8_A16 ? 2 : dt == LSTM_LAYER_INT8_DYNAMIC ? 1 : 0;
        q_bytes = qb > q_bytes ? qb : q_bytes;
        acc_words = qb > acc_words ? qb : acc_words;
    }
    m->q_bytes = q_bytes;
    m->acc_words = acc_words;
    m->q_width = widest;
    m->off_q = m->off_hfull + lstm_r16(H);
    m->off_acc = m->off_q + lstm_r16(2 * q_bytes * lstm_r4(widest) / 4); /* two quantised vectors, in floats */
    m->scratch_floats = m->off_acc + 2 * acc_words * lstm_r16(4 * H);
    m->off_int = m->scratch_floats;
    if (m->is_int) m->scratch_floats += lstm_int_scratch_floats(m);
    m->state_floats = lstm_r16(m->persist_floats) + m->scratch_floats;
}

/* The descriptor sits at the first 16-byte boundary of the caller's memory: any alignment will do. */
#define LSTM_MODEL_ALIGN 16
typedef char lstm_model_mem_size_is_enough[sizeof(lstm_model) + LSTM_MODEL_ALIGN - 1 <= LSTM_MODEL_MEM_SIZE ? 1 : -1];

size_t lstm_model_mem_size(void) { return LSTM_MODEL_MEM_SIZE; }

lstm_status lstm_model_init(void *mem, size_t mem_len, const void *data, size_t len, lstm_model **out) {
    if (!mem || !data || !out) return LSTM_E_INVALID_ARGUMENT;
    if (mem_len < LSTM_MODEL_MEM_SIZE) return LSTM_E_BUFFER_TOO_SMALL;
    if ((uintptr_t)data % 4 != 0) return LSTM_E_MISALIGNED;
    const unsigned char *p = (const unsigned char *)data;
    if (len < LSTM_HDR_SIZE) return len >= LSTM_FILE_MAGIC_LEN && memcmp(p, LSTM_FILE_MAGIC, LSTM_FILE_MAGIC_LEN)
                                        ? LSTM_E_BAD_MAGIC : LSTM_E_TRUNCATED;
    if (memcmp(p + LSTM_HDR_MAGIC, LSTM_FILE_MAGIC, LSTM_FILE_MAGIC_LEN) != 0) return LSTM_E_BAD_MAGIC;
    uint32_t version = rd32(p + LSTM_HDR_VERSION);
    if (version != LSTM_FORMAT_VERSION) return LSTM_E_UNSUPPORTED_VERSION;
    uint64_t file_size = rd64(p + LSTM_HDR_FILE_SIZE);
    uint32_t header_size = rd32(p + LSTM_HDR_HEADER_SIZE), count = rd32(p + LSTM_HDR_TENSOR_COUNT);
    if (file_size > len) return LSTM_E_TRUNCATED;
    if (count == 0 || count > LSTM_MAX_TENSORS ||
        header_size != LSTM_HDR_SIZE + (uint64_t)count * LSTM_TENSOR_ENTRY_SIZE || header_size > file_size)
        return LSTM_E_BAD_HEADER;
    if (file_crc(p, file_size) != rd32(p + LSTM_HDR_CRC32)) return LSTM_E_CHECKSUM;

    /* built in place (no copy on the stack); marked valid only at the end */
    lstm_model *m = (lstm_model *)lstm_align_up(mem, LSTM_MODEL_ALIGN);
    memset(m, 0, sizeof *m);
    m->info.format_version = version;
    m->info.file_size = file_size;
    lstm_status st = read_header(p, m);
    if (st == LSTM_OK) st = read_tensors(p, file_size, header_size, count, m);
    if (st == LSTM_OK) st = finish_cells(m);
    if (st != LSTM_OK) return st;
    plan_state(m);
    m->info.isa = lstm_isa_best();
    m->kern = lstm_kernels_for((lstm_isa)m->info.isa);
    m->magic = LSTM_MODEL_MAGIC;
    *out = m;
    return LSTM_OK;
}

lstm_status lstm_model_open(const void *data, size_t len, lstm_model **out) {
    if (!data || !out) return LSTM_E_INVALID_ARGUMENT;
    void *mem = malloc(LSTM_MODEL_MEM_SIZE);
    if (!mem) return LSTM_E_OUT_OF_MEMORY;
    lstm_status st = lstm_model_init(mem, LSTM_MODEL_MEM_SIZE, data, len, out);
    if (st != LSTM_OK) {
        free(mem);
        return st;
    }
    (*out)->allocation = mem;
    return LSTM_OK;
}

void lstm_model_close(lstm_model *model) {
    if (!model || model->magic != LSTM_MODEL_MAGIC) return;
    model->magic = 0;
    if (model->allocation) free(model->allocation);
}

lstm_status lstm_model_set_isa(lstm_model *model, lstm_isa isa) {
    if (!model || model->magic != LSTM_MODEL_MAGIC) return LSTM_E_INVALID_ARGUMENT;
    if (!lstm_isa_supported(isa)) return LSTM_E_ISA_UNAVAILABLE;
    model->info.isa = isa == LSTM_ISA_AUTO ? lstm_isa_best() : isa;
    model->kern = lstm_kernels_for((lstm_isa)model->info.isa);
    return LSTM_OK;
}

lstm_status lstm_model_get_info(const lstm_model *model, lstm_model_info *info) {
    if (!model || !info || model->magic != LSTM_MODEL_MAGIC) return LSTM_E_INVALID_ARGUMENT;
    *info = model->info;
    return LSTM_OK;
}
