/* model.c - reading and validating a model file (layout in lstm_format.h), and the model descriptor. */
#include <stdlib.h>
#include <string.h>

#include "lstm_format.h"
#include "lstm_internal.h"


uint32_t lstm_crc32(const unsigned char *p, size_t n, uint32_t crc) {
    uint32_t table[256];
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320U ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    crc = ~crc;
    for (size_t i = 0; i < n; i++) crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

int lstm_all_finite(const float *v, size_t n) {
    /* exponent bits all ones means Inf or NaN; OR-reduce so the loop vectorises and has no branch */
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        bad |= (uint32_t)((u & 0x7f800000U) == 0x7f800000U);
    }
    return bad == 0;
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
    for (uint32_t l = 0; l < LSTM_MAX_LAYERS; l++) {
        uint32_t dt = p[LSTM_HDR_LAYER_DTYPES + l];
        in->layer_dtype[l] = dt;
        if (dt > LSTM_LAYER_INT8_DYNAMIC || (l >= in->num_layers && dt != 0)) return LSTM_E_BAD_HEADER;
    }
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
    int layer_role = role != LSTM_ROLE_HEAD_W && role != LSTM_ROLE_HEAD_B;
    if (layer_role ? (layer >= in->num_layers || dir >= in->num_directions) : index != 0) return 0;
    int q8 = layer_role && in->layer_dtype[layer] != LSTM_LAYER_FP32;
    uint32_t width = layer == 0 ? in->input_size : m->layer_out;
    t->dtype = LSTM_DTYPE_F32;
    t->cols = 1;
    switch (role) {
    case LSTM_ROLE_WEIGHT:
        t->rows = 4 * H;
        t->cols = q8 ? (uint32_t)(lstm_r4(width) + lstm_r4(m->hr)) : width + m->hr;
        t->dtype = q8 ? LSTM_DTYPE_I8_BLOCKED : LSTM_DTYPE_F32;
        return 1;
    case LSTM_ROLE_BIAS: t->rows = 4 * H; return 1;
    case LSTM_ROLE_PROJ:
        t->rows = P;
        t->cols = q8 ? (uint32_t)lstm_r4(H) : H;
        t->dtype = q8 ? LSTM_DTYPE_I8_BLOCKED : LSTM_DTYPE_F32;
        return P > 0;
    case LSTM_ROLE_HEAD_W: t->rows = in->head_size; t->cols = m->layer_out; return in->head_size > 0;
    case LSTM_ROLE_HEAD_B: t->rows = in->head_size; return in->head_size > 0;
    case LSTM_ROLE_W_SCALE: t->rows = 2; t->cols = 4 * H; return q8;
    case LSTM_ROLE_W_ROWSUM: t->rows = 2; t->cols = 4 * H; t->dtype = LSTM_DTYPE_I32; return q8;
    case LSTM_ROLE_PROJ_SCALE: t->rows = P; return q8 && P > 0;
    default: return 0;
    }
}

static uint64_t tensor_bytes(const tensor_want *t) {
    if (t->dtype == LSTM_DTYPE_I8_BLOCKED) return lstm_r16(t->rows) * (uint64_t)t->cols;
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

static int nonnegative(const float *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!(v[i] >= 0.0f)) return 0;
    return 1;
}

static size_t slot_of(uint32_t role, uint32_t index) { return (size_t)(role - 1) * LSTM_MAX_LAYERS * 2 + index; }
#define LSTM_SLOTS (LSTM_ROLE_COUNT * LSTM_MAX_LAYERS * 2)

