/* xcheck.c - see xcheck.h. No malloc, no stdio: it also runs in the Cortex-M firmwares. */
#include "xcheck.h"

#include <stdint.h>
#include <string.h>

#include "lstm.h"
#include "xcheck_fp32_data.h"
#include "xcheck_int16x8_data.h"
#include "xcheck_q8_data.h"

#define STEPS 16
#define MAX_IO 8

static unsigned char model_mem[LSTM_MODEL_MEM_SIZE];
static unsigned char fp32_state[XCHECK_FP32_MODEL_STATE_SIZE];
static unsigned char q8_state[XCHECK_Q8_MODEL_STATE_SIZE];
static unsigned char int_state[XCHECK_INT16X8_MODEL_STATE_SIZE], int_fstate[XCHECK_INT16X8_MODEL_STATE_SIZE];

/* Inputs in [-2, 2) from a 32-bit LCG: every value is an exact float (24 bits times 2^-22, minus 2). */
static float next_input(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)(*s >> 8) * (1.0f / 4194304.0f) - 2.0f;
}

static char *put_str(char *p, const char *s) {
    while (*s) *p++ = *s++;
    return p;
}

static char *put_hex(char *p, uint32_t v) {
    static const char digits[] = "0123456789abcdef";
    for (int i = 7; i >= 0; i--) *p++ = digits[(v >> (4 * i)) & 15];
    return p;
}

static char *put_hex16(char *p, uint16_t v) {
    static const char digits[] = "0123456789abcdef";
    for (int i = 3; i >= 0; i--) *p++ = digits[(v >> (4 * i)) & 15];
    return p;
}

static char *put_dec(char *p, unsigned v) {
    char tmp[12];
    int n = 0;
    do tmp[n++] = (char)('0' + v % 10); while ((v /= 10) != 0);
    while (n) *p++ = tmp[--n];
    return p;
}

static int run_model(const char *tag, const unsigned char *bytes, size_t len, unsigned char *state_buf,
                     size_t state_len, void (*emit)(const char *)) {
    char line[160], *p;
    lstm_model *m;
    lstm_state *s;
    lstm_model_info info;
    lstm_status st = lstm_model_init(model_mem, sizeof model_mem, bytes, len, &m);
    if (st == LSTM_OK) st = lstm_model_get_info(m, &info);
    if (st == LSTM_OK && (info.input_size > MAX_IO || info.output_size > MAX_IO)) st = LSTM_E_INVALID_ARGUMENT;
    if (st == LSTM_OK) st = lstm_state_init(m, state_buf, state_len, &s);
    if (st != LSTM_OK) {
        p = put_str(put_str(put_str(line, tag), ": open failed: "), lstm_status_str(st));
        *p = 0;
        emit(line);
        return 1;
    }
    uint32_t seed = 12345u;
    for (unsigned t = 0; t < STEPS; t++) {
        float x[MAX_IO], y[MAX_IO];
        for (uint32_t i = 0; i < info.input_size; i++) x[i] = next_input(&seed);
        st = lstm_step(s, x, y);
        p = put_dec(put_str(put_str(line, tag), " t="), t);
        if (st != LSTM_OK) {
            p = put_str(put_str(p, ": step failed: "), lstm_status_str(st));
            *p = 0;
            emit(line);
            lstm_model_close(m);
            return 1;
        }
        p = put_str(p, ":");
        for (uint32_t j = 0; j < info.output_size; j++) {
            uint32_t bits;
            memcpy(&bits, &y[j], 4);
            p = put_hex(put_str(p, " "), bits);
        }
        *p = 0;
        emit(line);
    }
    lstm_model_close(m);
    return 0;
}

/* Integer inputs in [-32767, 32767] from the same LCG. */
static int16_t next_input_q(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    int32_t v = (int32_t)(*s >> 16) - 32768;
    return (int16_t)(v < -32767 ? -32767 : v);
}

static int report_error(const char *tag, unsigned t, const char *what, lstm_status st, void (*emit)(const char *)) {
    char line[160], *p = put_str(line, tag);
    if (t != (unsigned)-1) p = put_dec(put_str(p, " t="), t);
    p = put_str(put_str(put_str(p, ": "), what), lstm_status_str(st));
    *p = 0;
    emit(line);
    return 1;
}

/* The int16x8 model two ways: "int16x8" lines are lstm_step_int's int16 outputs (4 hex digits each) for
 * integer inputs, "int16x8f" lines lstm_step's float outputs (bit patterns) for the float inputs of the
 * other models; a stream each. */
static int run_int_model(void (*emit)(const char *)) {
    char line[160], *p;
    lstm_model *m;
    lstm_state *si, *sf;
    lstm_model_info info;
    lstm_status st = lstm_model_init(model_mem, sizeof model_mem, xcheck_int16x8_model, XCHECK_INT16X8_MODEL_LEN, &m);
    if (st == LSTM_OK) st = lstm_model_get_info(m, &info);
    if (st == LSTM_OK && (info.input_size > MAX_IO || info.output_size > MAX_IO)) st = LSTM_E_INVALID_ARGUMENT;
    if (st == LSTM_OK) st = lstm_state_init(m, int_state, sizeof int_state, &si);
    if (st == LSTM_OK) st = lstm_state_init(m, int_fstate, sizeof int_fstate, &sf);
    if (st != LSTM_OK) return report_error("int16x8", (unsigned)-1, "open failed: ", st, emit);
    uint32_t seed = 12345u, fseed = 12345u;
    int errors = 0;
    for (unsigned t = 0; t < STEPS && !errors; t++) {
        int16_t xq[MAX_IO], yq[MAX_IO];
        for (uint32_t i = 0; i < info.input_size; i++) xq[i] = next_input_q(&seed);
        st = lstm_step_int(si, xq, yq);
        if (st != LSTM_OK) {
            errors += report_error("int16x8", t, "lstm_step_int failed: ", st, emit);
            break;
        }
        p = put_str(put_dec(put_str(line, "int16x8 t="), t), ":");
        for (uint32_t j = 0; j < info.output_size; j++) p = put_hex16(put_str(p, " "), (uint16_t)yq[j]);
        *p = 0;
        emit(line);
    }
    for (unsigned t = 0; t < STEPS && !errors; t++) {
        float x[MAX_IO], y[MAX_IO];
        for (uint32_t i = 0; i < info.input_size; i++) x[i] = next_input(&fseed);
        st = lstm_step(sf, x, y);
        if (st != LSTM_OK) {
            errors += report_error("int16x8f", t, "lstm_step failed: ", st, emit);
            break;
        }
        p = put_str(put_dec(put_str(line, "int16x8f t="), t), ":");
        for (uint32_t j = 0; j < info.output_size; j++) {
            uint32_t bits;
            memcpy(&bits, &y[j], 4);
            p = put_hex(put_str(p, " "), bits);
        }
        *p = 0;
        emit(line);
    }
    lstm_model_close(m);
    return errors;
}

int xcheck_run(void (*emit)(const char *line)) {
    int errors = 0;
    errors += run_model("fp32", xcheck_fp32_model, XCHECK_FP32_MODEL_LEN, fp32_state, sizeof fp32_state, emit);
    errors += run_model("int8dyn", xcheck_q8_model, XCHECK_Q8_MODEL_LEN, q8_state, sizeof q8_state, emit);
    errors += run_int_model(emit);
    return errors;
}
