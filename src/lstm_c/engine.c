/* engine.c - the forward pass of fp32, int8, int8-dynamic and int8-a16 layers: one step, a whole sequence, and many
 * streams at once (int16x8 models step through int_float.c). Every kernel comes from the model's table (kernels.h), chosen when it was opened; the
 * dense head always uses the canonical fp32 product, so it gives the same bits on every ISA. */
#include <string.h>

#include "lstm_internal.h"

/* Fill `rows` rows of `out` (row stride ld) with the vector v[n]. */
static void broadcast_rows(float *out, size_t rows, size_t ld, const float *v, size_t n) {
    for (size_t r = 0; r < rows; r++) memcpy(out + r * ld, v, n * sizeof(float));
}

/* gates[4H] += W v for one part of an int8 (float activations) layer's columns (part 0: W_ih, 1: W_hh)
 * with the n values of v, padded with zeros in the scratch's `xh` area. */
static void add_q8_float_part(const lstm_model *m, const lstm_cell *c, size_t part, const float *v, size_t n,
                              float *gates, float *scratch) {
    size_t rows = 4 * (size_t)m->info.hidden_size, g0 = part ? c->gx : 0;
    float *padded = scratch + m->off_xh;
    memcpy(padded, v, n * sizeof(float));
    memset(padded + n, 0, (lstm_r4(n) - n) * sizeof(float));
    m->kern->gemv_f32(c->wq, rows, c->gx + c->gh, g0, g0 + lstm_r4(n) / 4, padded, c->wscale + part * rows, gates);
}

/* gates[4H] += W_ih x for an int8 (float activations) layer: fp32 layers take W_ih x as one product with
 * W_hh h (step) or over all steps (run), int8-dynamic layers through q8_dynamic_sums */
static void add_input_part(const lstm_model *m, const lstm_cell *c, const float *x, float *gates, float *scratch) {
    add_q8_float_part(m, c, 0, x, c->in, gates, scratch);
}

/* gates[4H] += W_hh h for an int8 (float activations) layer (fp32 layers: f32_layer_step) */
static void add_hidden_part(const lstm_model *m, const lstm_cell *c, const float *h, float *gates, float *scratch) {
    add_q8_float_part(m, c, 1, h, m->hr, gates, scratch);
}

/* Scratch of the int8-dynamic path for n vectors. */
typedef struct q8_batch {
    int8_t *q;     /* [n][r4(width)] int8 copies */
    float *scale;  /* [n] their scales */
    int32_t *acc;  /* [r16(n * 4H)] exact sums */
} q8_batch;

/* int8-dynamic layers: quantise the n vectors v + i * ldv (width values each), then the exact int32 sums of
 * one part of W (0: W_ih, 1: W_hh) for all of them in one pass over the weights, into b->acc + i * 4H. */
static void q8_dynamic_sums(const lstm_model *m, const lstm_cell *c, size_t part, const float *v, size_t ldv,
                            size_t width, size_t n, const q8_batch *b) {
    size_t rows = 4 * (size_t)m->info.hidden_size, groups = c->gx + c->gh, padded = lstm_r4(width);
    size_t g0 = part ? c->gx : 0, g1 = g0 + padded / 4;
    const int32_t *rowsum = c->rowsum + part * rows;
    for (size_t i = 0; i < n; i++) b->scale[i] = m->kern->quantize(v + i * ldv, width, b->q + i * padded, padded);
    if (n == 1)
        m->kern->gemv_s8(c->wq, rows, groups, g0, g1, b->q, rowsum, b->acc);
    else
        m->kern->gemm_s8(c->wq, rows, groups, g0, g1, n, b->q, padded, rowsum, b->acc, rows);
}

/* gates[4H] of an int8-dynamic layer: bias plus both parts' sums times their scales, in one fused pass
 * (the same arithmetic in step, run and step_many, so they agree to the bit). */
