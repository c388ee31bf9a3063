/* test_api.c - the API's contract around the numbers: statuses for every kind of wrong call (NULL,
 * undersized buffers, bad or foreign states, non-finite input, misaligned data), the state left unchanged
 * on error, snapshots, caller-memory models, and no allocation on the hot paths. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_count.h"
#include "lstm_format.h"
#include "testlib.h"

/* in, H, P, layers, dirs, head, activation, seed, scale */
static const net_spec SPEC_A = {5, 8, 3, 2, 1, 3, LSTM_ACT_SOFTMAX, 31, 0.5f};
static const net_spec SPEC_B = {5, 8, 3, 2, 1, 3, LSTM_ACT_SOFTMAX, 32, 0.5f}; /* A's shape, other weights */
static const net_spec SPEC_C = {5, 6, 0, 1, 1, 3, LSTM_ACT_SOFTMAX, 33, 0.5f}; /* another shape */
static const net_spec SPEC_BI = {5, 6, 0, 2, 2, 2, LSTM_ACT_SIGMOID, 34, 0.5f}; /* bidirectional */
#define IN 5                                                                    /* input size of them all */

static unsigned char *copy_of(const void *p, size_t n) {
    unsigned char *c = (unsigned char *)xmalloc(n);
    memcpy(c, p, n);
    return c;
}

static int unchanged(const void *now, const unsigned char *before, size_t n) { return memcmp(now, before, n) == 0; }

static void *align_to(void *p, size_t a) { return (void *)(((uintptr_t)p + a - 1) / a * a); }

static void fill_floats(float *v, size_t n, float value) {
    for (size_t i = 0; i < n; i++) v[i] = value;
}

/* ---- status strings --------------------------------------------------------------------------------- */

static void test_status_strings(void) {
    for (int a = LSTM_OK; a <= LSTM_E_OUT_OF_MEMORY; a++) {
        const char *s = lstm_status_str((lstm_status)a);
        CHECK(s != NULL && s[0] != '\0');
        for (int b = LSTM_OK; b < a; b++) CHECK(s != NULL && strcmp(s, lstm_status_str((lstm_status)b)) != 0);
    }
    const int unknown[] = {LSTM_E_OUT_OF_MEMORY + 1, 99, 12345, INT_MAX};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        const char *s = lstm_status_str((lstm_status)unknown[i]);
        CHECK(s != NULL && s[0] != '\0');
    }
}

/* ---- NULL arguments --------------------------------------------------------------------------------- */

