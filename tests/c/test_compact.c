/* test_compact.c - compact states (issue 12): h and c after a 32-byte header, the scratch in a caller
 * workspace. Their size; lstm_step refusing them; lstm_step_ws, lstm_step_many (mixed with full states) and
 * lstm_run giving the bits of lstm_step on a full state, for fp32, int8 and int8-dynamic models with a
 * projection, with workspaces full of garbage; snapshots interchangeable between the two kinds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lstm_format.h"
#include "testlib.h"

enum { T = 23, N = 4 };

static const net_spec SPEC = {9, 21, 7, 2, 1, 3, LSTM_ACT_SOFTMAX, 41, 0.4f}; /* projection, 2 layers, head; H not a multiple of 4 */

static unsigned char *write_model(const net *n, int kind, size_t *len) {
    if (kind == 0) return net_write(n, 0, len);
    return net_write_q8(n, kind == 1 ? LSTM_LAYER_INT8 : LSTM_LAYER_INT8_DYNAMIC, len);
}

static lstm_state *new_compact(const lstm_model *m, void **buf) {
    size_t size = lstm_compact_state_size(m);
    lstm_state *s = NULL;
    *buf = xmalloc(size);
    CHECK_OK(lstm_compact_state_init(m, *buf, size, &s));
    return s;
}

/* A workspace of `len` bytes full of 0xFF (NaN bit patterns): nothing may read it before writing. */
static void *garbage(size_t len) {
    void *w = xmalloc(len);
    memset(w, 0xFF, len);
    return w;
}

static void test_size(void) {
    net n;
    net_spec spec = {40, 128, 0, 1, 1, 0, LSTM_ACT_NONE, 3, 0.3f};
    net_make(&n, &spec);
    size_t len;
    unsigned char *bytes = net_write(&n, 0, &len);
    lstm_model *m = NULL;
    CHECK_OK(lstm_model_open(bytes, len, &m));
    /* h and c of one layer of H = 128: 1024 bytes, plus the 32-byte header */
    CHECK(lstm_compact_state_size(m) == 32 + 2 * 128 * 4);
    CHECK(lstm_compact_state_size(m) < lstm_state_size(m));
    CHECK((double)lstm_compact_state_size(m) * 1e6 <= 1.1e9); /* a million streams in 1.1 GB */
    CHECK(lstm_compact_state_size(NULL) == 0 && lstm_step_workspace_size(NULL) == 0);
    /* 100,000 compact states in one block, each initialised in place */
    size_t each = lstm_compact_state_size(m), count = 100000;
    unsigned char *block = (unsigned char *)xmalloc(each * count);
    int all = 1;
    for (size_t i = 0; i < count; i++) {
        lstm_state *s = NULL;
        all &= lstm_compact_state_init(m, block + i * each, each, &s) == LSTM_OK && lstm_state_is_compact(s);
    }
    CHECK(all);
    free(block);
    /* misaligned and short buffers */
    unsigned char *buf = (unsigned char *)xmalloc(each + 16);
    lstm_state *s = NULL;
    CHECK_STATUS(lstm_compact_state_init(m, buf + 4, each, &s), LSTM_E_MISALIGNED);
    CHECK_STATUS(lstm_compact_state_init(m, buf, each - 1, &s), LSTM_E_BUFFER_TOO_SMALL);
    CHECK_STATUS(lstm_compact_state_init(m, NULL, each, &s), LSTM_E_INVALID_ARGUMENT);
    CHECK(s == NULL);
    CHECK_OK(lstm_compact_state_init(m, buf, each, &s));
    void *fb;
    lstm_state *full = new_state(m, &fb, NULL);
    CHECK(lstm_state_is_compact(s) && !lstm_state_is_compact(full) && !lstm_state_is_compact(NULL));
    free(fb), free(buf);
    lstm_model_close(m);
    free(bytes);
    net_free(&n);
}