static void q8_dynamic_gates(const lstm_model *m, const lstm_cell *c, float *gates, const q8_batch *x, size_t i,
                             const q8_batch *h, size_t j) {
    size_t rows = 4 * (size_t)m->info.hidden_size;
    m->kern->q8_gates(gates, c->b, x->acc + i * rows, x->scale[i], c->wscale, h->acc + j * rows, h->scale[j],
                  c->wscale + rows, rows);
}

/* int8-a16 layers: q8_dynamic_sums with int16 activations (b->q holds int16_t [n][r4(width)]) and exact
 * int64 sums (b->acc holds int64_t [n][4H]). */
static void q16_sums(const lstm_model *m, const lstm_cell *c, size_t part, const float *v, size_t ldv,
                     size_t width, size_t n, const q8_batch *b) {
    size_t rows = 4 * (size_t)m->info.hidden_size, groups = c->gx + c->gh, padded = lstm_r4(width);
    size_t g0 = part ? c->gx : 0, g1 = g0 + padded / 4;
    int16_t *q = (int16_t *)(void *)b->q;
    int64_t *acc = (int64_t *)(void *)b->acc;
    for (size_t i = 0; i < n; i++) b->scale[i] = m->kern->quantize16(v + i * ldv, width, q + i * padded, padded);
    if (n == 1)
        m->kern->gemv_s16(c->wq, rows, groups, g0, g1, q, acc);
    else
        m->kern->gemm_s16(c->wq, rows, groups, g0, g1, n, q, padded, acc, rows);
}

/* The sums of a layer with quantised activations (int8-dynamic or int8-a16). */
static void quant_sums(const lstm_model *m, const lstm_cell *c, size_t part, const float *v, size_t ldv,
                       size_t width, size_t n, const q8_batch *b) {
    if (c->dtype == LSTM_LAYER_INT8_A16)
        q16_sums(m, c, part, v, ldv, width, n, b);
    else
        q8_dynamic_sums(m, c, part, v, ldv, width, n, b);
}

/* gates[4H] of a layer with quantised activations: q8_dynamic_gates, or for int8-a16 the same epilogue
 * from int64 sums (q16_gates). */
static void quant_gates(const lstm_model *m, const lstm_cell *c, float *gates, const q8_batch *x, size_t i,
                        const q8_batch *h, size_t j) {
    if (c->dtype != LSTM_LAYER_INT8_A16) {
        q8_dynamic_gates(m, c, gates, x, i, h, j);
        return;
    }
    size_t rows = 4 * (size_t)m->info.hidden_size;
    const int64_t *ax = (const int64_t *)(const void *)x->acc, *ah = (const int64_t *)(const void *)h->acc;
    m->kern->q16_gates(gates, c->b, ax + i * rows, x->scale[i], c->wscale, ah + j * rows, h->scale[j],
                       c->wscale + rows, rows);
}

static int quantised(const lstm_cell *c) {
    return c->dtype == LSTM_LAYER_INT8_DYNAMIC || c->dtype == LSTM_LAYER_INT8_A16;
}
/* Bytes per quantised activation and 32-bit words per exact sum of the model's widest quantised layers
 * (at least 1: the run and step_many workspaces always hold the int8-dynamic areas). */
static size_t q_bytes(const lstm_model *m) { return m->q_bytes > 1 ? m->q_bytes : 1; }
static size_t acc_words(const lstm_model *m) { return m->acc_words > 1 ? m->acc_words : 1; }

/* The state's scratch for one vector of the quantised paths; `slot` 0 or 1 picks one of two. */
static q8_batch state_batch(const lstm_model *m, float *scratch, size_t slot, float *scale) {
    q8_batch b;
    b.q = (int8_t *)(void *)(scratch + m->off_q) + slot * lstm_r4(m->q_width) * m->q_bytes;
    b.acc = (int32_t *)(void *)(scratch + m->off_acc) + slot * lstm_r16(4 * (size_t)m->info.hidden_size) * m->acc_words;
    b.scale = scale;
    return b;
}

