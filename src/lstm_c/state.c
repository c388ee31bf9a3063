/* state.c - a stream's state in caller memory: size, init, reset, snapshot and restore. */
#include <string.h>

#include "lstm_format.h"
#include "lstm_internal.h"


static int model_ok(const lstm_model *m) { return m && m->magic == LSTM_MODEL_MAGIC; }

lstm_status lstm_check_state(const lstm_state *s) {
    if (!s) return LSTM_E_INVALID_ARGUMENT;
    if (s->magic != LSTM_STATE_MAGIC || (s->flags & ~LSTM_STATE_COMPACT) != 0 || !model_ok(s->model) ||
        s->fingerprint != s->model->info.fingerprint)
        return LSTM_E_BAD_STATE;
    return LSTM_OK;
}

size_t lstm_state_size(const lstm_model *model) {
    if (!model_ok(model)) return 0;
    return (LSTM_ALIGN - 1) + LSTM_STATE_HEADER + model->state_floats * sizeof(float);
}

lstm_status lstm_state_init(const lstm_model *model, void *buf, size_t len, lstm_state **out) {
    if (!model_ok(model) || !buf || !out) return LSTM_E_INVALID_ARGUMENT;
    if (len < lstm_state_size(model)) return LSTM_E_BUFFER_TOO_SMALL;
    lstm_state *s = (lstm_state *)lstm_align_up(buf, LSTM_ALIGN);
    memset(s, 0, LSTM_STATE_HEADER + model->state_floats * sizeof(float));
    s->magic = LSTM_STATE_MAGIC;
    s->model = model;
    s->fingerprint = model->info.fingerprint;
    *out = s;
    return LSTM_OK;
}

size_t lstm_compact_state_size(const lstm_model *model) {
    if (!model_ok(model)) return 0;
    return LSTM_COMPACT_HEADER + lstm_r4(model->persist_floats) * sizeof(float); /* a multiple of 16 bytes */
}

lstm_status lstm_compact_state_init(const lstm_model *model, void *buf, size_t len, lstm_state **out) {
    if (!model_ok(model) || !buf || !out) return LSTM_E_INVALID_ARGUMENT;
    if ((uintptr_t)buf % LSTM_COMPACT_ALIGN != 0) return LSTM_E_MISALIGNED;
    if (len < lstm_compact_state_size(model)) return LSTM_E_BUFFER_TOO_SMALL;
    lstm_state *s = (lstm_state *)buf;
    memset(s, 0, lstm_compact_state_size(model));
    s->magic = LSTM_STATE_MAGIC;
    s->flags = LSTM_STATE_COMPACT;
    s->model = model;
    s->fingerprint = model->info.fingerprint;
    *out = s;
    return LSTM_OK;
}

int lstm_state_is_compact(const lstm_state *state) {
    return lstm_check_state(state) == LSTM_OK && (state->flags & LSTM_STATE_COMPACT) != 0;
}

size_t lstm_step_workspace_size(const lstm_model *model) {
    if (!model_ok(model)) return 0;
    return lstm_scratch_bytes(model);
}

lstm_status lstm_state_reset(lstm_state *state) {
    lstm_status st = lstm_check_state(state);
    if (st != LSTM_OK) return st;
    memset(lstm_state_data(state), 0, state->model->persist_floats * sizeof(float));
    return LSTM_OK;
}

size_t lstm_snapshot_size(const lstm_model *model) {
    if (!model_ok(model)) return 0;
    return LSTM_SNAP_HEADER_SIZE + model->persist_floats * sizeof(float) + 4;
}

