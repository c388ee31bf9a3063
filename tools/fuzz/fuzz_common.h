/*
 * fuzz_common.h - what the libFuzzer harnesses do with a model once it opened, and their oracles.
 *
 * Only the public API (lstm.h) and the file layout (lstm_format.h) are used, so the harnesses survive
 * rewrites of the core. Every violated oracle calls fuzz_fail(), which prints what went wrong and aborts:
 * libFuzzer then saves the input as a crash. Oracles:
 *   - sanitizers (ASan, UBSan with -fno-sanitize-recover=all) stay quiet;
 *   - a call that fails leaves its state(s) byte-identical (the whole state buffer is compared) and its
 *     outputs untouched;
 *   - finite inputs within LSTM_MAX_ABS_INPUT give finite outputs (with FUZZ_STRICT_LIMITS=0 only for
 *     models whose values this file's own scan finds within LSTM_MAX_ABS_WEIGHT);
 *   - lstm_run with work == NULL gives the same bits as the same number of lstm_step calls, and so does
 *     lstm_run with a workspace (whole, and in chunks of 2) on models whose layers are all int8 / int8-dynamic;
 *   - a state is always restorable from its own snapshot, and the restored state snapshots to the same
 *     bytes and steps to the same bits;
 *   - bidirectional models: lstm_step and lstm_step_many say LSTM_E_UNSUPPORTED, lstm_run without a
 *     big-enough workspace says LSTM_E_BUFFER_TOO_SMALL, lstm_run leaves the state's h and c alone, and
 *     two runs over the same sequence agree.
 *
 * FUZZ_STRICT_LIMITS (default 1, the lstm.h contract): also require that a model which opened has every
 * value within LSTM_MAX_ABS_WEIGHT, that inputs beyond LSTM_MAX_ABS_INPUT are refused with
 * LSTM_E_INPUT_RANGE, and that every snapshot the core accepts steps to finite outputs. 0 skips those
 * checks (for a core that does not enforce the limits yet).
 */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lstm.h"
#include "lstm_format.h"

#ifndef FUZZ_STRICT_LIMITS
#define FUZZ_STRICT_LIMITS 1
#endif

/* Models whose buffers would exceed these are opened and closed but not run (keeps RSS bounded). */
#define FUZZ_MAX_STATE (4u << 20)
#define FUZZ_MAX_WORK (8u << 20)
#define FUZZ_MAX_IO (4u << 20)
#define FUZZ_STEPS 7  /* rows of the input sequence */
#define FUZZ_MANY 3   /* streams of lstm_step_many */

#define fuzz_fail(...)                                                                                   \
    do {                                                                                                 \
        fprintf(stderr, "\nFUZZ ORACLE FAILED at %s:%d: ", __FILE__, __LINE__);                          \
        fprintf(stderr, __VA_ARGS__);                                                                    \
        fprintf(stderr, "\n");                                                                           \
        abort();                                                                                         \
    } while (0)

static uint32_t fz_rd32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t fz_rd64(const unsigned char *p) { return (uint64_t)fz_rd32(p) | (uint64_t)fz_rd32(p + 4) << 32; }
static void fz_wr32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* zlib's CRC32, written here again so the harness does not trust the core's. */
static uint32_t fz_crc32(const unsigned char *p, size_t n, uint32_t crc) {
    static uint32_t table[256];
    static int ready;
    if (!ready) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320U ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        ready = 1;
    }
    crc = ~crc;
    for (size_t i = 0; i < n; i++) crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* SHA-256 for the fingerprint fix-up below: the core's own (sha256.h), as tests/c/testlib.c uses it. */
#include "sha256.h"

/* Make the header's fingerprint what the tensors give (docs/format.md: the first 8 bytes, little-endian,
 * of a SHA-256 over each table entry's role, index, dtype, rows, cols (u32 LE each) and its data), so that
 * mutated weights get past the fingerprint check to the value checks. Done only when every entry's data
 * lies inside [0, file_size); otherwise the loader refuses the table anyway. */