static void attach(lstm_model *m, uint32_t role, uint32_t index, const void *data, const tensor_want *t) {
    lstm_cell *c = &m->cells[index / 2][index % 2];
    switch (role) {
    case LSTM_ROLE_WEIGHT:
        if (t->dtype == LSTM_DTYPE_F32) {
            c->w = (const float *)data;
            c->ld = t->cols;
        } else {
            c->wq = (const int8_t *)data;
        }
        break;
    case LSTM_ROLE_BIAS: c->b = (const float *)data; break;
    case LSTM_ROLE_PROJ:
        if (t->dtype == LSTM_DTYPE_F32) c->w_hr = (const float *)data;
        else c->hrq = (const int8_t *)data;
        break;
    case LSTM_ROLE_HEAD_W: m->head_w = (const float *)data; break;
    case LSTM_ROLE_HEAD_B: m->head_b = (const float *)data; break;
    case LSTM_ROLE_W_SCALE: c->wscale = (const float *)data; break;
    case LSTM_ROLE_W_ROWSUM: c->rowsum = (const int32_t *)data; break;
    default: c->hr_scale = (const float *)data; break;
    }
}

static lstm_status read_tensors(const unsigned char *p, uint64_t file_size, uint32_t header_size,
                                uint32_t count, lstm_model *m) {
    unsigned char seen[LSTM_SLOTS];
    uint64_t begin[LSTM_MAX_TENSORS], end[LSTM_MAX_TENSORS];
    memset(seen, 0, sizeof seen);
    for (uint32_t t = 0; t < count; t++) {
        const unsigned char *e = p + LSTM_HDR_SIZE + (size_t)t * LSTM_TENSOR_ENTRY_SIZE;
        uint32_t role = rd32(e + LSTM_TENSOR_ROLE), index = rd32(e + LSTM_TENSOR_INDEX);
        uint64_t off = rd64(e + LSTM_TENSOR_OFFSET);
        tensor_want want;
        if (role < 1 || role > LSTM_ROLE_COUNT || index >= 2 * LSTM_MAX_LAYERS || !expected(m, role, index, &want))
            return LSTM_E_BAD_TENSOR;
        if (rd32(e + LSTM_TENSOR_DTYPE) != want.dtype || rd32(e + LSTM_TENSOR_ROWS) != want.rows ||
            rd32(e + LSTM_TENSOR_COLS) != want.cols || rd32(e + LSTM_TENSOR_RESERVED) != 0)
            return LSTM_E_BAD_TENSOR;
        if (seen[slot_of(role, index)]++) return LSTM_E_BAD_TENSOR;
        uint64_t nbytes = tensor_bytes(&want); /* every dimension <= 2^17: no overflow */
        if (off % LSTM_TENSOR_ALIGN != 0 || off < header_size || off > file_size || nbytes > file_size - off)
            return LSTM_E_BAD_TENSOR;
        for (uint32_t u = 0; u < t; u++)
            if (off < end[u] && begin[u] < off + nbytes) return LSTM_E_BAD_TENSOR; /* overlap */
        begin[t] = off;
        end[t] = off + nbytes;
        if (want.dtype == LSTM_DTYPE_F32 && !lstm_all_finite((const float *)(const void *)(p + off), nbytes / 4))
            return LSTM_E_NONFINITE_WEIGHT;
        attach(m, role, index, p + off, &want);
    }
    for (uint32_t role = 1; role <= LSTM_ROLE_COUNT; role++) /* every expected tensor is there */
        for (uint32_t index = 0; index < 2 * LSTM_MAX_LAYERS; index++) {
            tensor_want want;
            if (expected(m, role, index, &want) && !seen[slot_of(role, index)]) return LSTM_E_BAD_TENSOR;
        }
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
            if (!blocked_ok(c->wq, rows, 4 * (c->gx + c->gh), parts, 2) || !rowsums_ok(c, rows) ||
                !nonnegative(c->wscale, 2 * (size_t)rows))
                return LSTM_E_BAD_TENSOR;
            if (in->proj_size) {
                parts[0] = in->hidden_size;
                if (!blocked_ok(c->hrq, in->proj_size, (uint32_t)lstm_r4(in->hidden_size), parts, 1) ||
                    !nonnegative(c->hr_scale, in->proj_size))
                    return LSTM_E_BAD_TENSOR;
            }
        }
    return LSTM_OK;
}