static void test_null_arguments(void) {
    tmodel t;
    if (!tmodel_open(&t, &SPEC_A)) return;
    lstm_model *m = t.m, *m2 = (lstm_model *)&t; /* m2: a sentinel that must stay as it is */
    lstm_model_info info;
    size_t len, mem_size = lstm_model_mem_size();
    void *buf, *buf2, *mem_raw = xmalloc(mem_size + 16), *mem = align_to(mem_raw, 16);
    lstm_state *s = new_state(m, &buf, &len), *s2 = new_state(m, &buf2, NULL), *sentinel = s2;
    float x[3 * IN] = {0}, y[3 * 3];
    size_t snap_len = lstm_snapshot_size(m), work_len = lstm_step_many_workspace_size(m, 2);
    unsigned char *snap = (unsigned char *)xmalloc(snap_len), *work = (unsigned char *)xmalloc(work_len);
    CHECK_OK(lstm_state_snapshot(s, snap, snap_len));
    unsigned char *before = copy_of(buf, len);

    CHECK_STATUS(lstm_model_open(NULL, t.len, &m2), LSTM_E_INVALID_ARGUMENT);
    CHECK_STATUS(lstm_model_open(t.bytes, t.len, NULL), LSTM_E_INVALID_ARGUMENT);
    CHECK_STATUS(lstm_model_init(NULL, mem_size, t.bytes, t.len, &m2), LSTM_E_INVALID_ARGUMENT);
    CHECK_STATUS(lstm_model_init(mem, mem_size, NULL, t.len, &m2), LSTM_E_INVALID_ARGUMENT);
    CHECK_STATUS(lstm_model_init(mem, mem_size, t.bytes, t.len, NULL), LSTM_E_INVALID_ARGUMENT);
    CHECK(m2 == (lstm_model *)&t);
    CHECK_STATUS(lstm_model_get_info(NULL, &info), LSTM_E_INVALID_ARGUMENT);
    CHECK_STATUS(lstm_model_get_info(m, NULL), LSTM_E_INVALID_ARGUMENT);
    lstm_model_close(NULL);

    CHECK(lstm_state_size(NULL) == 0);
    CHECK_STATUS(lstm_state_init(NULL, buf2, len, &s2), LSTM_E_INVALID_ARGUMENT);
    CHECK_STATUS(lstm_state_init(m, NULL, len, &s2), LSTM_E_INVALID_ARGUMENT);
    CHECK_STATUS(lstm_state_init(m, buf2, len, NULL), LSTM_E_INVALID_ARGUMENT);
    CHECK(s2 == sentinel);
    CHECK_STATUS(lstm_state_reset(NULL), LSTM_E_INVALID_ARGUMENT);

    CHECK_STATUS(lstm_step(NULL, x, y), LSTM_E_INVALID_ARGUMENT);
    CHECK_STATUS(lstm_step(s, NULL, y), LSTM_E_INVALID_ARGUMENT);
    CHECK_STATUS(lstm_step(s, x, NULL), LSTM_E_INVALID_ARGUMENT);
    CHECK_STATUS(lstm_run(NULL, x, 3, y, NULL, 0), LSTM_E_INVALID_ARGUMENT);
    CHECK_STATUS(lstm_run(s, NULL, 3, y, NULL, 0), LSTM_E_INVALID_ARGUMENT);
    CHECK_STATUS(lstm_run(s, x, 3, NULL, NULL, 0), LSTM_E_INVALID_ARGUMENT);

    lstm_state *pair[2] = {s, s2}, *with_null[2] = {s, NULL};
    CHECK_STATUS(lstm_step_many(NULL, pair, 2, x, y, work, work_len), LSTM_E_INVALID_ARGUMENT);
    CHECK_STATUS(lstm_step_many(m, NULL, 2, x, y, work, work_len), LSTM_E_INVALID_ARGUMENT);
    CHECK_STATUS(lstm_step_many(m, pair, 2, NULL, y, work, work_len), LSTM_E_INVALID_ARGUMENT);
    CHECK_STATUS(lstm_step_many(m, pair, 2, x, NULL, work, work_len), LSTM_E_INVALID_ARGUMENT);
    CHECK_STATUS(lstm_step_many(m, with_null, 2, x, y, work, work_len), LSTM_E_INVALID_ARGUMENT);

    CHECK_STATUS(lstm_state_snapshot(NULL, snap, snap_len), LSTM_E_INVALID_ARGUMENT);
    CHECK_STATUS(lstm_state_snapshot(s, NULL, snap_len), LSTM_E_INVALID_ARGUMENT);
    CHECK_STATUS(lstm_state_restore(NULL, snap, snap_len), LSTM_E_INVALID_ARGUMENT);
    CHECK_STATUS(lstm_state_restore(s, NULL, snap_len), LSTM_E_INVALID_ARGUMENT);
    CHECK(unchanged(buf, before, len));

    free(before);
    free(snap);
    free(work);
    free(mem_raw);
    free(buf);
    free(buf2);
    tmodel_close(&t);
}

/* ---- states that are not states --------------------------------------------------------------------- */

/* Every call taking a state refuses `bogus` with LSTM_E_BAD_STATE. */
static void check_bad_state(tmodel *t, lstm_state *bogus, const unsigned char *good_snap) {
    float x[3 * IN] = {0.5f}, y[3 * 3];
    size_t snap_len = lstm_snapshot_size(t->m), work_len = lstm_step_many_workspace_size(t->m, 1);
    unsigned char *snap = (unsigned char *)xmalloc(snap_len), *work = (unsigned char *)xmalloc(work_len);
    CHECK_STATUS(lstm_state_reset(bogus), LSTM_E_BAD_STATE);
    CHECK_STATUS(lstm_step(bogus, x, y), LSTM_E_BAD_STATE);
    CHECK_STATUS(lstm_run(bogus, x, 3, y, NULL, 0), LSTM_E_BAD_STATE);
    CHECK_STATUS(lstm_state_snapshot(bogus, snap, snap_len), LSTM_E_BAD_STATE);
    CHECK_STATUS(lstm_state_restore(bogus, good_snap, snap_len), LSTM_E_BAD_STATE);
    CHECK_STATUS(lstm_step_many(t->m, &bogus, 1, x, y, work, work_len), LSTM_E_BAD_STATE);
    free(snap);
    free(work);
}