/* h[Hr] from hfull[H] = o * tanh(c) (the scratch's hfull area, [r4(H)], zeroed past H here: a workspace
 * scratch holds whatever the caller left): a copy, or the projection. */
static void project(const lstm_model *m, const lstm_cell *cell, float *hfull, float *h) {
    size_t H = m->info.hidden_size, P = m->info.proj_size;
    if (P == 0) {
        memcpy(h, hfull, H * sizeof(float));
        return;
    }
    memset(hfull + H, 0, (lstm_r4(H) - H) * sizeof(float));
    memset(h, 0, P * sizeof(float));
    if (cell->hrq) {
        size_t groups = lstm_r4(H) / 4;
        m->kern->gemv_f32(cell->hrq, P, groups, 0, groups, hfull, cell->hr_scale, h);
    } else {
        m->kern->f32_gemv(cell->w_hr, P, H, 0, H, hfull, h);
    }
}

/* gates[4H] hold every pre-activation: run the cell, then project into h[Hr] (through the scratch's hfull
 * area when there is a projection). */
static void finish_cell(const lstm_model *m, const lstm_cell *cell, float *gates, float *h, float *c,
                        float *scratch) {
    float *hfull = scratch + m->off_hfull;
    /* fp32 layers: the precise cell (kernels.h); quantised layers keep the float one, the same bits on every
     * target */
    void (*cell_update)(size_t, float *, float *, float *) =
        cell->dtype == LSTM_LAYER_FP32 ? m->kern->cell_update_f32 : m->kern->cell_update;
    cell_update(m->info.hidden_size, gates, c, m->info.proj_size ? hfull : h);
    if (m->info.proj_size) project(m, cell, hfull, h);
}

/* gates[4H] += W_ih x (x given) then W_hh h, unfused: f32_layer_step without a fused kernel, and the traced
 * step (which copies the pre-activations before the cell). */
static void f32_products(const lstm_model *m, const lstm_cell *cell, const float *x, const float *h,
                         float *gates) {
    size_t H4 = 4 * (size_t)m->info.hidden_size;
    if (x) m->kern->f32_gemv(cell->w, H4, cell->ld, 0, cell->in, x, gates);
    m->kern->f32_gemv(cell->w, H4, cell->ld, cell->in, cell->ld, h, gates);
}

/* An fp32 layer's step: gates[4H] hold the bias (x given: W_ih x is added here) or the bias plus W_ih x (x
 * NULL: lstm_run), the W_hh h terms follow, then the cell and h. Each output's sum is split at column `in`
 * as everywhere (kernels.h), so a fused table kernel (f32_step_cell) and the unfused sequence (f32_products,
 * then the cell: also lstm_step_trace's, which copies the pre-activations between the two) give the same
 * bits. */
static void f32_layer_step(const lstm_model *m, const lstm_cell *cell, const float *x, float *gates, float *h,
                           float *c, float *scratch) {
    if (m->kern->f32_step_cell) {
        float *hfull = scratch + m->off_hfull;
        m->kern->f32_step_cell(cell->w, m->info.hidden_size, cell->ld, cell->in, x, h, gates, c, hfull);
        project(m, cell, hfull, h);
        return;
    }
    f32_products(m, cell, x, h, gates);
    finish_cell(m, cell, gates, h, c, scratch);
}

/* Whether the top layer (the head's input) is fp32 in every direction: then the head's activation is the
 * precise one (kernels.h). The top layer, not every layer: calibration runs a model layer by layer as
 * one-layer models (lstm_embed/calibrate.py), the head with the top one, and must get the whole model's
 * bits. A model of quantised layers keeps the float head, the same bits on every target. */
static int top_fp32(const lstm_model *m) {
    const lstm_cell *top = m->cells[m->info.num_layers - 1];
    for (uint32_t d = 0; d < m->info.num_directions; d++)
        if (top[d].dtype != LSTM_LAYER_FP32) return 0;
    return 1;
}

