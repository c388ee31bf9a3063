/* engine.c - the fp32 forward pass: one step, a whole sequence, and many streams at once. */
#include <string.h>

#include "activations.h"
#include "blas.h"
#include "lstm_internal.h"

static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

/* Fill `rows` rows of `out` (row stride ld) with the vector v[n]. */
static void broadcast_rows(float *out, size_t rows, size_t ld, const float *v, size_t n) {
    for (size_t r = 0; r < rows; r++) memcpy(out + r * ld, v, n * sizeof(float));
}

/* gates[4H] hold every pre-activation: run the cell, then project into h[Hr] (hfull is scratch [H]). */
static void finish_cell(const lstm_model *m, const lstm_cell *cell, float *gates, float *h, float *c,
                        float *hfull) {
    size_t H = m->info.hidden_size, P = m->info.proj_size;
    if (P == 0) {
        lstm_cell_update(H, gates, c, h);
        return;
    }
    lstm_cell_update(H, gates, c, hfull);
    memset(h, 0, P * sizeof(float));
    lstm_gemv_acc(P, H, cell->w_hr, H, hfull, h);
}

/* ys[n][head] = act(X[n][layer_out] W_head^T + b), or a copy of X when the model has no head. */
static void output_rows(const lstm_model *m, const float *x, size_t ldx, size_t n, float *ys) {
    size_t out = m->info.output_size;
    if (!m->head_w) {
        for (size_t r = 0; r < n; r++) memcpy(ys + r * out, x + r * ldx, out * sizeof(float));
        return;
    }
    broadcast_rows(ys, n, out, m->head_b, out);
    lstm_gemm_nt_acc(n, out, m->layer_out, x, ldx, m->head_w, m->layer_out, ys, out);
    for (size_t r = 0; r < n; r++) lstm_activate(m->info.head_activation, ys + r * out, out);
}

lstm_status lstm_step(lstm_state *state, const float *x, float *y) {
    lstm_status st = lstm_check_state(state);
    if (st != LSTM_OK) return st;
    if (!x || !y) return LSTM_E_INVALID_ARGUMENT;
    const lstm_model *m = state->model;
    if (m->info.num_directions != 1) return LSTM_E_UNSUPPORTED;
    if (!lstm_all_finite(x, m->info.input_size)) return LSTM_E_NONFINITE_INPUT;
    float *d = lstm_state_data(state);
    float *xh = d + m->off_xh, *gates = d + m->off_gates, *hfull = d + m->off_hfull;
    size_t H4 = 4 * (size_t)m->info.hidden_size, hr = m->hr;
    const float *in = x;
    for (uint32_t l = 0; l < m->info.num_layers; l++) {
        const lstm_cell *cell = &m->cells[l][0];
        float *h = d + lstm_off_h(m, l, 0), *c = d + lstm_off_c(m, l, 0);
        memcpy(xh, in, cell->in * sizeof(float));
        memcpy(xh + cell->in, h, hr * sizeof(float));
        memcpy(gates, cell->b, H4 * sizeof(float));
        lstm_gemv_acc(H4, cell->ld, cell->w, cell->ld, xh, gates); /* [W_ih | W_hh] . [x; h] in one pass */
        finish_cell(m, cell, gates, h, c, hfull);
        in = h;
    }
    output_rows(m, in, hr, 1, y);
    return LSTM_OK;
}

/* ---- whole sequences -------------------------------------------------------------------------------- */

/* Extra floats a bidirectional run needs for its own zero-started h and c. */
static size_t run_extra_floats(const lstm_model *m) {
    return m->info.num_directions == 2 ? round16(m->hr) + round16(m->info.hidden_size) : 0;
}
static size_t run_floats_per_step(const lstm_model *m) {
    return 4 * (size_t)m->info.hidden_size + 2 * (size_t)m->layer_out;
}

