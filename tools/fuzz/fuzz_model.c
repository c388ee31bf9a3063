/*
 * fuzz_model.c - libFuzzer harness for the model loader (lstm_model_open / lstm_model_init) and for
 * everything an opened model does (fuzz_common.h: step, run, step_many, snapshot/restore).
 *
 * Two forms from this one file:
 *   FUZZ_FIX_CRC=0  fuzz_model_raw: the bytes as given (mostly exercises the header and CRC checks)
 *   FUZZ_FIX_CRC=1  fuzz_model_crc: the fingerprint (SHA-256 of the tensors) and then the CRC field are
 *                   recomputed after mutation, so mutated dimensions, tensor tables and weights reach the
 *                   field and value checks and the kernels. An input whose byte right after file_size is
 *                   'F' keeps its fingerprint as given (so a wrong fingerprint stays reachable).
 * Oracles beyond fuzz_common.h: lstm_model_open and lstm_model_init agree; a misaligned pointer is
 * refused; a model one byte short of its file_size is refused; the model never writes its bytes.
 */
#include "fuzz_common.h"

#ifndef FUZZ_FIX_CRC
#define FUZZ_FIX_CRC 0
#endif

#define FUZZ_MAX_INPUT (1u << 20)

/* Run the model on every ISA this build and CPU have (lstm_run over the standard rows, without and with a
 * workspace; bidirectional models with one): outputs finite everywhere, and for models whose layers are
 * all int8 / int8-dynamic the same bits on every ISA (lstm.h). fp32 layers may differ in rounding. */