static void test_bad_state(void) {
    tmodel t;
    if (!tmodel_open(&t, &SPEC_A)) return;
    size_t len, snap_len = lstm_snapshot_size(t.m);
    void *buf;
    lstm_state *s = new_state(t.m, &buf, &len);
    unsigned char *snap = (unsigned char *)xmalloc(snap_len);
    CHECK_OK(lstm_state_snapshot(s, snap, snap_len));
    /* never initialised: buffers of zeros and of a pattern, at a well aligned address */
    const int fills[] = {0x00, 0xa5, 0xff};
    unsigned char *raw = (unsigned char *)xmalloc(len + 64);
    for (size_t i = 0; i < sizeof fills / sizeof fills[0]; i++) {
        memset(raw, fills[i], len + 64);
        check_bad_state(&t, (lstm_state *)align_to(raw, 64), snap);
    }
    /* initialised, then overwritten */
    for (size_t i = 0; i < sizeof fills / sizeof fills[0]; i++) {
        CHECK_OK(lstm_state_init(t.m, buf, len, &s));
        memset(buf, fills[i], len);
        check_bad_state(&t, s, snap);
    }
    free(raw);
    free(snap);
    free(buf);
    tmodel_close(&t);
}

/* A state buffer may have any alignment. */
static void test_state_any_alignment(void) {
    tmodel t;
    if (!tmodel_open(&t, &SPEC_A)) return;
    size_t len = lstm_state_size(t.m), out = t.n.output_size, steps = 20;
    float *xs = random_inputs(41, steps, IN, 1.0f);
    float *want = (float *)xmalloc(steps * out * sizeof(float)), *ys = (float *)xmalloc(steps * out * sizeof(float));
    unsigned char *raw = (unsigned char *)xmalloc(len + 64), *base = (unsigned char *)align_to(raw, 64);
    for (size_t off = 0; off < 8; off++) {
        lstm_state *s = NULL;
        CHECK_OK(lstm_state_init(t.m, base + off, len, &s));
        if (!s) continue;
        for (size_t i = 0; i < steps; i++) CHECK_OK(lstm_step(s, xs + i * IN, (off ? ys : want) + i * out));
        if (off) CHECK(memcmp(ys, want, steps * out * sizeof(float)) == 0);
    }
    free(raw);
    free(xs);
    free(want);
    free(ys);
    tmodel_close(&t);
}

/* ---- undersized buffers ----------------------------------------------------------------------------- */

static void test_state_init_too_small(void) {
    tmodel t;
    if (!tmodel_open(&t, &SPEC_A)) return;
    size_t len = lstm_state_size(t.m);
    unsigned char *buf = (unsigned char *)xmalloc(len);
    lstm_state *s = (lstm_state *)&t;
    CHECK(len > 0);
    memset(buf, 0x5a, len);
    unsigned char *before = copy_of(buf, len);
    CHECK_STATUS(lstm_state_init(t.m, buf, len - 1, &s), LSTM_E_BUFFER_TOO_SMALL);
    CHECK_STATUS(lstm_state_init(t.m, buf, 0, &s), LSTM_E_BUFFER_TOO_SMALL);
    CHECK(s == (lstm_state *)&t && unchanged(buf, before, len));
    free(before);
    free(buf);
    tmodel_close(&t);
}

static void test_snapshot_too_small(void) {
    tmodel t;
    if (!tmodel_open(&t, &SPEC_A)) return;
    void *buf;
    lstm_state *s = new_state(t.m, &buf, NULL);
    size_t snap_len = lstm_snapshot_size(t.m);
    unsigned char *snap = (unsigned char *)xmalloc(snap_len);
    memset(snap, 0x5a, snap_len);
    unsigned char *before = copy_of(snap, snap_len);
    CHECK_STATUS(lstm_state_snapshot(s, snap, snap_len - 1), LSTM_E_BUFFER_TOO_SMALL);
    CHECK_STATUS(lstm_state_snapshot(s, snap, 0), LSTM_E_BUFFER_TOO_SMALL);
    CHECK(unchanged(snap, before, snap_len));
    free(before);
    free(snap);
    free(buf);
    tmodel_close(&t);
}