size_t lstm_run_workspace_size(const lstm_model *m, size_t steps) {
    if (!m || m->magic != LSTM_MODEL_MAGIC || steps == 0) return 0;
    if (steps > (SIZE_MAX / 8 - 4096) / run_floats_per_step(m)) return SIZE_MAX; /* cannot exist */
    return (LSTM_ALIGN - 1) + (steps * run_floats_per_step(m) + 48 + run_extra_floats(m)) * sizeof(float);
}

/* Steps per chunk a workspace of `len` bytes allows (0: none). */
static size_t run_chunk(const lstm_model *m, size_t len) {
    size_t fixed = (LSTM_ALIGN - 1) + (48 + run_extra_floats(m)) * sizeof(float);
    return len <= fixed ? 0 : (len - fixed) / (run_floats_per_step(m) * sizeof(float));
}

/* One direction of one layer over k steps: X[k][ldx] in, Y[t][d*hr ...] out, h and c carried. */
static void run_cell(const lstm_model *m, const lstm_cell *cell, uint32_t d, const float *x, size_t ldx,
                     size_t k, float *g, float *y, float *h, float *c, float *hfull) {
    size_t H4 = 4 * (size_t)m->info.hidden_size, hr = m->hr;
    broadcast_rows(g, k, H4, cell->b, H4);
    lstm_gemm_nt_acc(k, H4, cell->in, x, ldx, cell->w, cell->ld, g, H4); /* input projection of all steps */
    for (size_t s = 0; s < k; s++) {
        size_t t = d ? k - 1 - s : s;
        float *gates = g + t * H4;
        lstm_gemv_acc(H4, hr, cell->w + cell->in, cell->ld, h, gates);
        finish_cell(m, cell, gates, h, c, hfull);
        memcpy(y + t * m->layer_out + d * hr, h, hr * sizeof(float));
    }
}

/* k steps through every layer, layer by layer, then the head. */
static void run_chunk_layers(lstm_state *state, const float *xs, size_t k, float *ys, float *work) {
    const lstm_model *m = state->model;
    float *data = lstm_state_data(state), *hfull = data + m->off_hfull;
    size_t H = m->info.hidden_size, lo = m->layer_out;
    float *g = work, *buf[2];
    buf[0] = g + round16(k * 4 * H);
    buf[1] = buf[0] + round16(k * lo);
    float *own_h = buf[1] + round16(k * lo), *own_c = own_h + round16(m->hr);
    const float *x = xs;
    size_t ldx = m->info.input_size;
    for (uint32_t l = 0; l < m->info.num_layers; l++) {
        float *y = buf[l % 2];
        for (uint32_t d = 0; d < m->info.num_directions; d++) {
            float *h = data + lstm_off_h(m, l, d), *c = data + lstm_off_c(m, l, d);
            if (m->info.num_directions == 2) { /* whole-sequence mode: each direction starts from zero */
                h = own_h;
                c = own_c;
                memset(h, 0, m->hr * sizeof(float));
                memset(c, 0, H * sizeof(float));
            }
            run_cell(m, &m->cells[l][d], d, x, ldx, k, g, y, h, c, hfull);
        }
        x = y;
        ldx = lo;
    }
    output_rows(m, x, lo, k, ys);
}

lstm_status lstm_run(lstm_state *state, const float *xs, size_t steps, float *ys, void *work, size_t work_len) {
    lstm_status st = lstm_check_state(state);
    if (st != LSTM_OK) return st;
    if (steps == 0) return LSTM_OK;
    if (!xs || !ys) return LSTM_E_INVALID_ARGUMENT;
    const lstm_model *m = state->model;
    size_t in = m->info.input_size, out = m->info.output_size;
    if (steps > SIZE_MAX / sizeof(float) / in) return LSTM_E_INVALID_ARGUMENT;
    if (!lstm_all_finite(xs, steps * in)) return LSTM_E_NONFINITE_INPUT;
    size_t k = work ? run_chunk(m, work_len) : 0;
    if (m->info.num_directions == 2) {
        if (k < steps) return LSTM_E_BUFFER_TOO_SMALL;
        run_chunk_layers(state, xs, steps, ys, (float *)lstm_align_up(work, LSTM_ALIGN));
        return LSTM_OK;
    }
    if (k == 0) {
        for (size_t t = 0; t < steps; t++) lstm_step(state, xs + t * in, ys + t * out);
        return LSTM_OK;
    }
    for (size_t t0 = 0; t0 < steps; t0 += k) {
        size_t n = steps - t0 < k ? steps - t0 : k;
        run_chunk_layers(state, xs + t0 * in, n, ys + t0 * out, (float *)lstm_align_up(work, LSTM_ALIGN));
    }
    return LSTM_OK;
}