static void fz_fix_model_fingerprint(unsigned char *p, size_t len) {
    if (len < LSTM_HDR_SIZE) return;
    uint64_t size = fz_rd64(p + LSTM_HDR_FILE_SIZE);
    uint32_t count = fz_rd32(p + LSTM_HDR_TENSOR_COUNT);
    if (size > len || count > LSTM_MAX_TENSORS || LSTM_HDR_SIZE + (uint64_t)count * LSTM_TENSOR_ENTRY_SIZE > size) return;
    lstm_sha256 sh;
    lstm_sha256_init(&sh);
    for (uint32_t t = 0; t < count; t++) {
        const unsigned char *e = p + LSTM_HDR_SIZE + (size_t)t * LSTM_TENSOR_ENTRY_SIZE;
        uint64_t rows = fz_rd32(e + LSTM_TENSOR_ROWS), cols = fz_rd32(e + LSTM_TENSOR_COLS);
        uint64_t off = fz_rd64(e + LSTM_TENSOR_OFFSET), nbytes;
        switch (fz_rd32(e + LSTM_TENSOR_DTYPE)) {
        case LSTM_DTYPE_I8_BLOCKED: nbytes = ((rows + 15) / 16 * 16) * cols; break;
        case LSTM_DTYPE_F32_PANELS: nbytes = ((rows + 15) / 16 * 16) * cols * 4; break;
        case LSTM_DTYPE_F32:
        case LSTM_DTYPE_I32: nbytes = rows * cols * 4; break;
        default: return;
        }
        if (off > size || nbytes > size - off) return;
        unsigned char fields[20];
        memcpy(fields, e + LSTM_TENSOR_ROLE, 4);
        memcpy(fields + 4, e + LSTM_TENSOR_INDEX, 4);
        memcpy(fields + 8, e + LSTM_TENSOR_DTYPE, 4);
        memcpy(fields + 12, e + LSTM_TENSOR_ROWS, 4);
        memcpy(fields + 16, e + LSTM_TENSOR_COLS, 4);
        lstm_sha256_update(&sh, fields, sizeof fields);
        lstm_sha256_update(&sh, p + off, (size_t)nbytes);
    }
    unsigned char digest[32];
    lstm_sha256_final(&sh, digest);
    memcpy(p + LSTM_HDR_FINGERPRINT, digest, 8);
}

/* Make a model file's CRC field right for its bytes [0, file_size), if the header says a size that fits. */
static void fz_fix_model_crc(unsigned char *p, size_t len) {
    if (len < LSTM_HDR_SIZE) return;
    uint64_t size = fz_rd64(p + LSTM_HDR_FILE_SIZE);
    if (size < LSTM_HDR_CRC32 + 4 || size > len) return;
    fz_wr32(p + LSTM_HDR_CRC32, 0);
    fz_wr32(p + LSTM_HDR_CRC32, fz_crc32(p, (size_t)size, 0));
}

/* Make a snapshot's trailing CRC right for the bytes before it. */
static void fz_fix_snapshot_crc(unsigned char *p, size_t len) {
    if (len < 4) return;
    fz_wr32(p + len - 4, fz_crc32(p, len - 4, 0));
}

/* Largest |value| the file's float tensors (and scale * 127 of int8 scales) hold: the harness's own read
 * of the file (lstm_format.h), to decide whether the finiteness oracle applies. */
static double fz_max_abs_value(const unsigned char *p, size_t len) {
    if (len < LSTM_HDR_SIZE) return INFINITY;
    uint32_t count = fz_rd32(p + LSTM_HDR_TENSOR_COUNT);
    uint64_t size = fz_rd64(p + LSTM_HDR_FILE_SIZE);
    if (size > len || count > LSTM_MAX_TENSORS || LSTM_HDR_SIZE + (uint64_t)count * 32 > size) return INFINITY;
    double mx = 0;
    for (uint32_t t = 0; t < count; t++) {
        const unsigned char *e = p + LSTM_HDR_SIZE + (size_t)t * LSTM_TENSOR_ENTRY_SIZE;
        uint32_t role = fz_rd32(e + LSTM_TENSOR_ROLE), dtype = fz_rd32(e + LSTM_TENSOR_DTYPE);
        uint64_t rows = fz_rd32(e + LSTM_TENSOR_ROWS), cols = fz_rd32(e + LSTM_TENSOR_COLS);
        uint64_t off = fz_rd64(e + LSTM_TENSOR_OFFSET);
        if (dtype != LSTM_DTYPE_F32 && dtype != LSTM_DTYPE_F32_PANELS) continue;
        if (dtype == LSTM_DTYPE_F32_PANELS) rows = (rows + 15) / 16 * 16; /* padding rows are zeros */
        if (off > size || rows * cols > (size - off) / 4) return INFINITY;
        double k = (role == LSTM_ROLE_W_SCALE || role == LSTM_ROLE_PROJ_SCALE) ? 127.0 : 1.0;
        for (uint64_t i = 0; i < rows * cols; i++) {
            float v;
            memcpy(&v, p + off + 4 * i, 4);
            double a = fabs((double)v) * k;
            if (!(a <= mx)) mx = a; /* NaN propagates as "not <=" */
        }
    }
    return mx;
}

