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
        if (dt != LSTM_LAYER_FP32) return LSTM_E_BAD_HEADER; /* unused entries must be 0 as well */
    }
    for (uint32_t i = LSTM_HDR_RESERVED; i < LSTM_HDR_SIZE; i++)
        if (p[i] != 0) return LSTM_E_BAD_HEADER;
    m->hr = in->proj_size ? in->proj_size : in->hidden_size;
    m->layer_out = m->hr * in->num_directions;
    in->output_size = in->head_size ? in->head_size : m->layer_out;
    return LSTM_OK;
}

/* The shape a tensor of this role and index must have; 0 if the role/index pair is not expected. */
static int expected_shape(const lstm_model *m, uint32_t role, uint32_t index, uint32_t *rows, uint32_t *cols) {
    const lstm_model_info *in = &m->info;
    uint32_t H = in->hidden_size, layer = index / 2, dir = index % 2;
    int layer_tensor = role == LSTM_ROLE_WEIGHT || role == LSTM_ROLE_BIAS || role == LSTM_ROLE_PROJ;
    if (layer_tensor && (layer >= in->num_layers || dir >= in->num_directions)) return 0;
    switch (role) {
    case LSTM_ROLE_WEIGHT:
        *rows = 4 * H;
        *cols = (layer == 0 ? in->input_size : m->layer_out) + m->hr;
        return 1;
    case LSTM_ROLE_BIAS: *rows = 4 * H; *cols = 1; return 1;
    case LSTM_ROLE_PROJ: *rows = in->proj_size; *cols = H; return in->proj_size > 0;
    case LSTM_ROLE_HEAD_W: *rows = in->head_size; *cols = m->layer_out; return in->head_size > 0 && index == 0;
    case LSTM_ROLE_HEAD_B: *rows = in->head_size; *cols = 1; return in->head_size > 0 && index == 0;
    default: return 0;
    }
}

/* Slot in the "seen" table for a (role, index) pair, to catch missing and repeated tensors. */
static size_t slot_of(uint32_t role, uint32_t index) { return (size_t)(role - 1) * LSTM_MAX_LAYERS * 2 + index; }
#define LSTM_SLOTS (5 * LSTM_MAX_LAYERS * 2)

static lstm_status read_tensors(const unsigned char *p, uint64_t file_size, uint32_t header_size,
                                uint32_t count, lstm_model *m) {
    unsigned char seen[LSTM_SLOTS];
    uint64_t begin[LSTM_MAX_TENSORS], end[LSTM_MAX_TENSORS];
    memset(seen, 0, sizeof seen);
    for (uint32_t t = 0; t < count; t++) {
        const unsigned char *e = p + LSTM_HDR_SIZE + (size_t)t * LSTM_TENSOR_ENTRY_SIZE;
        uint32_t role = rd32(e + LSTM_TENSOR_ROLE), index = rd32(e + LSTM_TENSOR_INDEX);
        uint32_t dtype = rd32(e + LSTM_TENSOR_DTYPE), rows = rd32(e + LSTM_TENSOR_ROWS);
        uint32_t cols = rd32(e + LSTM_TENSOR_COLS), want_rows, want_cols;
        uint64_t off = rd64(e + LSTM_TENSOR_OFFSET);
        if (rd32(e + LSTM_TENSOR_RESERVED) != 0 || dtype != LSTM_DTYPE_F32) return LSTM_E_BAD_TENSOR;
        if (role < LSTM_ROLE_WEIGHT || role > LSTM_ROLE_HEAD_B || index >= 2 * LSTM_MAX_LAYERS)
            return LSTM_E_BAD_TENSOR;
        if (!expected_shape(m, role, index, &want_rows, &want_cols)) return LSTM_E_BAD_TENSOR;
        if (rows != want_rows || cols != want_cols) return LSTM_E_BAD_TENSOR;
        if (seen[slot_of(role, index)]++) return LSTM_E_BAD_TENSOR;
        /* rows, cols <= 2 * LSTM_MAX_DIM + ..., so the product fits easily in 64 bits */
        uint64_t nbytes = (uint64_t)rows * cols * sizeof(float);
        if (off % LSTM_TENSOR_ALIGN != 0 || off < header_size || off > file_size || nbytes > file_size - off)
            return LSTM_E_BAD_TENSOR;
        for (uint32_t u = 0; u < t; u++)
            if (off < end[u] && begin[u] < off + nbytes) return LSTM_E_BAD_TENSOR; /* overlap */
        begin[t] = off;
        end[t] = off + nbytes;
        const float *data = (const float *)(const void *)(p + off);
        if (!lstm_all_finite(data, (size_t)rows * cols)) return LSTM_E_NONFINITE_WEIGHT;
        m->info.param_count += (uint64_t)rows * cols;
        uint32_t layer = index / 2, dir = index % 2;
        lstm_cell *c = &m->cells[layer][dir];
        switch (role) {
        case LSTM_ROLE_WEIGHT: c->w = data; c->ld = cols; c->in = cols - m->hr; break;
        case LSTM_ROLE_BIAS: c->b = data; break;
        case LSTM_ROLE_PROJ: c->w_hr = data; break;
        case LSTM_ROLE_HEAD_W: m->head_w = data; break;
        default: m->head_b = data; break;
        }
    }
    /* every expected tensor present */
    for (uint32_t role = LSTM_ROLE_WEIGHT; role <= LSTM_ROLE_HEAD_B; role++)
        for (uint32_t index = 0; index < 2 * LSTM_MAX_LAYERS; index++) {
            uint32_t r, c;
            if (expected_shape(m, role, index, &r, &c) && !seen[slot_of(role, index)]) return LSTM_E_BAD_TENSOR;
        }
    return LSTM_OK;
}

/* Where each part of a state lives, in floats from the state's data start (each part 16-float aligned). */
static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }
static void plan_state(lstm_model *m) {
    const lstm_model_info *in = &m->info;
    size_t H = in->hidden_size, cells = (size_t)in->num_layers * in->num_directions;
    size_t max_in = in->input_size > m->layer_out ? in->input_size : m->layer_out;
    m->persist_floats = cells * (m->hr + H);
    m->off_xh = round16(m->persist_floats);
    m->off_gates = m->off_xh + round16(max_in + m->hr);
    m->off_hfull = m->off_gates + round16(4 * H);
    m->off_top = m->off_hfull + round16(H);
    m->state_floats = m->off_top + round16(m->layer_out);
}

size_t lstm_model_mem_size(void) { return sizeof(lstm_model); }

lstm_status lstm_model_init(void *mem, size_t mem_len, const void *data, size_t len, lstm_model **out) {
    if (!mem || !data || !out) return LSTM_E_INVALID_ARGUMENT;
    if (mem_len < sizeof(lstm_model) || ((uintptr_t)mem % 16) != 0) return LSTM_E_INVALID_ARGUMENT;
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
    if (st != LSTM_OK) return st;
    plan_state(&m);
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

lstm_status lstm_model_get_info(const lstm_model *model, lstm_model_info *info) {
    if (!model || !info || model->magic != LSTM_MODEL_MAGIC) return LSTM_E_INVALID_ARGUMENT;
    *info = model->info;
    return LSTM_OK;
}