/* ---- many streams ----------------------------------------------------------------------------------- */

size_t lstm_step_many_workspace_size(const lstm_model *m, size_t n) {
    if (!m || m->magic != LSTM_MODEL_MAGIC || n == 0) return 0;
    size_t max_in = m->info.input_size > m->layer_out ? m->info.input_size : m->layer_out;
    size_t per = max_in + m->hr + 4 * (size_t)m->info.hidden_size;
    if (n > (SIZE_MAX / 8 - 4096) / per) return SIZE_MAX;
    return (LSTM_ALIGN - 1) + (n * per + 32) * sizeof(float);
}

lstm_status lstm_step_many(const lstm_model *m, lstm_state *const *states, size_t n, const float *xs, float *ys,
                           void *work, size_t work_len) {
    if (!m || m->magic != LSTM_MODEL_MAGIC || (n > 0 && (!states || !xs || !ys))) return LSTM_E_INVALID_ARGUMENT;
    if (n == 0) return LSTM_OK;
    if (m->info.num_directions != 1) return LSTM_E_UNSUPPORTED;
    if (!work || work_len < lstm_step_many_workspace_size(m, n)) return LSTM_E_BUFFER_TOO_SMALL;
    for (size_t i = 0; i < n; i++) {
        lstm_status st = lstm_check_state(states[i]);
        if (st != LSTM_OK) return st;
        if (states[i]->model != m) return LSTM_E_WRONG_MODEL;
    }
    size_t in0 = m->info.input_size, H4 = 4 * (size_t)m->info.hidden_size, hr = m->hr;
    if (!lstm_all_finite(xs, n * in0)) return LSTM_E_NONFINITE_INPUT;
    size_t max_in = in0 > m->layer_out ? in0 : m->layer_out, ld = max_in + hr;
    float *xh = (float *)lstm_align_up(work, LSTM_ALIGN), *g = xh + round16(n * ld);
    for (uint32_t l = 0; l < m->info.num_layers; l++) {
        const lstm_cell *cell = &m->cells[l][0];
        for (size_t i = 0; i < n; i++) { /* gather [x; h] of every stream */
            float *d = lstm_state_data(states[i]);
            const float *x = l == 0 ? xs + i * in0 : d + lstm_off_h(m, l - 1, 0);
            memcpy(xh + i * ld, x, cell->in * sizeof(float));
            memcpy(xh + i * ld + cell->in, d + lstm_off_h(m, l, 0), hr * sizeof(float));
        }
        broadcast_rows(g, n, H4, cell->b, H4);
        lstm_gemm_nt_acc(n, H4, cell->ld, xh, ld, cell->w, cell->ld, g, H4);
        for (size_t i = 0; i < n; i++) {
            float *d = lstm_state_data(states[i]);
            finish_cell(m, cell, g + i * H4, d + lstm_off_h(m, l, 0), d + lstm_off_c(m, l, 0), d + m->off_hfull);
        }
    }
    uint32_t top = m->info.num_layers - 1;
    for (size_t i = 0; i < n; i++) /* top h of every stream, gathered for the head */
        memcpy(xh + i * hr, lstm_state_data(states[i]) + lstm_off_h(m, top, 0), hr * sizeof(float));
    output_rows(m, xh, hr, n, ys);
    return LSTM_OK;
}