/* Every status has a message (called from LLVMFuzzerInitialize). */
static void fz_check_status_strings(void) {
    for (int st = 0; st < 64; st++) {
        const char *msg = lstm_status_str((lstm_status)st);
        if (!msg || !msg[0]) fuzz_fail("lstm_status_str(%d) is empty", st);
    }
    if (!lstm_version() || lstm_version_number() == 0) fuzz_fail("lstm_version");
}

static int fz_all_finite(const float *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return 0;
    return 1;
}

static int fz_all_finite_bytes(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float v;
        memcpy(&v, p + 4 * i, 4);
        if (!isfinite(v)) return 0;
    }
    return 1;
}

/* A state in its own malloc'd buffer, kept with its length so whole buffers can be compared. */
typedef struct fz_state {
    unsigned char *buf;
    size_t len;
    lstm_state *s;
} fz_state;

static void fz_state_new(const lstm_model *m, fz_state *st) {
    st->len = lstm_state_size(m);
    st->buf = (unsigned char *)malloc(st->len);
    if (!st->buf) fuzz_fail("malloc of a %zu-byte state", st->len);
    /* garbage in the buffer: init must not depend on it */
    memset(st->buf, 0xA5, st->len);
    lstm_status rc = lstm_state_init(m, st->buf, st->len, &st->s);
    if (rc != LSTM_OK) fuzz_fail("lstm_state_init: %s", lstm_status_str(rc));
    /* one byte short must be refused */
    lstm_state *dummy = NULL;
    if (lstm_state_init(m, st->buf, st->len - 1, &dummy) != LSTM_E_BUFFER_TOO_SMALL || dummy)
        fuzz_fail("lstm_state_init accepted a buffer one byte short");
}

static void fz_state_free(fz_state *st) {
    free(st->buf);
    st->buf = NULL;
}

static unsigned char *fz_dup(const void *p, size_t n) {
    unsigned char *c = (unsigned char *)malloc(n ? n : 1);
    if (!c) fuzz_fail("malloc %zu", n);
    memcpy(c, p, n);
    return c;
}

/* Outputs of a call that fails must stay as they were: fill them with a pattern first, check it after. */
static void fz_poison(void *p, size_t n) { memset(p, 0x5A, n); }
static void fz_expect_poison(const void *p, size_t n, const char *what, lstm_status rc) {
    const unsigned char *b = (const unsigned char *)p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != 0x5A) fuzz_fail("%s failed (%s) but wrote its output (byte %zu)", what, lstm_status_str(rc), i);
}

/* A failed call must not have touched the state: compare against a saved copy of the whole buffer. */
static void fz_expect_unchanged(const fz_state *st, const unsigned char *saved, const char *what, lstm_status rc) {
    if (memcmp(st->buf, saved, st->len) != 0)
        fuzz_fail("%s failed (%s) but changed the state", what, lstm_status_str(rc));
}

