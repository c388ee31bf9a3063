/*
 * fuzz_model.c - libFuzzer harness for the model loader (lstm_model_open / lstm_model_init) and for
 * everything an opened model does (fuzz_common.h: step, run, step_many, snapshot/restore).
 *
 * Two forms from this one file:
 *   FUZZ_FIX_CRC=0  fuzz_model_raw: the bytes as given (mostly exercises the header and CRC checks)
 *   FUZZ_FIX_CRC=1  fuzz_model_crc: the CRC field is recomputed over [0, file_size) after mutation, so
 *                   mutated dimensions, tensor tables and weights reach the field checks and the kernels.
 * Oracles beyond fuzz_common.h: lstm_model_open and lstm_model_init agree; a misaligned pointer is
 * refused; a model one byte short of its file_size is refused; the model never writes its bytes.
 */
#include "fuzz_common.h"

#ifndef FUZZ_FIX_CRC
#define FUZZ_FIX_CRC 0
#endif

#define FUZZ_MAX_INPUT (1u << 20)

/* Run the model on every other ISA this build and CPU have; int8 and int8-dynamic models must give the
 * same bits on all (lstm.h). fp32 layers may differ in rounding: compared only for all-int8 models. */
static void check_isas(lstm_model *m, const lstm_model_info *info) {
    if (info->num_directions != 1) return;
    int all_int8 = 1;
    for (uint32_t l = 0; l < info->num_layers; l++) all_int8 &= info->layer_dtype[l] != LSTM_LAYER_FP32;
    size_t in = info->input_size, out = info->output_size;
    if (!all_int8 || lstm_state_size(m) > FUZZ_MAX_STATE || 4 * (in + out) * sizeof(float) > FUZZ_MAX_IO) return;
    lstm_isa first = (lstm_isa)info->isa;
    float *xs = (float *)calloc(4 * in, sizeof(float)), *ref = (float *)malloc(4 * out * sizeof(float));
    float *ys = (float *)malloc(4 * out * sizeof(float));
    if (!xs || !ref || !ys) fuzz_fail("malloc");
    for (size_t i = 0; i < 4 * in; i++) xs[i] = (float)((int)(i % 7) - 3) * 0.37f;
    int have_ref = 0;
    for (int isa = LSTM_ISA_REFERENCE; isa < LSTM_ISA_COUNT; isa++) {
        if (!lstm_isa_supported((lstm_isa)isa) || lstm_model_set_isa(m, (lstm_isa)isa) != LSTM_OK) continue;
        fz_state s;
        fz_state_new(m, &s);
        lstm_status rc = lstm_run(s.s, xs, 4, have_ref ? ys : ref, NULL, 0);
        if (rc != LSTM_OK) fuzz_fail("lstm_run on ISA %s: %s", lstm_isa_name((lstm_isa)isa), lstm_status_str(rc));
        if (have_ref && memcmp(ys, ref, 4 * out * sizeof(float)) != 0)
            fuzz_fail("int8 model gives other bits on ISA %s than on the first ISA", lstm_isa_name((lstm_isa)isa));
        have_ref = 1;
        fz_state_free(&s);
    }
    if (lstm_model_set_isa(m, first) != LSTM_OK) fuzz_fail("set_isa back to %u", (unsigned)first);
    free(xs);
    free(ref);
    free(ys);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fz_check_status_strings();
    if (lstm_model_mem_size() > LSTM_MODEL_MEM_SIZE)
        fuzz_fail("lstm_model_mem_size() %zu > LSTM_MODEL_MEM_SIZE %zu", lstm_model_mem_size(),
                  (size_t)LSTM_MODEL_MEM_SIZE);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > FUZZ_MAX_INPUT) return -1; /* not added to the corpus */
    /* an exact-size heap copy: ASan sees any read past `size`; malloc's alignment (16) is enough */
    unsigned char *buf = (unsigned char *)malloc(size ? size : 1);
    if (!buf) fuzz_fail("malloc");
    memcpy(buf, data, size);
    if (FUZZ_FIX_CRC) fz_fix_model_crc(buf, size);
    unsigned char *orig = fz_dup(buf, size);

    lstm_model *m = NULL;
    lstm_status rc = lstm_model_open(buf, size, &m);
    if ((rc == LSTM_OK) != (m != NULL)) fuzz_fail("lstm_model_open: status %d but model %p", (int)rc, (void *)m);

    /* the same through caller memory */
    void *mem = malloc(LSTM_MODEL_MEM_SIZE);
    lstm_model *m2 = NULL;
    if (!mem) fuzz_fail("malloc");
    lstm_status rc2 = lstm_model_init(mem, LSTM_MODEL_MEM_SIZE, buf, size, &m2);
    if (rc2 != rc) fuzz_fail("lstm_model_open says %s, lstm_model_init says %s", lstm_status_str(rc),
                             lstm_status_str(rc2));
    /* misaligned bytes are refused before anything is read */
    if (size > 1) {
        lstm_model *m3 = NULL;
        lstm_status rc3 = lstm_model_open(buf + 1, size - 1, &m3);
        if (rc3 != LSTM_E_MISALIGNED || m3) fuzz_fail("misaligned model bytes: %s", lstm_status_str(rc3));
    }

    if (rc == LSTM_OK) {
        lstm_model_info info, info2;
        memset(&info, 0, sizeof info);
        memset(&info2, 0, sizeof info2);
        if (lstm_model_get_info(m, &info) != LSTM_OK || lstm_model_get_info(m2, &info2) != LSTM_OK)
            fuzz_fail("get_info");
        if (info.fingerprint != info2.fingerprint || info.file_size != info2.file_size ||
            info.output_size != info2.output_size || lstm_state_size(m) != lstm_state_size(m2))
            fuzz_fail("lstm_model_open and lstm_model_init read different models");
        if (info.file_size > size || info.file_size < LSTM_HDR_SIZE) fuzz_fail("file_size %llu of %zu bytes",
                                                                             (unsigned long long)info.file_size, size);
        /* one byte short of the file is truncated */
        lstm_model *m4 = NULL;
        lstm_status rc4 = lstm_model_open(buf, (size_t)info.file_size - 1, &m4);
        if (rc4 != LSTM_E_TRUNCATED || m4) fuzz_fail("a model one byte short opened: %s", lstm_status_str(rc4));

        fz_exercise(m, buf, (size_t)info.file_size);
        check_isas(m, &info);
        lstm_model_close(m2);
        lstm_model_close(m);
        if (memcmp(buf, orig, size) != 0) fuzz_fail("the library wrote into the model bytes");
    }
    free(mem);
    free(orig);
    free(buf);
    return 0;
}