/* ys[n][head] = act(X[n][layer_out] W_head^T + b), or a copy of X when the model has no head. */
static void output_rows(const lstm_model *m, const float *x, size_t ldx, size_t n, float *ys) {
    size_t out = m->info.output_size;
    if (!m->head_w) {
        for (size_t r = 0; r < n; r++) memcpy(ys + r * out, x + r * ldx, out * sizeof(float));
        return;
    }
    broadcast_rows(ys, n, out, m->head_b, out);
    lstm_f32_gemm_canonical(n, out, m->layer_out, x, ldx, m->head_w, m->layer_out, ys, out);
    void (*activate)(unsigned, float *, size_t) = top_fp32(m) ? m->kern->activate_f32 : m->kern->activate;
    for (size_t r = 0; r < n; r++) activate(m->info.head_activation, ys + r * out, out);
}

/* One step of a checked state with `scratch` (scratch_floats, 64-byte aligned): the state's own or a
 * workspace. With `trace`, each layer's gate activations, c and h after the step go there too
 * (lstm_step_trace). */
static lstm_status step_with(lstm_state *state, const float *x, float *y, float *scratch, float *trace) {
    if (!x || !y) return LSTM_E_INVALID_ARGUMENT;
    const lstm_model *m = state->model;
    if (m->info.num_directions != 1) return LSTM_E_UNSUPPORTED;
    lstm_status st = lstm_check_input(x, m->info.input_size);
    if (st != LSTM_OK) return st;
    if (m->is_int) { /* int16x8: the integer step inside (int_float.c) */
        lstm_int_step_float(state, x, y, scratch, trace);
        return LSTM_OK;
    }
    float *d = lstm_state_data(state);
    float *gates = scratch + m->off_gates;
    size_t H4 = 4 * (size_t)m->info.hidden_size, hr = m->hr;
    const float *in = x;
    for (uint32_t l = 0; l < m->info.num_layers; l++) {
        const lstm_cell *cell = &m->cells[l][0];
        float *h = d + lstm_off_h(m, l, 0), *c = d + lstm_off_c(m, l, 0);
        float *t = trace ? trace + (size_t)l * (5 * (H4 / 4) + hr) : NULL;
        if (cell->dtype == LSTM_LAYER_FP32 && !t) { /* each gate: bias, the x terms, the h terms (kernels.h) */
            memcpy(gates, cell->b, H4 * sizeof(float));
            f32_layer_step(m, cell, in, gates, h, c, scratch);
            in = h;
            continue;
        }
        if (quantised(cell)) {
            float sx, sh;
            q8_batch bx = state_batch(m, scratch, 0, &sx), bh = state_batch(m, scratch, 1, &sh);
            quant_sums(m, cell, 0, in, 0, cell->in, 1, &bx);
            quant_sums(m, cell, 1, h, 0, hr, 1, &bh);
            quant_gates(m, cell, gates, &bx, 0, &bh, 0);
        } else if (cell->dtype == LSTM_LAYER_FP32) { /* traced: unfused, the gates copied before the cell */
            memcpy(gates, cell->b, H4 * sizeof(float));
            f32_products(m, cell, in, h, gates);
        } else {
            memcpy(gates, cell->b, H4 * sizeof(float));
            add_input_part(m, cell, in, gates, scratch);
            add_hidden_part(m, cell, h, gates, scratch);
        }
        /* the trace's gates: the pre-activations through the layer's own activation functions, the ones its
         * cell runs (the fp32 cell never forms them as floats: elementwise_cell_f32.h) */
        if (t) memcpy(t, gates, H4 * sizeof(float));
        finish_cell(m, cell, gates, h, c, scratch);
        if (t) {
            void (*act)(unsigned, float *, size_t) =
                cell->dtype == LSTM_LAYER_FP32 ? m->kern->activate_f32 : m->kern->activate;
            act(LSTM_ACT_SIGMOID, t, H4 / 2);
            act(LSTM_ACT_TANH, t + H4 / 2, H4 / 4);
            act(LSTM_ACT_SIGMOID, t + 3 * (H4 / 4), H4 / 4);
            memcpy(t + H4, c, (H4 / 4) * sizeof(float));
            memcpy(t + H4 + H4 / 4, h, hr * sizeof(float));
        }
        in = h;
    }
    output_rows(m, in, hr, 1, y);
    return LSTM_OK;
}