/* Snapshot, restore into a fresh state, and check both agree; returns nothing, aborts on violation. */
static void fz_check_snapshot_roundtrip(const lstm_model *m, const lstm_model_info *info, fz_state *st,
                                        const float *x, float *y1, float *y2, int expect_finite) {
    size_t n = lstm_snapshot_size(m);
    unsigned char *snap = (unsigned char *)malloc(n), *snap2 = (unsigned char *)malloc(n);
    if (!snap || !snap2) fuzz_fail("malloc snapshot");
    lstm_status rc = lstm_state_snapshot(st->s, snap, n);
    if (rc != LSTM_OK) fuzz_fail("lstm_state_snapshot: %s", lstm_status_str(rc));
    if (info->layer_dtype[0] == LSTM_LAYER_INT16X8) {
        /* an integer-only model's state words are int32 (docs/int16x8.md): h of every layer in
         * [-32767, 32767], then c anything but INT32_MIN, whatever the inputs */
        size_t words = (n - LSTM_SNAP_HEADER_SIZE - 4) / 4, hwords = (size_t)info->num_layers * info->hidden_size;
        for (size_t i = 0; i < words; i++) {
            uint32_t u = fz_rd32(snap + LSTM_SNAP_HEADER_SIZE + 4 * i);
            int64_t v = u >= 0x80000000u ? (int64_t)u - 4294967296LL : (int64_t)u;
            if (i < hwords ? (v < -32767 || v > 32767) : v == INT32_MIN)
                fuzz_fail("integer state word %zu out of range: %lld", i, (long long)v);
        }
    } else if (!fz_all_finite_bytes(snap + LSTM_SNAP_HEADER_SIZE, (n - LSTM_SNAP_HEADER_SIZE - 4) / 4)) {
        /* NaN/Inf in h or c: a snapshot restore refuses by design. Only possible from values beyond the
         * limits, which the caller marked with expect_finite == 0. */
        if (expect_finite) fuzz_fail("the state holds NaN or Inf after finite inputs");
        free(snap);
        free(snap2);
        return;
    }
    if (lstm_state_snapshot(st->s, snap2, n - 1) != LSTM_E_BUFFER_TOO_SMALL)
        fuzz_fail("lstm_state_snapshot accepted a buffer one byte short");

    fz_state fresh;
    fz_state_new(m, &fresh);
    rc = lstm_state_restore(fresh.s, snap, n);
    if (rc != LSTM_OK) fuzz_fail("a state is not restorable from its own snapshot: %s", lstm_status_str(rc));
    rc = lstm_state_snapshot(fresh.s, snap2, n);
    if (rc != LSTM_OK || memcmp(snap, snap2, n) != 0) fuzz_fail("snapshot of a restored state differs");
    /* restoring into the state it came from works too and changes nothing observable */
    rc = lstm_state_restore(st->s, snap, n);
    if (rc != LSTM_OK) fuzz_fail("restore into the original state: %s", lstm_status_str(rc));

    /* damaged copies are refused and leave the state as it was */
    unsigned char *saved = fz_dup(fresh.buf, fresh.len);
    size_t flips[3] = {0, n / 2, n - 1};
    for (int i = 0; i < 3; i++) {
        memcpy(snap2, snap, n);
        snap2[flips[i]] ^= 0x10;
        rc = lstm_state_restore(fresh.s, snap2, n);
        if (rc == LSTM_OK) fuzz_fail("restore accepted a snapshot with byte %zu flipped", flips[i]);
        fz_expect_unchanged(&fresh, saved, "restore of a damaged snapshot", rc);
    }
    rc = lstm_state_restore(fresh.s, snap, n - 1);
    if (rc == LSTM_OK) fuzz_fail("restore accepted a truncated snapshot");
    fz_expect_unchanged(&fresh, saved, "restore of a truncated snapshot", rc);
    free(saved);

    /* the two states step to the same bits */
    if (info->num_directions == 1) {
        lstm_status r1 = lstm_step(st->s, x, y1), r2 = lstm_step(fresh.s, x, y2);
        if (r1 != r2) fuzz_fail("restored state steps with another status");
        if (r1 == LSTM_OK && memcmp(y1, y2, info->output_size * sizeof(float)) != 0)
            fuzz_fail("restored state steps to other outputs");
    }
    fz_state_free(&fresh);
    free(snap);
    free(snap2);
}

/* Input rows: zeros, +1, -1, +-1e6, +-1e18, small values from the fuzz bytes, alternating large. */
static void fz_fill_inputs(float *xs, size_t in, const unsigned char *data, size_t len) {
    for (size_t i = 0; i < in; i++) {
        xs[0 * in + i] = 0.0f;
        xs[1 * in + i] = 1.0f;
        xs[2 * in + i] = -1.0f;
        xs[3 * in + i] = (i % 2) ? -1e6f : 1e6f;
        xs[4 * in + i] = (i % 3) ? 1e18f : -1e18f;
        unsigned char b = len ? data[(i * 131 + 17) % len] : 0;
        xs[5 * in + i] = ((float)b - 128.0f) / 32.0f;
        xs[6 * in + i] = (i % 2) ? 0.5f : -1e18f;
    }
}