static void test_step_many_workspace_too_small(void) {
    tmodel t;
    if (!tmodel_open(&t, &SPEC_A)) return;
    size_t len, out = t.n.output_size;
    void *bufs[3];
    lstm_state *s[3];
    unsigned char *before[3];
    float xs[3 * IN], ys[3 * 3], ys_before[3 * 3];
    fill_floats(xs, 3 * IN, 0.25f);
    fill_floats(ys, 3 * out, 7.0f);
    memcpy(ys_before, ys, sizeof ys);
    for (int i = 0; i < 3; i++) {
        s[i] = new_state(t.m, &bufs[i], &len);
        CHECK_OK(lstm_step(s[i], xs, ys_before)); /* some history */
        before[i] = copy_of(bufs[i], len);
    }
    fill_floats(ys_before, 3 * out, 7.0f);
    size_t need = lstm_step_many_workspace_size(t.m, 3);
    unsigned char *work = (unsigned char *)xmalloc(need);
    CHECK_STATUS(lstm_step_many(t.m, s, 3, xs, ys, work, need - 1), LSTM_E_BUFFER_TOO_SMALL);
    CHECK_STATUS(lstm_step_many(t.m, s, 3, xs, ys, work, lstm_step_many_workspace_size(t.m, 2)),
                 LSTM_E_BUFFER_TOO_SMALL);
    CHECK(memcmp(ys, ys_before, sizeof ys) == 0);
    for (int i = 0; i < 3; i++) {
        CHECK(unchanged(bufs[i], before[i], len));
        free(before[i]);
        free(bufs[i]);
    }
    free(work);
    tmodel_close(&t);
}

/* A bidirectional run needs a workspace for the whole sequence. */
static void test_bidirectional_workspace_too_small(void) {
    tmodel t;
    if (!tmodel_open(&t, &SPEC_BI)) return;
    size_t T = 9, out = t.n.output_size, need = lstm_run_workspace_size(t.m, T), len;
    void *buf;
    lstm_state *s = new_state(t.m, &buf, &len);
    float *xs = random_inputs(42, T, IN, 1.0f), *ys = (float *)xmalloc(T * out * sizeof(float));
    fill_floats(ys, T * out, 7.0f);
    float *ys_before = (float *)copy_of(ys, T * out * sizeof(float));
    unsigned char *work = (unsigned char *)xmalloc(need), *before = copy_of(buf, len);
    CHECK_STATUS(lstm_run(s, xs, T, ys, NULL, 0), LSTM_E_BUFFER_TOO_SMALL);
    CHECK_STATUS(lstm_run(s, xs, T, ys, work, need - 1), LSTM_E_BUFFER_TOO_SMALL);
    CHECK_STATUS(lstm_run(s, xs, T, ys, work, lstm_run_workspace_size(t.m, T - 1)), LSTM_E_BUFFER_TOO_SMALL);
    CHECK_STATUS(lstm_run(s, xs, T, ys, work, lstm_run_workspace_size(t.m, 1)), LSTM_E_BUFFER_TOO_SMALL);
    CHECK(memcmp(ys, ys_before, T * out * sizeof(float)) == 0);
    CHECK(unchanged(buf, before, len));
    CHECK_OK(lstm_run(s, xs, T, ys, work, need));
    free(before);
    free(ys_before);
    free(work);
    free(xs);
    free(ys);
    free(buf);
    tmodel_close(&t);
}

/* ---- models in caller memory, misaligned model bytes ------------------------------------------------ */

static void test_model_init_caller_memory(void) {
    tmodel t;
    if (!tmodel_open(&t, &SPEC_A)) return;
    size_t mem_size = lstm_model_mem_size(), out = t.n.output_size;
    unsigned char *raw = (unsigned char *)xmalloc(mem_size + 32), *mem = (unsigned char *)align_to(raw, 16);
    lstm_model *m = (lstm_model *)&t;
    CHECK(mem_size > 0);
    /* one byte short: the size function said more */
    CHECK_STATUS(lstm_model_init(mem, mem_size - 1, t.bytes, t.len, &m), LSTM_E_BUFFER_TOO_SMALL);
    CHECK_STATUS(lstm_model_init(mem, 0, t.bytes, t.len, &m), LSTM_E_BUFFER_TOO_SMALL);
    CHECK(m == (lstm_model *)&t);
    /* a compile-time size (for a static array), and any alignment: malloc on 32-bit ARM and newlib gives
     * 8 bytes, a static array of unsigned char 1 */
    CHECK(mem_size == LSTM_MODEL_MEM_SIZE);
    for (size_t shift = 1; shift < 16; shift++) {
        lstm_model *shifted = NULL;
        CHECK_OK(lstm_model_init(mem + shift, mem_size, t.bytes, t.len, &shifted));
        CHECK(shifted != NULL && (unsigned char *)shifted >= mem + shift &&
              (unsigned char *)shifted + sizeof(void *) <= mem + shift + mem_size);
    }
    CHECK_OK(lstm_model_init(mem, mem_size, t.bytes, t.len, &m));
    if (m != (lstm_model *)&t) {
        /* the same numbers as the model from lstm_model_open */
        void *b1, *b2;
        lstm_state *s1 = new_state(m, &b1, NULL), *s2 = new_state(t.m, &b2, NULL);
        float *xs = random_inputs(43, 20, IN, 1.0f), y1[3], y2[3];
        for (size_t i = 0; i < 20; i++) {
            CHECK_OK(lstm_step(s1, xs + i * IN, y1));
            CHECK_OK(lstm_step(s2, xs + i * IN, y2));
            CHECK(memcmp(y1, y2, out * sizeof(float)) == 0);
        }
        free(xs);
        free(b1);
        free(b2);
    }
    free(raw);
    tmodel_close(&t);
}