static void check_isas(lstm_model *m, const lstm_model_info *info, const unsigned char *file, size_t len) {
    int all_int8 = 1;
    for (uint32_t l = 0; l < info->num_layers; l++) all_int8 &= info->layer_dtype[l] != LSTM_LAYER_FP32;
    const size_t in = info->input_size, out = info->output_size, T = FUZZ_STEPS;
    size_t ws = lstm_run_workspace_size(m, T);
    if (lstm_state_size(m) > FUZZ_MAX_STATE || ws > FUZZ_MAX_WORK || T * (in + 2 * out) * sizeof(float) > FUZZ_MAX_IO)
        return;
    const int bi = info->num_directions == 2;
    lstm_isa first = (lstm_isa)info->isa;
    float *xs = (float *)malloc(T * in * sizeof(float)), *ref = (float *)malloc(2 * T * out * sizeof(float));
    float *ys = (float *)malloc(2 * T * out * sizeof(float));
    void *work = malloc(ws);
    if (!xs || !ref || !ys || !work) fuzz_fail("malloc");
    fz_fill_inputs(xs, in, file, len);
    int have_ref = 0, others = 0;
    for (int isa = LSTM_ISA_REFERENCE; isa < LSTM_ISA_COUNT; isa++) {
        if (!lstm_isa_supported((lstm_isa)isa)) {
            if (lstm_model_set_isa(m, (lstm_isa)isa) != LSTM_E_ISA_UNAVAILABLE)
                fuzz_fail("set_isa accepted unsupported ISA %s", lstm_isa_name((lstm_isa)isa));
            continue;
        }
        lstm_status rc = lstm_model_set_isa(m, (lstm_isa)isa);
        if (rc != LSTM_OK) fuzz_fail("set_isa %s: %s", lstm_isa_name((lstm_isa)isa), lstm_status_str(rc));
        others++;
        float *y = have_ref ? ys : ref;
        fz_state s;
        fz_state_new(m, &s);
        rc = bi ? LSTM_OK : lstm_run(s.s, xs, T, y, NULL, 0);
        if (rc != LSTM_OK) fuzz_fail("lstm_run on ISA %s: %s", lstm_isa_name((lstm_isa)isa), lstm_status_str(rc));
        rc = lstm_run(s.s, xs, T, y + T * out, work, ws);
        if (rc != LSTM_OK) fuzz_fail("lstm_run (work) on ISA %s: %s", lstm_isa_name((lstm_isa)isa), lstm_status_str(rc));
        size_t n = (bi ? 1 : 2) * T * out;
        if (!fz_all_finite(bi ? y + T * out : y, n))
            fuzz_fail("non-finite output on ISA %s", lstm_isa_name((lstm_isa)isa));
        if (all_int8 && have_ref && memcmp(ys + (bi ? T * out : 0), ref + (bi ? T * out : 0), n * sizeof(float)) != 0)
            fuzz_fail("int8 model gives other bits on ISA %s than on the first ISA", lstm_isa_name((lstm_isa)isa));
        have_ref = 1;
        fz_state_free(&s);
    }
    if (others == 0) fuzz_fail("no ISA is supported");
    if (lstm_model_set_isa(m, first) != LSTM_OK) fuzz_fail("set_isa back to %u", (unsigned)first);
    free(xs);
    free(ref);
    free(ys);
    free(work);
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
    if (FUZZ_FIX_CRC) {
        /* the fingerprint too, unless the byte after the file is 'F' (keeps the fingerprint check reachable) */
        uint64_t fsize = size >= LSTM_HDR_SIZE ? fz_rd64(buf + LSTM_HDR_FILE_SIZE) : 0;
        if (!(fsize < size && buf[fsize] == 'F')) fz_fix_model_fingerprint(buf, size);
        fz_fix_model_crc(buf, size);
    }
    unsigned char *orig = fz_dup(buf, size);

    lstm_model *m = NULL;
    lstm_status rc = lstm_model_open(buf, size, &m);
    if ((rc == LSTM_OK) != (m != NULL)) fuzz_fail("lstm_model_open: status %d but model %p", (int)rc, (void *)m);

    /* the same through caller memory */
    void *mem = malloc(LSTM_MODEL_MEM_SIZE);
    lstm_model *m2 = NULL;
    if (!mem) fuzz_fail("malloc");
    /* the descriptor at an odd address (any alignment will do) */
    unsigned char *odd = (unsigned char *)malloc(LSTM_MODEL_MEM_SIZE + 1);
    lstm_model *m_odd = NULL;
    if (!odd) fuzz_fail("malloc");
    lstm_status rc_odd = lstm_model_init(odd + 1, LSTM_MODEL_MEM_SIZE, buf, size, &m_odd);
    lstm_status rc_short = lstm_model_init(odd, LSTM_MODEL_MEM_SIZE - 1, buf, size, &m_odd);
    if (rc_short != LSTM_E_BUFFER_TOO_SMALL) fuzz_fail("lstm_model_init with short memory: %s", lstm_status_str(rc_short));
    lstm_status rc2 = lstm_model_init(mem, LSTM_MODEL_MEM_SIZE, buf, size, &m2);
    if (rc_odd != rc2) fuzz_fail("lstm_model_init at an odd address says %s, aligned %s", lstm_status_str(rc_odd),
                                 lstm_status_str(rc2));
    free(odd);
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
        check_isas(m, &info, buf, (size_t)info.file_size);
        /* a closed model (lstm_model_init's memory still there): its states say LSTM_E_BAD_STATE */
        if (lstm_state_size(m2) <= FUZZ_MAX_STATE && info.num_directions == 1 && info.input_size <= 65536 &&
            info.output_size <= 65536) {
            fz_state s2;
            fz_state_new(m2, &s2);
            float *x = (float *)calloc(info.input_size, sizeof(float)), *y = (float *)malloc(info.output_size * sizeof(float));
            if (!x || !y) fuzz_fail("malloc");
            lstm_status r = lstm_step(s2.s, x, y);
            if (r != LSTM_OK) fuzz_fail("lstm_step on the lstm_model_init model: %s", lstm_status_str(r));
            lstm_model_close(m2);
            r = lstm_step(s2.s, x, y);
            if (r != LSTM_E_BAD_STATE) fuzz_fail("lstm_step after lstm_model_close: %s", lstm_status_str(r));
            if (lstm_state_size(m2) != 0 || lstm_snapshot_size(m2) != 0 || lstm_run_workspace_size(m2, 1) != 0)
                fuzz_fail("size functions of a closed model are not 0");
            lstm_model_close(m2); /* closing twice is fine */
            free(x);
            free(y);
            fz_state_free(&s2);
        }
        lstm_model_close(m2);
        lstm_model_close(m);
        if (memcmp(buf, orig, size) != 0) fuzz_fail("the library wrote into the model bytes");
    }
    free(mem);
    free(orig);
    free(buf);
    return 0;
}