/* Step, run (workspace and NULL), step_many (3 states), snapshot/restore an opened model. `file` and
 * `len` are its bytes (for the harness's own range scan). */
static void fz_exercise(lstm_model *m, const unsigned char *file, size_t len) {
    lstm_model_info info;
    if (lstm_model_get_info(m, &info) != LSTM_OK) fuzz_fail("get_info of an open model");
    const size_t in = info.input_size, out = info.output_size, T = FUZZ_STEPS;
    size_t state_size = lstm_state_size(m), run_ws = lstm_run_workspace_size(m, T);
    size_t many_ws = lstm_step_many_workspace_size(m, FUZZ_MANY), snap_size = lstm_snapshot_size(m);
    if (state_size == 0 || snap_size == 0 || run_ws == 0 || many_ws == 0) fuzz_fail("a size function said 0");
    if (in == 0 || out == 0) fuzz_fail("input_size or output_size is 0");
    if (state_size > FUZZ_MAX_STATE || run_ws > FUZZ_MAX_WORK || many_ws > FUZZ_MAX_WORK ||
        (T + 1) * (in + out) * sizeof(float) > FUZZ_MAX_IO || FUZZ_MANY * (in + out) * sizeof(float) > FUZZ_MAX_IO)
        return;

    double max_value = fz_max_abs_value(file, len);
    if (FUZZ_STRICT_LIMITS && !(max_value <= LSTM_MAX_ABS_WEIGHT))
        fuzz_fail("model opened with a value of magnitude %g > LSTM_MAX_ABS_WEIGHT", max_value);
    const int expect_finite = max_value <= LSTM_MAX_ABS_WEIGHT;

    float *xs = (float *)malloc((T + 1) * in * sizeof(float));
    float *ys = (float *)malloc(T * out * sizeof(float)), *ys2 = (float *)malloc(T * out * sizeof(float));
    float *y1 = (float *)malloc(out * sizeof(float)), *y2 = (float *)malloc(out * sizeof(float));
    void *work = malloc(run_ws), *mwork = malloc(many_ws);
    if (!xs || !ys || !ys2 || !y1 || !y2 || !work || !mwork) fuzz_fail("malloc");
    fz_fill_inputs(xs, in, file, len);
    float *bad = xs + T * in; /* a row with a NaN in it, built below */

    fz_state a, b;
    fz_state_new(m, &a);
    fz_state_new(m, &b);
    unsigned char *saved = fz_dup(a.buf, a.len);
    lstm_status rc;

    if (info.num_directions == 2) {
        rc = lstm_step(a.s, xs, y1);
        if (rc != LSTM_E_UNSUPPORTED) fuzz_fail("lstm_step on a bidirectional model: %s", lstm_status_str(rc));
        fz_expect_unchanged(&a, saved, "lstm_step (bidirectional)", rc);
        rc = lstm_run(a.s, xs, T, ys, NULL, 0);
        if (rc != LSTM_E_BUFFER_TOO_SMALL) fuzz_fail("bidirectional lstm_run without work: %s", lstm_status_str(rc));
        fz_expect_unchanged(&a, saved, "lstm_run (bidirectional, no work)", rc);
        rc = lstm_run(a.s, xs, T, ys, work, lstm_run_workspace_size(m, T - 1));
        if (rc != LSTM_E_BUFFER_TOO_SMALL) fuzz_fail("bidirectional lstm_run, short work: %s", lstm_status_str(rc));
        unsigned char *snap0 = (unsigned char *)malloc(snap_size), *snap1 = (unsigned char *)malloc(snap_size);
        if (!snap0 || !snap1) fuzz_fail("malloc");
        if (lstm_state_snapshot(a.s, snap0, snap_size) != LSTM_OK) fuzz_fail("snapshot (bidirectional)");
        rc = lstm_run(a.s, xs, T, ys, work, run_ws);
        if (rc != LSTM_OK) fuzz_fail("bidirectional lstm_run: %s", lstm_status_str(rc));
        if (lstm_state_snapshot(a.s, snap1, snap_size) != LSTM_OK || memcmp(snap0, snap1, snap_size) != 0)
            fuzz_fail("bidirectional lstm_run changed the state's h or c");
        free(snap0);
        free(snap1);
        if (expect_finite && !fz_all_finite(ys, T * out)) fuzz_fail("bidirectional lstm_run: non-finite output");
        rc = lstm_run(b.s, xs, T, ys2, work, run_ws);
        if (rc != LSTM_OK || memcmp(ys, ys2, T * out * sizeof(float)) != 0)
            fuzz_fail("two bidirectional runs over one sequence differ");
        lstm_state *ss[FUZZ_MANY] = {a.s, b.s, a.s};
        rc = lstm_step_many(m, ss, 2, xs, ys, mwork, many_ws);
        if (rc != LSTM_E_UNSUPPORTED) fuzz_fail("bidirectional step_many: %s", lstm_status_str(rc));
        fz_check_snapshot_roundtrip(m, &info, &a, xs, y1, y2, expect_finite);
        goto done;
    }

    /* lstm_step over the rows, against lstm_run with work == NULL on a second state: same bits */
    for (size_t t = 0; t < T; t++) {
        rc = lstm_step(a.s, xs + t * in, ys + t * out);
        if (rc != LSTM_OK) {
            int out_of_range = 0;
            for (size_t i = 0; i < in; i++) out_of_range |= fabsf(xs[t * in + i]) > LSTM_MAX_ABS_INPUT;
            if (!out_of_range) fuzz_fail("lstm_step on finite input row %zu: %s", t, lstm_status_str(rc));
        }
    }
    if (expect_finite && !fz_all_finite(ys, T * out)) fuzz_fail("lstm_step: non-finite output for finite input");
    rc = lstm_run(b.s, xs, T, ys2, NULL, 0);
    if (rc != LSTM_OK) fuzz_fail("lstm_run (work NULL): %s", lstm_status_str(rc));
    if (memcmp(ys, ys2, T * out * sizeof(float)) != 0) fuzz_fail("lstm_run (work NULL) differs from lstm_step");
    if (memcmp(a.buf, b.buf, a.len) != 0) {
        /* scratch may differ; the persistent part must not: compare snapshots */
        unsigned char *sa = (unsigned char *)malloc(snap_size), *sb = (unsigned char *)malloc(snap_size);
        if (!sa || !sb) fuzz_fail("malloc");
        lstm_state_snapshot(a.s, sa, snap_size);
        lstm_state_snapshot(b.s, sb, snap_size);
        if (memcmp(sa, sb, snap_size) != 0) fuzz_fail("state after lstm_run (work NULL) differs from lstm_step's");
        free(sa);
        free(sb);
    }

    /* int8 and int8-dynamic models: lstm_run with a workspace gives the bits of lstm_step too (lstm.h) */
    int all_int8 = 1;
    for (uint32_t l = 0; l < info.num_layers; l++) all_int8 &= info.layer_dtype[l] != LSTM_LAYER_FP32;
    if (all_int8) {
        size_t chunks[2] = {run_ws, lstm_run_workspace_size(m, 2)};
        for (int k = 0; k < 2; k++) {
            fz_state c;
            fz_state_new(m, &c);
            rc = lstm_run(c.s, xs, T, ys2, work, chunks[k]);
            if (rc != LSTM_OK) fuzz_fail("lstm_run (work): %s", lstm_status_str(rc));
            if (memcmp(ys, ys2, T * out * sizeof(float)) != 0)
                fuzz_fail("int8 model: lstm_run with a workspace (%s) differs from lstm_step", k ? "chunks of 2" : "whole");
            fz_state_free(&c);
        }
    }

    /* lstm_run with a workspace for all T steps, then with one for 2 steps (chunks) */
    rc = lstm_run(a.s, xs, T, ys, work, run_ws);
    if (rc != LSTM_OK) fuzz_fail("lstm_run (work): %s", lstm_status_str(rc));
    if (expect_finite && !fz_all_finite(ys, T * out)) fuzz_fail("lstm_run (work): non-finite output");
    rc = lstm_run(a.s, xs, T, ys, work, lstm_run_workspace_size(m, 2));
    if (rc != LSTM_OK) fuzz_fail("lstm_run (work of 2 steps): %s", lstm_status_str(rc));
    if (expect_finite && !fz_all_finite(ys, T * out)) fuzz_fail("lstm_run (chunks of 2): non-finite output");
    rc = lstm_run(a.s, xs, 0, NULL, NULL, 0);
    if (rc != LSTM_OK) fuzz_fail("lstm_run of 0 steps: %s", lstm_status_str(rc));

    /* refused inputs leave the state untouched: NaN, +Inf, -Inf anywhere in the sequence */
    free(saved);
    saved = fz_dup(a.buf, a.len);
    const float nonfinite[3] = {NAN, INFINITY, -INFINITY};
    for (int k = 0; k < 3; k++) {
        memcpy(bad, xs + 5 * in, in * sizeof(float));
        bad[(in - 1) * (size_t)k / 2] = nonfinite[k];
        fz_poison(y1, out * sizeof(float));
        rc = lstm_step(a.s, bad, y1);
        if (rc != LSTM_E_NONFINITE_INPUT) fuzz_fail("lstm_step with a non-finite input: %s", lstm_status_str(rc));
        fz_expect_unchanged(&a, saved, "lstm_step (non-finite input)", rc);
        fz_expect_poison(y1, out * sizeof(float), "lstm_step (non-finite input)", rc);
        /* the bad row last, after valid rows: nothing of the valid rows may be applied or written */
        fz_poison(ys, 3 * out * sizeof(float));
        rc = lstm_run(a.s, xs + (T - 2) * in, 3, ys, work, run_ws);
        if (rc != LSTM_E_NONFINITE_INPUT) fuzz_fail("lstm_run with a non-finite input: %s", lstm_status_str(rc));
        fz_expect_unchanged(&a, saved, "lstm_run (non-finite input)", rc);
        fz_expect_poison(ys, 3 * out * sizeof(float), "lstm_run (non-finite input)", rc);
        rc = lstm_run(a.s, xs + (T - 2) * in, 3, ys, NULL, 0);
        if (rc != LSTM_E_NONFINITE_INPUT) fuzz_fail("lstm_run (NULL work), non-finite input: %s", lstm_status_str(rc));
        fz_expect_unchanged(&a, saved, "lstm_run (NULL work, non-finite input)", rc);
        fz_expect_poison(ys, 3 * out * sizeof(float), "lstm_run (NULL work, non-finite input)", rc);
    }
    /* beyond LSTM_MAX_ABS_INPUT: refused (strict), or at least no change when refused */
    memcpy(bad, xs + 5 * in, in * sizeof(float));
    bad[0] = 1e30f;
    fz_poison(y1, out * sizeof(float));
    rc = lstm_step(a.s, bad, y1);
    if (rc != LSTM_OK) {
        fz_expect_unchanged(&a, saved, "lstm_step (input beyond LSTM_MAX_ABS_INPUT)", rc);
        fz_expect_poison(y1, out * sizeof(float), "lstm_step (input beyond LSTM_MAX_ABS_INPUT)", rc);
        if (FUZZ_STRICT_LIMITS && rc != LSTM_E_INPUT_RANGE)
            fuzz_fail("lstm_step of an input of 1e30: %s, not LSTM_E_INPUT_RANGE", lstm_status_str(rc));
        /* the same in a sequence, after valid rows */
        float *seq = (float *)malloc(3 * in * sizeof(float));
        if (!seq) fuzz_fail("malloc");
        memcpy(seq, xs, 2 * in * sizeof(float));
        memcpy(seq + 2 * in, bad, in * sizeof(float));
        fz_poison(ys, 3 * out * sizeof(float));
        rc = lstm_run(a.s, seq, 3, ys, work, run_ws);
        if (rc == LSTM_OK || (FUZZ_STRICT_LIMITS && rc != LSTM_E_INPUT_RANGE))
            fuzz_fail("lstm_run with an input of 1e30: %s", lstm_status_str(rc));
        fz_expect_unchanged(&a, saved, "lstm_run (input beyond LSTM_MAX_ABS_INPUT)", rc);
        fz_expect_poison(ys, 3 * out * sizeof(float), "lstm_run (input beyond LSTM_MAX_ABS_INPUT)", rc);
        free(seq);
    } else if (FUZZ_STRICT_LIMITS) fuzz_fail("lstm_step accepted an input of 1e30 > LSTM_MAX_ABS_INPUT");
    else { /* accepted (the core does not check the range yet): start a over, its state may be huge */
        lstm_state_reset(a.s);
        free(saved);
        saved = fz_dup(a.buf, a.len);
    }

    /* step_many over 3 states (a, b and a fresh one) */
    {
        fz_state c;
        fz_state_new(m, &c);
        lstm_state *ss[FUZZ_MANY] = {a.s, b.s, c.s};
        unsigned char *sa = fz_dup(a.buf, a.len), *sb = fz_dup(b.buf, b.len), *sc = fz_dup(c.buf, c.len);
        for (size_t r = 0; r + FUZZ_MANY <= T; r++) {
            rc = lstm_step_many(m, ss, FUZZ_MANY, xs + r * in, ys, mwork, many_ws);
            if (rc != LSTM_OK) fuzz_fail("lstm_step_many: %s", lstm_status_str(rc));
            if (expect_finite && !fz_all_finite(ys, FUZZ_MANY * out)) fuzz_fail("lstm_step_many: non-finite output");
        }
        /* failures: short workspace, a NaN in the last stream's row */
        memcpy(sa, a.buf, a.len);
        memcpy(sb, b.buf, b.len);
        memcpy(sc, c.buf, c.len);
        rc = lstm_step_many(m, ss, FUZZ_MANY, xs, ys, mwork, many_ws - 1);
        if (rc != LSTM_E_BUFFER_TOO_SMALL) fuzz_fail("lstm_step_many with a short workspace: %s", lstm_status_str(rc));
        float *rows = (float *)malloc(FUZZ_MANY * in * sizeof(float));
        if (!rows) fuzz_fail("malloc");
        memcpy(rows, xs, FUZZ_MANY * in * sizeof(float));
        rows[FUZZ_MANY * in - 1] = NAN;
        fz_poison(ys, FUZZ_MANY * out * sizeof(float));
        rc = lstm_step_many(m, ss, FUZZ_MANY, rows, ys, mwork, many_ws);
        if (rc != LSTM_E_NONFINITE_INPUT) fuzz_fail("lstm_step_many with a NaN: %s", lstm_status_str(rc));
        fz_expect_poison(ys, FUZZ_MANY * out * sizeof(float), "lstm_step_many (NaN)", rc);
        if (FUZZ_STRICT_LIMITS) {
            rows[FUZZ_MANY * in - 1] = -1e30f;
            rc = lstm_step_many(m, ss, FUZZ_MANY, rows, ys, mwork, many_ws);
            if (rc != LSTM_E_INPUT_RANGE) fuzz_fail("lstm_step_many with an input of -1e30: %s", lstm_status_str(rc));
            fz_expect_poison(ys, FUZZ_MANY * out * sizeof(float), "lstm_step_many (-1e30)", rc);
        }
        fz_expect_unchanged(&a, sa, "lstm_step_many", rc);
        fz_expect_unchanged(&b, sb, "lstm_step_many", rc);
        fz_expect_unchanged(&c, sc, "lstm_step_many", rc);
        free(rows);
        free(sa);
        free(sb);
        free(sc);
        fz_check_snapshot_roundtrip(m, &info, &c, xs + 5 * in, y1, y2, expect_finite);
        fz_state_free(&c);
    }

    fz_check_snapshot_roundtrip(m, &info, &a, xs + 1 * in, y1, y2, expect_finite);
    /* reset gives the state of a fresh one */
    rc = lstm_state_reset(a.s);
    if (rc != LSTM_OK) fuzz_fail("lstm_state_reset: %s", lstm_status_str(rc));
    {
        fz_state f;
        fz_state_new(m, &f);
        unsigned char *sa = (unsigned char *)malloc(snap_size), *sf = (unsigned char *)malloc(snap_size);
        if (!sa || !sf) fuzz_fail("malloc");
        lstm_state_snapshot(a.s, sa, snap_size);
        lstm_state_snapshot(f.s, sf, snap_size);
        if (memcmp(sa, sf, snap_size) != 0) fuzz_fail("a reset state differs from a fresh one");
        free(sa);
        free(sf);
        fz_state_free(&f);
    }

done:
    free(saved);
    fz_state_free(&a);
    fz_state_free(&b);
    free(xs);
    free(ys);
    free(ys2);
    free(y1);
    free(y2);
    free(work);
    free(mwork);
}

#endif /* FUZZ_COMMON_H */