size_t lstm_trace_floats(const lstm_model *m) {
    if (!m || m->magic != LSTM_MODEL_MAGIC) return 0;
    return (size_t)m->info.num_layers * (5 * (size_t)m->info.hidden_size + m->hr);
}

lstm_status lstm_step_trace(lstm_state *state, const float *x, float *y, float *trace) {
    lstm_status st = lstm_check_state(state);
    if (st != LSTM_OK) return st;
    if (!trace) return LSTM_E_INVALID_ARGUMENT;
    float *scratch = lstm_state_scratch(state);
    if (!scratch) return LSTM_E_BUFFER_TOO_SMALL;
    return step_with(state, x, y, scratch, trace);
}

lstm_status lstm_step(lstm_state *state, const float *x, float *y) {
    lstm_status st = lstm_check_state(state);
    if (st != LSTM_OK) return st;
    float *scratch = lstm_state_scratch(state);
    if (!scratch) return LSTM_E_BUFFER_TOO_SMALL; /* a compact state: lstm_step_ws or lstm_step_many */
    return step_with(state, x, y, scratch, NULL);
}

lstm_status lstm_step_ws(lstm_state *state, const float *x, float *y, void *work, size_t work_len) {
    lstm_status st = lstm_check_state(state);
    if (st != LSTM_OK) return st;
    if (!work || work_len < lstm_scratch_bytes(state->model)) return LSTM_E_BUFFER_TOO_SMALL;
    return step_with(state, x, y, (float *)lstm_align_up(work, LSTM_ALIGN), NULL);
}

/* ---- whole sequences -------------------------------------------------------------------------------- */

/* Extra floats a bidirectional run needs for its own zero-started h and c. */
static size_t run_extra_floats(const lstm_model *m) {
    return m->info.num_directions == 2 ? lstm_r16(m->hr) + lstm_r16(m->info.hidden_size) : 0;
}
static size_t widest_input(const lstm_model *m) {
    return m->info.input_size > m->layer_out ? m->info.input_size : m->layer_out;
}
/* Floats per step of the area that holds the inputs of a layer's input projection in another form: for
 * int8-dynamic (int8-a16) layers their int8 (int16) copies [r4(widest input)]; for int8 (float activations)
 * layers whose input width is not a multiple of 4, a copy zero-padded to r4(in) columns (the blocked W_ih's). */
static size_t run_q_floats(const lstm_model *m) {
    size_t f = lstm_r4(widest_input(m)) * q_bytes(m) / 4;
    for (uint32_t l = 0; l < m->info.num_layers; l++)
        for (uint32_t d = 0; d < m->info.num_directions; d++) {
            const lstm_cell *c = &m->cells[l][d];
            if (c->dtype == LSTM_LAYER_INT8 && lstm_r4(c->in) != c->in && lstm_r4(c->in) > f) f = lstm_r4(c->in);
        }
    return f;
}
/* Per step: gates [4H], two layer outputs [layer_out], and for int8-dynamic (int8-a16) layers the int32
 * (int64) sums [4H], the quantised inputs or int8 layers' padded inputs (run_q_floats) and a scale. */
static size_t run_floats_per_step(const lstm_model *m) {
    return (4 + 4 * acc_words(m)) * (size_t)m->info.hidden_size + 2 * (size_t)m->layer_out + run_q_floats(m) + 1;
}

/* Floats of a run workspace besides the per-step part: one step's scratch, a bidirectional run's own h
 * and c, and room for the 16-float rounding of each part. */
static size_t run_fixed_floats(const lstm_model *m) {
    return lstm_r16(m->scratch_floats) + 96 + run_extra_floats(m);
}