static void test_same_bits(void) {
    for (int kind = 0; kind < 3; kind++) {
        test_context("%s", kind == 0 ? "fp32" : kind == 1 ? "int8" : "int8-dynamic");
        net n;
        net_make(&n, &SPEC);
        size_t len, in = SPEC.input_size, out = n.output_size;
        unsigned char *bytes = write_model(&n, kind, &len);
        lstm_model *m = NULL;
        CHECK_OK(lstm_model_open(bytes, len, &m));
        float *xs = random_inputs(77, T * N, in, 2.0f);
        /* the reference: full states, lstm_step; stream i gets rows t * N + i */
        float *want = (float *)xmalloc(T * N * out * sizeof(float)), *got = (float *)xmalloc(T * N * out * sizeof(float));
        void *fbuf[N];
        lstm_state *full[N];
        for (int i = 0; i < N; i++) full[i] = new_state(m, &fbuf[i], NULL);
        for (size_t t = 0; t < T; t++)
            for (int i = 0; i < N; i++) CHECK_OK(lstm_step(full[i], xs + (t * N + i) * in, want + (t * N + i) * out));

        /* lstm_step refuses a compact state and leaves it as it was */
        void *cbuf[N];
        lstm_state *comp[N];
        for (int i = 0; i < N; i++) comp[i] = new_compact(m, &cbuf[i]);
        float y[64];
        CHECK_STATUS(lstm_step(comp[0], xs, y), LSTM_E_BUFFER_TOO_SMALL);
        /* lstm_step_ws, garbage workspace */
        size_t wl = lstm_step_workspace_size(m);
        void *w = garbage(wl);
        CHECK_STATUS(lstm_step_ws(comp[0], xs, y, w, wl - 1), LSTM_E_BUFFER_TOO_SMALL);
        CHECK_STATUS(lstm_step_ws(comp[0], xs, y, NULL, wl), LSTM_E_BUFFER_TOO_SMALL);
        for (size_t t = 0; t < T; t++)
            for (int i = 0; i < N; i++) {
                memset(w, 0xFF, wl);
                CHECK_OK(lstm_step_ws(comp[i], xs + (t * N + i) * in, got + (t * N + i) * out, w, wl));
            }
        CHECK(memcmp(got, want, T * N * out * sizeof(float)) == 0);
        free(w);
        /* lstm_step_many over compact and full states mixed */
        lstm_state *mixed[N];
        void *mbuf[N];
        for (int i = 0; i < N; i++) {
            if (i % 2) mixed[i] = new_compact(m, &mbuf[i]);
            else mixed[i] = new_state(m, &mbuf[i], NULL);
        }
        wl = lstm_step_many_workspace_size(m, N);
        w = garbage(wl);
        for (size_t t = 0; t < T; t++) {
            memset(w, 0xFF, wl);
            CHECK_OK(lstm_step_many(m, mixed, N, xs + t * N * in, got + t * N * out, w, wl));
        }
        CHECK(memcmp(got, want, T * N * out * sizeof(float)) == 0);
        free(w);
        /* lstm_run on a compact state (stream 0's inputs, gathered), chunks of 5; no workspace: refused */
        float *x0 = (float *)xmalloc(T * in * sizeof(float)), *y0 = (float *)xmalloc(T * out * sizeof(float));
        for (size_t t = 0; t < T; t++) memcpy(x0 + t * in, xs + t * N * in, in * sizeof(float));
        void *rbuf;
        lstm_state *rs = new_compact(m, &rbuf);
        CHECK_STATUS(lstm_run(rs, x0, T, y0, NULL, 0), LSTM_E_BUFFER_TOO_SMALL);
        wl = lstm_run_workspace_size(m, 5);
        w = garbage(wl);
        CHECK_OK(lstm_run(rs, x0, T, y0, w, wl));
        int same = 1;
        for (size_t t = 0; t < T; t++) same &= memcmp(y0 + t * out, want + t * N * out, out * sizeof(float)) == 0;
        CHECK(same);
        free(w);
        /* snapshots: compact -> full and full -> compact, then both continue alike */
        size_t sl = lstm_snapshot_size(m);
        unsigned char *snap = (unsigned char *)xmalloc(sl), *snap2 = (unsigned char *)xmalloc(sl);
        CHECK_OK(lstm_state_snapshot(comp[1], snap, sl));
        CHECK_OK(lstm_state_snapshot(full[1], snap2, sl));
        CHECK(memcmp(snap, snap2, sl) == 0);
        CHECK_OK(lstm_state_restore(full[2], snap, sl));
        CHECK_OK(lstm_state_restore(comp[3], snap2, sl));
        float ya[64], yb[64];
        wl = lstm_step_workspace_size(m);
        w = garbage(wl);
        CHECK_OK(lstm_step(full[2], xs, ya));
        CHECK_OK(lstm_step_ws(comp[3], xs, yb, w, wl));
        CHECK(memcmp(ya, yb, out * sizeof(float)) == 0);
        CHECK_OK(lstm_state_reset(comp[3]));
        CHECK_OK(lstm_state_snapshot(comp[3], snap, sl));
        for (size_t i = LSTM_SNAP_HEADER_SIZE; i + 4 < sl; i++) CHECK(snap[i] == 0);
        free(w), free(snap), free(snap2), free(x0), free(y0), free(rbuf);
        for (int i = 0; i < N; i++) free(fbuf[i]), free(cbuf[i]), free(mbuf[i]);
        free(xs), free(want), free(got);
        lstm_model_close(m);
        free(bytes);
        net_free(&n);
    }
}

int main(void) {
    run_test("compact_state_size", test_size);
    run_test("compact_states_give_the_same_bits", test_same_bits);
    return test_summary();
}
