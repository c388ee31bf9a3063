/* int_float.c - the float entry points on int16x8 models (docs/int16x8.md, "The float entry points"):
 * x quantised to int16 with inv_input_scale, the integer step of int_step.c, y = yq * output_scale; the
 * trace in real units. Kept apart from int_step.c, which has no float operation at all. */
#include "elementwise.h"
#include "lstm_format.h"
#include "lstm_internal.h"

/* q = clamp(round_half_even(x * inv_input_scale), -32767, 32767), every operation rounded to float (the
 * same bits on x87: LSTM_R; the clamp first, so the rounding trick sees |v| <= 32767, and infinity from a
 * huge x times a large inverse scale clamps too). */
static void quantize_input(const lstm_model *m, const float *x, int16_t *q) {
    const float inv = m->io_scales[LSTM_IO_INV_INPUT_SCALE], lim = (float)LSTM_Q16_MAX;
    for (size_t i = 0; i < m->info.input_size; i++) {
        float v = LSTM_R(x[i] * inv);
        v = v > lim ? lim : v < -lim ? -lim : v;
        q[i] = (int16_t)(int32_t)LSTM_R(LSTM_R(v + LSTM_ROUND_MAGIC) - LSTM_ROUND_MAGIC);
    }
}

/* Layer l's part of the trace: gates and h as q / 2^15, c as c / 2^20 (powers of two: exact scalings). */
static void trace_layer(const lstm_model *m, uint32_t l, const int32_t *data, const lstm_int_scratch *sc,
                        float *trace) {
    const float q15 = 1.0f / 32768.0f, q20 = 1.0f / 1048576.0f;
    size_t H = m->info.hidden_size;
    float *t = trace + (size_t)l * (5 * H + m->hr);
    const int32_t *h = data + lstm_off_h(m, l, 0), *c = data + lstm_off_c(m, l, 0);
    for (size_t r = 0; r < 4 * H; r++) t[r] = LSTM_R((float)sc->gq[r] * q15);
    for (size_t u = 0; u < H; u++) t[4 * H + u] = LSTM_R(LSTM_R((float)c[u]) * q20);
    for (size_t u = 0; u < H; u++) t[5 * H + u] = LSTM_R((float)h[u] * q15);
}

void lstm_int_step_float(lstm_state *state, const float *x, float *y, float *scratch, float *trace) {
    const lstm_model *m = state->model;
    lstm_int_scratch sc = lstm_int_scratch_at(m, scratch);
    int32_t *data = (int32_t *)(void *)lstm_state_data(state);
    quantize_input(m, x, sc.xq);
    lstm_int_load_input(m, sc.xq, &sc);
    for (uint32_t l = 0; l < m->info.num_layers; l++) {
        lstm_int_layer(m, l, data, &sc);
        if (trace) trace_layer(m, l, data, &sc, trace);
    }
    lstm_int_head(m, &sc, sc.yq);
    const float os = m->io_scales[LSTM_IO_OUTPUT_SCALE];
    for (size_t j = 0; j < m->info.output_size; j++) y[j] = LSTM_R((float)sc.yq[j] * os);
}

lstm_status lstm_model_int_scales(const lstm_model *model, float *input_scale, float *output_scale) {
    if (!model || model->magic != LSTM_MODEL_MAGIC || !input_scale || !output_scale) return LSTM_E_INVALID_ARGUMENT;
    if (!model->is_int) return LSTM_E_UNSUPPORTED;
    *input_scale = model->io_scales[LSTM_IO_INPUT_SCALE];
    *output_scale = model->io_scales[LSTM_IO_OUTPUT_SCALE];
    return LSTM_OK;
}