size_t lstm_run_workspace_size(const lstm_model *m, size_t steps) {
    if (!m || m->magic != LSTM_MODEL_MAGIC || steps == 0) return 0;
    if (steps > (SIZE_MAX / 8 - 4096) / run_floats_per_step(m)) return SIZE_MAX; /* cannot exist */
    return (LSTM_ALIGN - 1) + (steps * run_floats_per_step(m) + run_fixed_floats(m)) * sizeof(float);
}

/* Steps per chunk a workspace of `len` bytes allows (0: none). */
static size_t run_chunk(const lstm_model *m, size_t len) {
    size_t fixed = (LSTM_ALIGN - 1) + run_fixed_floats(m) * sizeof(float);
    return len <= fixed ? 0 : (len - fixed) / (run_floats_per_step(m) * sizeof(float));
}

/* One direction of one layer over k steps: X[k][ldx] in, Y[t][d*hr ...] out, h and c carried. */
static void run_cell(const lstm_model *m, const lstm_cell *cell, uint32_t d, const float *x, size_t ldx,
                     size_t k, float *g, float *y, float *h, float *c, float *scratch, const q8_batch *qx) {
    size_t H4 = 4 * (size_t)m->info.hidden_size, hr = m->hr;
    int dynamic = quantised(cell);
    /* the input projection of all steps in one pass over W_ih */
    if (dynamic) {
        quant_sums(m, cell, 0, x, ldx, cell->in, k, qx);
    } else {
        broadcast_rows(g, k, H4, cell->b, H4);
        if (cell->dtype == LSTM_LAYER_FP32) {
            m->kern->f32_gemm(cell->w, H4, cell->ld, 0, cell->in, k, x, ldx, g, H4);
        } else { /* int8: gemm_f32 gives each step the bits of add_input_part; inputs padded with zeros to
                  * r4(in) columns (in qx's int8 area, run_q_floats) unless in is a multiple of 4 */
            size_t in = cell->in, in4 = lstm_r4(in);
            const float *xp = x;
            size_t ldp = ldx;
            if (in4 != in) {
                float *pad = (float *)(void *)qx->q;
                for (size_t t = 0; t < k; t++) {
                    memcpy(pad + t * in4, x + t * ldx, in * sizeof(float));
                    memset(pad + t * in4 + in, 0, (in4 - in) * sizeof(float));
                }
                xp = pad;
                ldp = in4;
            }
            m->kern->gemm_f32(cell->wq, H4, cell->gx + cell->gh, 0, in4 / 4, k, xp, ldp, cell->wscale, g, H4);
        }
    }
    float sh;
    q8_batch qh = state_batch(m, scratch, 1, &sh);
    for (size_t s = 0; s < k; s++) {
        size_t t = d ? k - 1 - s : s;
        float *gates = g + t * H4;
        if (cell->dtype == LSTM_LAYER_FP32) {
            f32_layer_step(m, cell, NULL, gates, h, c, scratch); /* the W_ih x terms are in gates already */
        } else {
            if (dynamic) {
                quant_sums(m, cell, 1, h, 0, hr, 1, &qh);
                quant_gates(m, cell, gates, qx, t, &qh, 0);
            } else {
                add_hidden_part(m, cell, h, gates, scratch);
            }
            finish_cell(m, cell, gates, h, c, scratch);
        }
        memcpy(y + t * m->layer_out + d * hr, h, hr * sizeof(float));
    }
}