static void test_misaligned_model_bytes(void) {
    tmodel t;
    if (!tmodel_open(&t, &SPEC_A)) return;
    size_t mem_size = lstm_model_mem_size();
    unsigned char *raw = (unsigned char *)xmalloc(t.len + 64), *base = (unsigned char *)align_to(raw, 16);
    unsigned char *mem_raw = (unsigned char *)xmalloc(mem_size + 16), *mem = (unsigned char *)align_to(mem_raw, 16);
    for (size_t off = 1; off < 8; off++) {
        lstm_model *m = NULL;
        memcpy(base + off, t.bytes, t.len);
        if (off % 4 != 0) {
            CHECK_STATUS(lstm_model_open(base + off, t.len, &m), LSTM_E_MISALIGNED);
            CHECK_STATUS(lstm_model_init(mem, mem_size, base + off, t.len, &m), LSTM_E_MISALIGNED);
            CHECK(m == NULL);
        } else { /* a 4-byte boundary is enough */
            CHECK_OK(lstm_model_open(base + off, t.len, &m));
            lstm_model_close(m);
        }
    }
    free(raw);
    free(mem_raw);
    tmodel_close(&t);
}

/* ---- non-finite input ------------------------------------------------------------------------------- */

static void test_nonfinite_input(void) {
    tmodel t, tb;
    if (!tmodel_open(&t, &SPEC_A)) return;
    if (!tmodel_open(&tb, &SPEC_BI)) {
        tmodel_close(&t);
        return;
    }
    const float bad[] = {NAN, INFINITY, -INFINITY};
    const size_t T = 6, positions[] = {0, 2, IN - 1};
    size_t len, many_len = lstm_step_many_workspace_size(t.m, 3), run_len = lstm_run_workspace_size(t.m, T);
    size_t bi_len = lstm_run_workspace_size(tb.m, T), bi_state_len;
    void *bufs[3], *bi_buf;
    lstm_state *s[3], *bi;
    unsigned char *before[3], *work = (unsigned char *)xmalloc(many_len + run_len + bi_len);
    float *xs = random_inputs(44, T, IN, 1.0f), *ys = (float *)xmalloc(T * 12 * sizeof(float));
    float *ys_before = (float *)xmalloc(T * 12 * sizeof(float));
    for (int i = 0; i < 3; i++) {
        s[i] = new_state(t.m, &bufs[i], &len);
        CHECK_OK(lstm_run(s[i], xs, (size_t)i + 1, ys, NULL, 0)); /* some history */
        before[i] = copy_of(bufs[i], len);
    }
    bi = new_state(tb.m, &bi_buf, &bi_state_len);
    unsigned char *bi_before = copy_of(bi_buf, bi_state_len);
    fill_floats(ys, T * 12, 7.0f);
    memcpy(ys_before, ys, T * 12 * sizeof(float));
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++)
        for (size_t p = 0; p < sizeof positions / sizeof positions[0]; p++) {
            float *x = xs + 4 * IN; /* the bad value in step 4: steps 0-3 are fine */
            float keep = x[positions[p]];
            x[positions[p]] = bad[b];
            CHECK_STATUS(lstm_step(s[0], x, ys), LSTM_E_NONFINITE_INPUT);
            CHECK_STATUS(lstm_run(s[0], xs, T, ys, NULL, 0), LSTM_E_NONFINITE_INPUT);
            CHECK_STATUS(lstm_run(s[0], xs, T, ys, work, run_len), LSTM_E_NONFINITE_INPUT);
            CHECK_STATUS(lstm_run(s[0], xs, T, ys, work, lstm_run_workspace_size(t.m, 2)), LSTM_E_NONFINITE_INPUT);
            /* three streams fed steps 2, 3 and 4: the bad value is in the third stream's input */
            CHECK_STATUS(lstm_step_many(t.m, s, 3, x - 2 * IN, ys, work, many_len), LSTM_E_NONFINITE_INPUT);
            CHECK_STATUS(lstm_run(bi, xs, T, ys, work, bi_len), LSTM_E_NONFINITE_INPUT);
            x[positions[p]] = keep;
        }
    CHECK(memcmp(ys, ys_before, T * 12 * sizeof(float)) == 0);
    for (int i = 0; i < 3; i++) {
        CHECK(unchanged(bufs[i], before[i], len));
        free(before[i]);
        free(bufs[i]);
    }
    CHECK(unchanged(bi_buf, bi_before, bi_state_len));
    free(bi_before);
    free(bi_buf);
    free(work);
    free(xs);
    free(ys);
    free(ys_before);
    tmodel_close(&t);
    tmodel_close(&tb);
}

