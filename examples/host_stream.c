/* host_stream.c - stream a model over frames from stdin: the C library on a host, end to end.
 *
 *   host_stream MODEL.lstm < frames.f32 > outputs.f32
 *
 * stdin: binary float32 frames of input_size values each (native byte order); stdout: one frame of
 * output_size float32 values per input frame, in the same order. The state carries over from frame to
 * frame (one stream). Exit status 0 on success, 1 on an error (a message on stderr), 2 on bad usage.
 *
 * Build against an installed library (docs/c_library.md):
 *   cc host_stream.c $(pkg-config --cflags --libs lstm_embed) -o host_stream
 */
#include <stdio.h>
#include <stdlib.h>

#include "lstm.h"

static unsigned char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap); /* malloc's alignment (>= 8) satisfies lstm_model_open (4) */
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        unsigned char *bigger = realloc(buf, cap *= 2);
        if (!bigger) free(buf);
        buf = bigger;
    }
    if (ferror(f)) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = n;
    return buf;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s MODEL.lstm < frames.f32 > outputs.f32\n", argv[0]);
        return 2;
    }
    size_t len;
    unsigned char *bytes = read_file(argv[1], &len);
    if (!bytes) {
        perror(argv[1]);
        return 1;
    }
    lstm_model *model;
    lstm_status st = lstm_model_open(bytes, len, &model);
    if (st != LSTM_OK) {
        fprintf(stderr, "%s: %s\n", argv[1], lstm_status_str(st));
        free(bytes);
        return 1;
    }
    lstm_model_info info;
    lstm_model_get_info(model, &info);
    size_t state_len = lstm_state_size(model);
    void *state_buf = malloc(state_len);
    float *x = malloc(info.input_size * sizeof(float)), *y = malloc(info.output_size * sizeof(float));
    lstm_state *state;
    int rc = 0;
    if (!state_buf || !x || !y || lstm_state_init(model, state_buf, state_len, &state) != LSTM_OK) {
        fprintf(stderr, "out of memory\n");
        rc = 1;
    }
    unsigned long frames = 0;
    while (rc == 0 && fread(x, sizeof(float), info.input_size, stdin) == info.input_size) {
        if ((st = lstm_step(state, x, y)) != LSTM_OK) {
            fprintf(stderr, "frame %lu: %s\n", frames, lstm_status_str(st));
            rc = 1;
        } else if (fwrite(y, sizeof(float), info.output_size, stdout) != info.output_size) {
            perror("stdout");
            rc = 1;
        }
        frames++;
    }
    if (rc == 0 && ferror(stdin)) {
        perror("stdin");
        rc = 1;
    }
    if (rc == 0 && fflush(stdout) != 0) {
        perror("stdout");
        rc = 1;
    }
    free(x);
    free(y);
    free(state_buf);
    lstm_model_close(model);
    free(bytes);
    return rc;
}