/* k steps through every layer, layer by layer, then the head. */
static void run_chunk_layers(lstm_state *state, const float *xs, size_t k, float *ys, float *work) {
    const lstm_model *m = state->model;
    float *data = lstm_state_data(state), *scratch = work;
    size_t H = m->info.hidden_size, lo = m->layer_out;
    float *g = work + lstm_r16(m->scratch_floats), *buf[2];
    buf[0] = g + lstm_r16(k * 4 * H);
    buf[1] = buf[0] + lstm_r16(k * lo);
    q8_batch qx;
    qx.acc = (int32_t *)(void *)(buf[1] + lstm_r16(k * lo));
    qx.scale = (float *)(void *)(qx.acc + lstm_r16(k * 4 * H) * acc_words(m));
    qx.q = (int8_t *)(void *)(qx.scale + lstm_r16(k));
    float *own_h = (float *)(void *)qx.q + lstm_r16(k * run_q_floats(m));
    float *own_c = own_h + lstm_r16(m->hr);
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
            run_cell(m, &m->cells[l][d], d, x, ldx, k, g, y, h, c, scratch, &qx);
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
    st = lstm_check_input(xs, steps * in);
    if (st != LSTM_OK) return st;
    size_t k = work ? run_chunk(m, work_len) : 0;
    if (m->is_int) { /* int16x8: step by step, with the workspace's scratch when there is one */
        float *scratch = k ? (float *)lstm_align_up(work, LSTM_ALIGN) : lstm_state_scratch(state);
        if (!scratch) return LSTM_E_BUFFER_TOO_SMALL; /* a compact state without a workspace */
        for (size_t t = 0; t < steps; t++) lstm_int_step_float(state, xs + t * in, ys + t * out, scratch, NULL);
        return LSTM_OK;
    }
    if (m->info.num_directions == 2) {
        if (k < steps) return LSTM_E_BUFFER_TOO_SMALL;
        run_chunk_layers(state, xs, steps, ys, (float *)lstm_align_up(work, LSTM_ALIGN));
        return LSTM_OK;
    }
    if (k == 0) { /* no workspace for a chunk: step by step with the state's own scratch */
        float *scratch = lstm_state_scratch(state);
        if (!scratch) return LSTM_E_BUFFER_TOO_SMALL; /* a compact state has none */
        for (size_t t = 0; t < steps; t++) step_with(state, xs + t * in, ys + t * out, scratch, NULL);
        return LSTM_OK;
    }
    for (size_t t0 = 0; t0 < steps; t0 += k) {
        size_t n = steps - t0 < k ? steps - t0 : k;
        run_chunk_layers(state, xs + t0 * in, n, ys + t0 * out, (float *)lstm_align_up(work, LSTM_ALIGN));
    }
    return LSTM_OK;
}

/* ---- many streams ----------------------------------------------------------------------------------- */

/* Per stream: [x; h] [r4(widest input) + r4(Hr)] (int8 layers pad both parts to multiples of 4), gates
 * [4H], the two parts' int32 (int8-a16: int64) sums [2][4H], an int8 (int16) copy, two scales. */
static size_t many_floats_per_stream(const lstm_model *m) {
    return lstm_r4(widest_input(m)) + lstm_r4(m->hr) + (4 + 8 * acc_words(m)) * (size_t)m->info.hidden_size +
           lstm_r4(m->q_width) * q_bytes(m) / 4 + 2;
}
/* Room for the 16-float rounding of the step_many workspace's parts (two more for int64 sums). */
static size_t many_fixed_floats(const lstm_model *m) { return 112 + (acc_words(m) > 1 ? 32 : 0); }