/* Where each part of a state lives, in floats from the state's data start (each part 16-float aligned). */
static void plan_state(lstm_model *m) {
    const lstm_model_info *in = &m->info;
    size_t H = in->hidden_size, cells = (size_t)in->num_layers * in->num_directions;
    size_t max_in = in->input_size > m->layer_out ? in->input_size : m->layer_out;
    size_t widest = max_in > m->hr ? max_in : m->hr;
    m->persist_floats = cells * (m->hr + H);
    m->off_xh = lstm_r16(m->persist_floats);
    m->off_gates = m->off_xh + lstm_r16(lstm_r4(max_in) + lstm_r4(m->hr));
    m->off_hfull = m->off_gates + lstm_r16(4 * H);
    int dynamic = 0; /* only int8-dynamic layers need the int8 vectors and int32 sums */
    for (uint32_t l = 0; l < in->num_layers; l++) dynamic |= in->layer_dtype[l] == LSTM_LAYER_INT8_DYNAMIC;
    m->q_width = widest;
    m->off_q = m->off_hfull + lstm_r16(H);
    m->off_acc = m->off_q + (dynamic ? lstm_r16(2 * lstm_r4(widest) / 4) : 0); /* two int8 vectors, in floats */
    m->state_floats = m->off_acc + (dynamic ? 2 * lstm_r16(4 * H) : 0);
}

size_t lstm_model_mem_size(void) { return sizeof(lstm_model); }

lstm_status lstm_model_init(void *mem, size_t mem_len, const void *data, size_t len, lstm_model **out) {
    if (!mem || !data || !out) return LSTM_E_INVALID_ARGUMENT;
    if (mem_len < sizeof(lstm_model)) return LSTM_E_BUFFER_TOO_SMALL;
    if ((uintptr_t)mem % 16 != 0) return LSTM_E_INVALID_ARGUMENT;
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

    lstm_model m;
    memset(&m, 0, sizeof m);
    m.info.format_version = version;
    m.info.file_size = file_size;
    lstm_status st = read_header(p, &m);
    if (st == LSTM_OK) st = read_tensors(p, file_size, header_size, count, &m);
    if (st == LSTM_OK) st = finish_cells(&m);
    if (st != LSTM_OK) return st;
    plan_state(&m);
    m.info.isa = lstm_isa_best();
    m.kern = lstm_kernels_for(m.info.isa);
    m.magic = LSTM_MODEL_MAGIC;
    memcpy(mem, &m, sizeof m);
    *out = (lstm_model *)mem;
    return LSTM_OK;
}

lstm_status lstm_model_open(const void *data, size_t len, lstm_model **out) {
    if (!data || !out) return LSTM_E_INVALID_ARGUMENT;
    void *mem = malloc(sizeof(lstm_model));
    if (!mem) return LSTM_E_OUT_OF_MEMORY;
    lstm_status st = lstm_model_init(mem, sizeof(lstm_model), data, len, out);
    if (st != LSTM_OK) {
        free(mem);
        return st;
    }
    (*out)->owns_memory = 1;
    return LSTM_OK;
}

void lstm_model_close(lstm_model *model) {
    if (!model || model->magic != LSTM_MODEL_MAGIC) return;
    model->magic = 0;
    if (model->owns_memory) free(model);
}

lstm_status lstm_model_set_isa(lstm_model *model, lstm_isa isa) {
    if (!model || model->magic != LSTM_MODEL_MAGIC) return LSTM_E_INVALID_ARGUMENT;
    if (!lstm_isa_supported(isa)) return LSTM_E_ISA_UNAVAILABLE;
    model->info.isa = isa == LSTM_ISA_AUTO ? lstm_isa_best() : isa;
    model->kern = lstm_kernels_for(model->info.isa);
    return LSTM_OK;
}

lstm_status lstm_model_get_info(const lstm_model *model, lstm_model_info *info) {
    if (!model || !info || model->magic != LSTM_MODEL_MAGIC) return LSTM_E_INVALID_ARGUMENT;
    *info = model->info;
    return LSTM_OK;
}