/* ---- snapshots -------------------------------------------------------------------------------------- */

static void test_snapshot_round_trip(void) {
    tmodel t;
    if (!tmodel_open(&t, &SPEC_A)) return;
    size_t out = t.n.output_size, snap_len = lstm_snapshot_size(t.m), warm = 40, next = 30;
    float *xs = random_inputs(45, warm + next, IN, 1.0f);
    float *ys = (float *)xmalloc(warm * out * sizeof(float)), *again = (float *)xmalloc(next * out * sizeof(float));
    unsigned char *snap = (unsigned char *)xmalloc(snap_len + 10);
    void *b1, *b2;
    lstm_state *s1 = new_state(t.m, &b1, NULL), *s2 = new_state(t.m, &b2, NULL);
    CHECK_OK(lstm_run(s1, xs, warm, ys, NULL, 0));
    CHECK_OK(lstm_state_snapshot(s1, snap, snap_len + 10)); /* a bigger buffer is fine */
    CHECK_OK(lstm_run(s1, xs + warm * IN, next, ys, NULL, 0));
    /* the layout of lstm_format.h: magic, version, float count, fingerprint, floats, CRC32 */
    CHECK(memcmp(snap + LSTM_SNAP_MAGIC, LSTM_SNAPSHOT_MAGIC, 8) == 0);
    CHECK(get32(snap + LSTM_SNAP_VERSION) == LSTM_SNAPSHOT_VERSION);
    CHECK(LSTM_SNAP_HEADER_SIZE + 4 * (size_t)get32(snap + LSTM_SNAP_FLOATS) + 4 == snap_len);
    CHECK(get64(snap + LSTM_SNAP_FINGERPRINT) == get64(t.bytes + LSTM_HDR_FINGERPRINT));
    CHECK(get32(snap + snap_len - 4) == crc32_ieee(snap, snap_len - 4, 0));
    /* restored into another state, and into the same state that has moved on: the same future */
    CHECK_OK(lstm_state_restore(s2, snap, snap_len));
    CHECK_OK(lstm_run(s2, xs + warm * IN, next, again, NULL, 0));
    CHECK(memcmp(ys, again, next * out * sizeof(float)) == 0);
    CHECK_OK(lstm_state_restore(s1, snap, snap_len));
    CHECK_OK(lstm_run(s1, xs + warm * IN, next, again, NULL, 0));
    CHECK(memcmp(ys, again, next * out * sizeof(float)) == 0);
    free(xs);
    free(ys);
    free(again);
    free(snap);
    free(b1);
    free(b2);
    tmodel_close(&t);
}