size_t lstm_step_many_workspace_size(const lstm_model *m, size_t n) {
    if (!m || m->magic != LSTM_MODEL_MAGIC || n == 0) return 0;
    if (n > (SIZE_MAX / 8 - 4096) / many_floats_per_stream(m)) return SIZE_MAX;
    return (LSTM_ALIGN - 1) + (n * many_floats_per_stream(m) + many_fixed_floats(m) + lstm_r16(m->scratch_floats)) *
                                  sizeof(float);
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
    lstm_status st = lstm_check_input(xs, n * in0);
    if (st != LSTM_OK) return st;
    size_t ld = lstm_r4(widest_input(m)) + lstm_r4(hr);
    float *scratch = (float *)lstm_align_up(work, LSTM_ALIGN); /* one step's scratch, reused stream by stream */
    if (m->is_int) { /* int16x8: the integer step of each stream in turn (the same bits as lstm_step) */
        for (size_t i = 0; i < n; i++)
            lstm_int_step_float(states[i], xs + i * in0, ys + i * m->info.output_size, scratch, NULL);
        return LSTM_OK;
    }
    float *xh = scratch + lstm_r16(m->scratch_floats), *g = xh + lstm_r16(n * ld);
    q8_batch qx, qh; /* the two parts' sums are both kept until the gates are formed */
    qx.acc = (int32_t *)(void *)(g + lstm_r16(n * H4));
    qh.acc = qx.acc + lstm_r16(n * H4) * acc_words(m);
    qx.scale = (float *)(void *)(qh.acc + lstm_r16(n * H4) * acc_words(m));
    qh.scale = qx.scale + lstm_r16(n);
    qx.q = qh.q = (int8_t *)(void *)(qh.scale + lstm_r16(n));
    for (uint32_t l = 0; l < m->info.num_layers; l++) {
        const lstm_cell *cell = &m->cells[l][0];
        int q8f = cell->dtype == LSTM_LAYER_INT8;
        size_t hoff = q8f ? lstm_r4(cell->in) : cell->in; /* int8: [x, 0 | h, 0] as the blocked W's columns */
        for (size_t i = 0; i < n; i++) { /* gather [x; h] of every stream */
            float *d = lstm_state_data(states[i]), *row = xh + i * ld;
            const float *x = l == 0 ? xs + i * in0 : d + lstm_off_h(m, l - 1, 0);
            memcpy(row, x, cell->in * sizeof(float));
            memcpy(row + hoff, d + lstm_off_h(m, l, 0), hr * sizeof(float));
            if (q8f) {
                memset(row + cell->in, 0, (hoff - cell->in) * sizeof(float));
                memset(row + hoff + hr, 0, (lstm_r4(hr) - hr) * sizeof(float));
            }
        }
        if (quantised(cell)) {
            quant_sums(m, cell, 0, xh, ld, cell->in, n, &qx);
            quant_sums(m, cell, 1, xh + cell->in, ld, hr, n, &qh); /* the gates: stream by stream below */
        } else if (cell->dtype == LSTM_LAYER_FP32) {
            broadcast_rows(g, n, H4, cell->b, H4); /* the column split of lstm_step: [0, in), then the rest */
            m->kern->f32_gemm(cell->w, H4, cell->ld, 0, cell->in, n, xh, ld, g, H4);
            m->kern->f32_gemm(cell->w, H4, cell->ld, cell->in, cell->ld, n, xh + cell->in, ld, g, H4);
        } else {
            /* float activations: both parts for all streams, each in one pass over its columns (gemm_f32:
             * the bits of add_input_part then add_hidden_part in lstm_step) */
            size_t groups = cell->gx + cell->gh;
            broadcast_rows(g, n, H4, cell->b, H4);
            m->kern->gemm_f32(cell->wq, H4, groups, 0, hoff / 4, n, xh, ld, cell->wscale, g, H4);
            m->kern->gemm_f32(cell->wq, H4, groups, cell->gx, cell->gx + lstm_r4(hr) / 4, n, xh + hoff, ld,
                              cell->wscale + H4, g, H4);
        }
        for (size_t i = 0; i < n; i++) { /* a quantised layer's gates formed right before its cell reads them */
            float *d = lstm_state_data(states[i]);
            if (quantised(cell)) quant_gates(m, cell, g + i * H4, &qx, i, &qh, i);
            finish_cell(m, cell, g + i * H4, d + lstm_off_h(m, l, 0), d + lstm_off_c(m, l, 0), scratch);
        }
    }
    uint32_t top = m->info.num_layers - 1;
    for (size_t i = 0; i < n; i++) /* top h of every stream, gathered for the head */
        memcpy(xh + i * hr, lstm_state_data(states[i]) + lstm_off_h(m, top, 0), hr * sizeof(float));
    output_rows(m, xh, hr, n, ys);
    return LSTM_OK;
}
