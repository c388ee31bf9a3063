/*
 * fuzz_snapshot.c - libFuzzer harness for lstm_state_restore.
 *
 * A fixed small model (tools/fuzz/snapshot_model.lstm, embedded at build time with .incbin from the path
 * in FUZZ_SNAPSHOT_MODEL: 2 layers, int8-dynamic then fp32, proj_size 6, a tanh head) is opened once. Each
 * input is a snapshot blob restored into a state that has been stepped first (so a wrong restore is
 * visible). Two forms:
 *   FUZZ_FIX_CRC=0  fuzz_snapshot_raw: the bytes as given
 *   FUZZ_FIX_CRC=1  fuzz_snapshot_crc: the trailing CRC32 is recomputed over everything before it, so
 *                   mutated headers, lengths, fingerprints and floats reach the field checks.
 * Oracles: a refused blob leaves the state byte-identical; an accepted one snapshots back to exactly the
 * same bytes; the restored state steps, runs and step_many's to finite outputs (every accepted value
 * within 1e6, or any accepted value with FUZZ_STRICT_LIMITS); and the usual snapshot round trip.
 */
#include "fuzz_common.h"

#ifndef FUZZ_FIX_CRC
#define FUZZ_FIX_CRC 0
#endif
#ifndef FUZZ_SNAPSHOT_MODEL
#error "define FUZZ_SNAPSHOT_MODEL as the path of the model file to embed"
#endif
#define FUZZ_STR2(x) #x
#define FUZZ_STR(x) FUZZ_STR2(x)

/* the model bytes, 64-byte aligned, and their length */
__asm__(".section .rodata\n"
        ".balign 64\n"
        ".globl fuzz_snapshot_model\n"
        "fuzz_snapshot_model:\n"
        ".incbin \"" FUZZ_STR(FUZZ_SNAPSHOT_MODEL) "\"\n"
        ".globl fuzz_snapshot_model_end\n"
        "fuzz_snapshot_model_end:\n"
        ".byte 0\n"
        ".previous\n");
extern const unsigned char fuzz_snapshot_model[], fuzz_snapshot_model_end[];

static lstm_model *model;
static lstm_model_info info;
static int expect_finite;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fz_check_status_strings();
    size_t len = (size_t)(fuzz_snapshot_model_end - fuzz_snapshot_model);
    lstm_status rc = lstm_model_open(fuzz_snapshot_model, len, &model);
    if (rc != LSTM_OK) fuzz_fail("the embedded snapshot model does not open: %s", lstm_status_str(rc));
    lstm_model_get_info(model, &info);
    expect_finite = fz_max_abs_value(fuzz_snapshot_model, len) <= LSTM_MAX_ABS_WEIGHT;
    if (!expect_finite || info.num_directions != 1) fuzz_fail("the snapshot model must be unidirectional, in limits");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > (1u << 16)) return -1;
    unsigned char *blob = (unsigned char *)malloc(size ? size : 1);
    if (!blob) fuzz_fail("malloc");
    memcpy(blob, data, size);
    if (FUZZ_FIX_CRC) fz_fix_snapshot_crc(blob, size);

    const size_t in = info.input_size, out = info.output_size, snap_size = lstm_snapshot_size(model);
    float xs[FUZZ_STEPS * 64], ys[FUZZ_MANY * 64];
    if (in > 64 || out > 64) fuzz_fail("snapshot model too wide for the harness");
    fz_fill_inputs(xs, in, data, size); /* rows 0..3 of the standard rows: 0, +1, -1, +-1e6 */

    fz_state a;
    fz_state_new(model, &a);
    for (size_t t = 0; t < 3; t++)
        if (lstm_step(a.s, xs + (t + 1) * in, ys) != LSTM_OK) fuzz_fail("step of the snapshot model");
    unsigned char *saved = fz_dup(a.buf, a.len);

    lstm_status rc = lstm_state_restore(a.s, blob, size);
    if (rc != LSTM_OK) {
        fz_expect_unchanged(&a, saved, "lstm_state_restore", rc);
    } else {
        if (size != snap_size) fuzz_fail("restore accepted %zu bytes; a snapshot has %zu", size, snap_size);
        unsigned char *again = (unsigned char *)malloc(snap_size);
        if (!again) fuzz_fail("malloc");
        rc = lstm_state_snapshot(a.s, again, snap_size);
        if (rc != LSTM_OK || memcmp(again, blob, snap_size) != 0)
            fuzz_fail("the snapshot of a restored state is not the blob it was restored from");
        free(again);
        /* finite outputs from the restored state */
        float maxabs = 0;
        for (size_t i = LSTM_SNAP_HEADER_SIZE; i + 4 < size; i += 4) {
            float v;
            memcpy(&v, blob + i, 4);
            if (!isfinite(v)) fuzz_fail("restore accepted a NaN or Inf value at byte %zu", i);
            maxabs = fabsf(v) > maxabs ? fabsf(v) : maxabs;
        }
        int finite = FUZZ_STRICT_LIMITS || maxabs <= 1e6f;
        fz_state b;
        fz_state_new(model, &b);
        if (lstm_state_restore(b.s, blob, size) != LSTM_OK) fuzz_fail("second restore of an accepted blob");
        for (size_t t = 0; t < 4; t++) {
            rc = lstm_step(a.s, xs + t * in, ys);
            if (rc != LSTM_OK) fuzz_fail("step after restore: %s", lstm_status_str(rc));
            if (finite && !fz_all_finite(ys, out)) fuzz_fail("non-finite output after a restore (max |v| %g)", maxabs);
        }
        rc = lstm_run(b.s, xs, 4, ys, NULL, 0);
        if (rc != LSTM_OK) fuzz_fail("run after restore: %s", lstm_status_str(rc));
        if (finite && !fz_all_finite(ys, 4 * out)) fuzz_fail("non-finite run output after a restore");
        /* step_many over a, b and a fresh state */
        fz_state c;
        fz_state_new(model, &c);
        lstm_state *ss[FUZZ_MANY] = {a.s, b.s, c.s};
        size_t mws = lstm_step_many_workspace_size(model, FUZZ_MANY);
        void *mwork = malloc(mws);
        if (!mwork) fuzz_fail("malloc");
        rc = lstm_step_many(model, ss, FUZZ_MANY, xs + in, ys, mwork, mws);
        if (rc != LSTM_OK) fuzz_fail("step_many after restore: %s", lstm_status_str(rc));
        if (finite && !fz_all_finite(ys, FUZZ_MANY * out)) fuzz_fail("non-finite step_many output after a restore");
        free(mwork);
        fz_state_free(&c);
        float y1[64], y2[64];
        if (finite) fz_check_snapshot_roundtrip(model, &info, &a, xs + in, y1, y2, 1);
        fz_state_free(&b);
    }
    free(saved);
    fz_state_free(&a);
    free(blob);
    return 0;
}