static void test_snapshot_damaged(void) {
    tmodel t;
    if (!tmodel_open(&t, &SPEC_A)) return;
    size_t len, snap_len = lstm_snapshot_size(t.m);
    void *buf;
    lstm_state *s = new_state(t.m, &buf, &len);
    float *xs = random_inputs(46, 10, IN, 1.0f), ys[10 * 3];
    unsigned char *snap = (unsigned char *)xmalloc(snap_len);
    CHECK_OK(lstm_run(s, xs, 10, ys, NULL, 0));
    CHECK_OK(lstm_state_snapshot(s, snap, snap_len));
    CHECK_OK(lstm_step(s, xs, ys)); /* the state now differs from the snapshot */
    unsigned char *before = copy_of(buf, len);
    /* every single bit flip */
    int all_refused = 1;
    for (size_t bit = 0; bit < 8 * snap_len; bit++) {
        snap[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        all_refused &= lstm_state_restore(s, snap, snap_len) == LSTM_E_BAD_SNAPSHOT;
        snap[bit / 8] ^= (unsigned char)(1u << (bit % 8));
    }
    CHECK(all_refused);
    /* every truncation, in a buffer of exactly that length */
    for (size_t n = 0; n < snap_len; n++) {
        unsigned char *cut = copy_of(snap, n);
        all_refused &= lstm_state_restore(s, cut, n) == LSTM_E_BAD_SNAPSHOT;
        free(cut);
    }
    CHECK(all_refused);
    /* a NaN behind a valid CRC */
    unsigned char *forged = copy_of(snap, snap_len);
    float nan = NAN;
    memcpy(forged + LSTM_SNAP_HEADER_SIZE + 4, &nan, 4);
    put32(forged + snap_len - 4, crc32_ieee(forged, snap_len - 4, 0));
    CHECK_STATUS(lstm_state_restore(s, forged, snap_len), LSTM_E_BAD_SNAPSHOT);
    /* another version behind a valid CRC */
    memcpy(forged, snap, snap_len);
    put32(forged + LSTM_SNAP_VERSION, LSTM_SNAPSHOT_VERSION + 1);
    put32(forged + snap_len - 4, crc32_ieee(forged, snap_len - 4, 0));
    CHECK_STATUS(lstm_state_restore(s, forged, snap_len), LSTM_E_BAD_SNAPSHOT);
    CHECK(unchanged(buf, before, len));
    CHECK_OK(lstm_state_restore(s, snap, snap_len)); /* the intact snapshot still restores */
    free(forged);
    free(before);
    free(snap);
    free(xs);
    free(buf);
    tmodel_close(&t);
}

static void test_snapshot_wrong_model(void) {
    tmodel a, others[2];
    if (!tmodel_open(&a, &SPEC_A)) return;
    if (!tmodel_open(&others[0], &SPEC_B) || !tmodel_open(&others[1], &SPEC_C)) return;
    size_t len;
    void *buf;
    lstm_state *s = new_state(a.m, &buf, &len);
    float x[IN] = {0.1f, -0.2f, 0.3f, -0.4f, 0.5f}, y[3];
    CHECK_OK(lstm_step(s, x, y));
    unsigned char *before = copy_of(buf, len);
    for (int k = 0; k < 2; k++) {
        void *obuf;
        lstm_state *o = new_state(others[k].m, &obuf, NULL);
        size_t snap_len = lstm_snapshot_size(others[k].m);
        unsigned char *snap = (unsigned char *)xmalloc(snap_len);
        CHECK_OK(lstm_step(o, x, y));
        CHECK_OK(lstm_state_snapshot(o, snap, snap_len));
        CHECK_STATUS(lstm_state_restore(s, snap, snap_len), LSTM_E_WRONG_MODEL);
        free(snap);
        free(obuf);
        tmodel_close(&others[k]);
    }
    CHECK(unchanged(buf, before, len));
    free(before);
    free(buf);
    tmodel_close(&a);
}

/* lstm_step_many refuses a state of another model, before changing any stream. */
static void test_step_many_wrong_model(void) {
    tmodel a, b;
    if (!tmodel_open(&a, &SPEC_A)) return;
    if (!tmodel_open(&b, &SPEC_B)) return;
    size_t len, work_len = lstm_step_many_workspace_size(a.m, 2);
    void *abuf, *bbuf;
    lstm_state *s[2];
    s[0] = new_state(a.m, &abuf, &len);
    s[1] = new_state(b.m, &bbuf, NULL);
    float xs[2 * IN] = {0.3f, 0.1f}, ys[2 * 3];
    unsigned char *work = (unsigned char *)xmalloc(work_len), *before = copy_of(abuf, len);
    CHECK_STATUS(lstm_step_many(a.m, s, 2, xs, ys, work, work_len), LSTM_E_WRONG_MODEL);
    CHECK(unchanged(abuf, before, len));
    free(work);
    free(before);
    free(abuf);
    free(bbuf);
    tmodel_close(&a);
    tmodel_close(&b);
}

/* ---- no allocation on the hot paths ----------------------------------------------------------------- */

static void test_zero_allocations(void) {
    unsigned long n0 = alloc_count();
    tmodel t, tb;
    if (!tmodel_open(&t, &SPEC_A)) return;
    if (!tmodel_open(&tb, &SPEC_BI)) return;
    CHECK(alloc_count() > n0); /* the counter sees lstm_model_open's malloc: the interposer is active */

    const size_t T = 25, out = t.n.output_size, mem_size = lstm_model_mem_size();
    size_t run_len = lstm_run_workspace_size(t.m, 4), many_len = lstm_step_many_workspace_size(t.m, 3);
    size_t bi_len = lstm_run_workspace_size(tb.m, T), snap_len = lstm_snapshot_size(t.m), len;
    size_t bi_state_len = lstm_state_size(tb.m);
    float *xs = random_inputs(47, T, IN, 1.0f), *ys = (float *)xmalloc(T * 12 * sizeof(float));
    unsigned char *work = (unsigned char *)xmalloc(run_len + many_len + bi_len);
    unsigned char *snap = (unsigned char *)xmalloc(snap_len), *mem_raw = (unsigned char *)xmalloc(mem_size + 16);
    void *bufs[3], *bi_buf = xmalloc(bi_state_len);
    lstm_state *s[3], *bi = NULL;
    lstm_model *m = NULL;
    lstm_model_info info;
    for (int i = 0; i < 3; i++) s[i] = new_state(t.m, &bufs[i], &len);

    unsigned long n = alloc_count();
    CHECK_OK(lstm_model_init(align_to(mem_raw, 16), mem_size, t.bytes, t.len, &m));
    CHECK_OK(lstm_model_get_info(t.m, &info));
    CHECK_OK(lstm_state_init(tb.m, bi_buf, bi_state_len, &bi));
    CHECK(alloc_count() == n);
    for (size_t i = 0; i < T; i++) CHECK_OK(lstm_step(s[0], xs + i * IN, ys + i * out));
    CHECK(alloc_count() == n);
    CHECK_OK(lstm_run(s[0], xs, T, ys, NULL, 0));
    CHECK(alloc_count() == n);
    CHECK_OK(lstm_run(s[0], xs, T, ys, work, run_len));
    CHECK(alloc_count() == n);
    for (size_t i = 0; i + 3 <= T; i += 3) CHECK_OK(lstm_step_many(t.m, s, 3, xs + i * IN, ys, work, many_len));
    CHECK(alloc_count() == n);
    CHECK_OK(lstm_state_snapshot(s[1], snap, snap_len));
    CHECK_OK(lstm_state_restore(s[2], snap, snap_len));
    CHECK_OK(lstm_state_reset(s[0]));
    CHECK(alloc_count() == n);
    CHECK_OK(lstm_run(bi, xs, T, ys, work, bi_len));
    CHECK(alloc_count() == n);
    CHECK_STATUS(lstm_step(s[0], NULL, ys), LSTM_E_INVALID_ARGUMENT); /* nor on the error paths */
    CHECK(alloc_count() == n);

    for (int i = 0; i < 3; i++) free(bufs[i]);
    free(bi_buf);
    free(xs);
    free(ys);
    free(work);
    free(snap);
    free(mem_raw);
    tmodel_close(&t);
    tmodel_close(&tb);
}

int main(void) {
    run_test("status_strings", test_status_strings);
    run_test("null_arguments", test_null_arguments);
    run_test("bad_state", test_bad_state);
    run_test("state_any_alignment", test_state_any_alignment);
    run_test("state_init_too_small", test_state_init_too_small);
    run_test("snapshot_too_small", test_snapshot_too_small);
    run_test("step_many_workspace_too_small", test_step_many_workspace_too_small);
    run_test("bidirectional_workspace_too_small", test_bidirectional_workspace_too_small);
    run_test("model_init_caller_memory", test_model_init_caller_memory);
    run_test("misaligned_model_bytes", test_misaligned_model_bytes);
    run_test("nonfinite_input", test_nonfinite_input);
    run_test("snapshot_round_trip", test_snapshot_round_trip);
    run_test("snapshot_damaged", test_snapshot_damaged);
    run_test("snapshot_wrong_model", test_snapshot_wrong_model);
    run_test("step_many_wrong_model", test_step_many_wrong_model);
    run_test("zero_allocations", test_zero_allocations);
    return test_summary();
}