lstm_status lstm_state_snapshot(const lstm_state *state, void *buf, size_t len) {
    lstm_status st = lstm_check_state(state);
    if (st != LSTM_OK) return st;
    if (!buf) return LSTM_E_INVALID_ARGUMENT;
    const lstm_model *m = state->model;
    size_t need = lstm_snapshot_size(m), floats_bytes = m->persist_floats * sizeof(float);
    if (len < need) return LSTM_E_BUFFER_TOO_SMALL;
    unsigned char *p = (unsigned char *)buf;
    memcpy(p + LSTM_SNAP_MAGIC, LSTM_SNAPSHOT_MAGIC, 8);
    wr32(p + LSTM_SNAP_VERSION, LSTM_SNAPSHOT_VERSION);
    wr32(p + LSTM_SNAP_FLOATS, (uint32_t)m->persist_floats);
    wr64(p + LSTM_SNAP_FINGERPRINT, m->info.fingerprint);
    memcpy(p + LSTM_SNAP_HEADER_SIZE, lstm_state_cdata(state), floats_bytes);
    wr32(p + LSTM_SNAP_HEADER_SIZE + floats_bytes, lstm_crc32(p, LSTM_SNAP_HEADER_SIZE + floats_bytes, 0));
    return LSTM_OK;
}

/* A state this model can reach (int16x8 models: the integer ranges of docs/int16x8.md); float models: every h within the model's h_limit (1 without a projection: h = o tanh c),
 * every c within LSTM_MAX_ABS_CELL (c grows by at most 1 per step and stops growing there in float). NaN
 * and infinity fail both. */
static int values_in_range(const lstm_model *m, const unsigned char *p) {
    size_t nh = (size_t)m->info.num_layers * m->info.num_directions * m->hr;
    if (m->is_int) { /* int16x8: int32 words, h in [-32767, 32767] (Q0.15), c any int32 but INT32_MIN */
        for (size_t i = 0; i < m->persist_floats; i++) {
            uint32_t u = rd32(p + 4 * i);
            int ok = i < nh ? (u <= 32767U || u >= 0xFFFF8001U) : u != 0x80000000U;
            if (!ok) return 0;
        }
        return 1;
    }
    for (size_t i = 0; i < m->persist_floats; i++) {
        uint32_t u = rd32(p + 4 * i);
        float v;
        memcpy(&v, &u, 4);
        float limit = i < nh ? m->h_limit : LSTM_MAX_ABS_CELL;
        if (!(v >= -limit && v <= limit)) return 0;
    }
    return 1;
}

lstm_status lstm_state_restore(lstm_state *state, const void *buf, size_t len) {
    lstm_status st = lstm_check_state(state);
    if (st != LSTM_OK) return st;
    if (!buf) return LSTM_E_INVALID_ARGUMENT;
    const lstm_model *m = state->model;
    const unsigned char *p = (const unsigned char *)buf;
    if (len < LSTM_SNAP_HEADER_SIZE + 4 || memcmp(p + LSTM_SNAP_MAGIC, LSTM_SNAPSHOT_MAGIC, 8) != 0 ||
        rd32(p + LSTM_SNAP_VERSION) != LSTM_SNAPSHOT_VERSION)
        return LSTM_E_BAD_SNAPSHOT;
    uint64_t floats = rd32(p + LSTM_SNAP_FLOATS);
    if (len != LSTM_SNAP_HEADER_SIZE + floats * sizeof(float) + 4) return LSTM_E_BAD_SNAPSHOT;
    size_t floats_bytes = (size_t)floats * sizeof(float);
    if (lstm_crc32(p, LSTM_SNAP_HEADER_SIZE + floats_bytes, 0) != rd32(p + LSTM_SNAP_HEADER_SIZE + floats_bytes))
        return LSTM_E_BAD_SNAPSHOT;
    if (rd64(p + LSTM_SNAP_FINGERPRINT) != m->info.fingerprint || floats != m->persist_floats)
        return LSTM_E_WRONG_MODEL;
    if (!values_in_range(m, p + LSTM_SNAP_HEADER_SIZE)) return LSTM_E_BAD_SNAPSHOT; /* forged, or not ours */
    memcpy(lstm_state_data(state), p + LSTM_SNAP_HEADER_SIZE, floats_bytes);
    return LSTM_OK;
}
