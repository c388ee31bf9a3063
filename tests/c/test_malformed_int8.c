/* test_malformed_int8.c - int8, int8-dynamic and int8-a16 model files that a careless or hostile writer could
 * produce (fingerprint and CRC recomputed, so only the value checks stand between them and the kernels):
 * out-of-range int8 values, non-zero padding rows and columns, wrong row sums, bad scales; and a sweep of
 * every bit flip of whole files, each model that opens stepped on every ISA with finite outputs. Run under
 * AddressSanitizer and UndefinedBehaviorSanitizer by the asan configuration. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lstm_format.h"
#include "testlib.h"

/* H = 6: 4H = 24 rows, so rows 24..31 of each 16-row panel are padding; input 6 and Hr = 5 leave padding
 * columns in both parts (r4(6) = 8, r4(5) = 8). */
static const net_spec SPEC = {6, 6, 5, 2, 1, 3, LSTM_ACT_SOFTMAX, 77, 0.6f};
static const lstm_layer_dtype DTYPES[3] = {LSTM_LAYER_INT8, LSTM_LAYER_INT8_DYNAMIC, LSTM_LAYER_INT8_A16};
static const char *const DTYPE_NAMES[3] = {"int8", "int8-dynamic", "int8-a16"};

/* Byte offset of the tensor (role, index) in a file, 0 if absent. */
static size_t tensor_at(const unsigned char *f, uint32_t role, uint32_t index) {
    uint32_t count = get32(f + LSTM_HDR_TENSOR_COUNT);
    for (uint32_t t = 0; t < count; t++) {
        const unsigned char *e = f + LSTM_HDR_SIZE + (size_t)t * LSTM_TENSOR_ENTRY_SIZE;
        if (get32(e + LSTM_TENSOR_ROLE) == role && get32(e + LSTM_TENSOR_INDEX) == index)
            return (size_t)get64(e + LSTM_TENSOR_OFFSET);
    }
    return 0;
}

/* Byte of element (r, k) of a blocked matrix with `cols` columns. */
static size_t blocked(size_t r, size_t k, size_t cols) { return (r / 16 * (cols / 4) + k / 4) * 64 + (r % 16) * 4 + k % 4; }

static int all_finite(const float *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return 0;
    return 1;
}

/* Open; when it opens, step, run and step_many on every ISA this CPU runs: finite outputs, no sanitizer
 * report. Returns the status of lstm_model_open. */
static lstm_status open_and_step(const unsigned char *f, size_t len) {
    lstm_model *m = NULL;
    lstm_status st = lstm_model_open(f, len, &m);
    if (st != LSTM_OK) return st;
    lstm_model_info info;
    CHECK_OK(lstm_model_get_info(m, &info));
    /* a flipped header field may have made another valid shape: size everything from the model */
    static const float pattern[] = {0.5f, -1, 2, 0, 1e6f, -3, 1e-38f, 0, 0, -1e-40f, 4, 4, -4, 4, 1, 1, 7};
    size_t in = info.input_size, out = info.output_size;
    float *xs = (float *)xmalloc(3 * in * sizeof(float)), *ys = (float *)xmalloc(3 * out * sizeof(float));
    for (size_t i = 0; i < 3 * in; i++) xs[i] = pattern[i % (sizeof pattern / sizeof pattern[0])];
    for (int isa = 1; isa < LSTM_ISA_COUNT; isa++) {
        if (!lstm_isa_supported((lstm_isa)isa)) continue;
        CHECK_OK(lstm_model_set_isa(m, (lstm_isa)isa));
        void *b[3];
        lstm_state *s[3];
        for (int i = 0; i < 3; i++) s[i] = new_state(m, &b[i], NULL);
        size_t run = lstm_run_workspace_size(m, 3), many = lstm_step_many_workspace_size(m, 3);
        void *work = xmalloc(run > many ? run : many);
        if (info.num_directions == 1) {
            for (size_t t = 0; t < 3; t++) {
                CHECK_OK(lstm_step(s[0], xs + in * t, ys));
                CHECK(all_finite(ys, out));
            }
            CHECK_OK(lstm_step_many(m, s, 3, xs, ys, work, many));
            CHECK(all_finite(ys, 3 * out));
        }
        CHECK_OK(lstm_run(s[1], xs, 3, ys, work, run));
        CHECK(all_finite(ys, 3 * out));
        free(work);
        for (int i = 0; i < 3; i++) free(b[i]);
    }
    free(xs);
    free(ys);
    lstm_model_close(m);
    return st;
}

typedef struct damage {
    const char *what;
    uint32_t role, index; /* tensor; index 0 = layer 0 */
    size_t row, col;      /* element of a blocked matrix (role WEIGHT or PROJ), or row of a float/int vector */
    int is_float;         /* write `f` as float32 at 4 * row, else `v` as int8 (blocked) or int32 (ROWSUM) */
    float f;
    int32_t v;
    lstm_status want;
} damage;

static void test_value_checks(void) {
    const size_t wcols = 8 + 8, pcols = 8; /* r4(in) + r4(Hr); r4(H) */
    const damage cases[] = {
        {"weight -128", LSTM_ROLE_WEIGHT, 0, 3, 2, 0, 0, -128, LSTM_E_BAD_TENSOR},
        {"non-zero padding row", LSTM_ROLE_WEIGHT, 0, 27, 1, 0, 0, 5, LSTM_E_BAD_TENSOR},
        {"non-zero padding column of W_ih", LSTM_ROLE_WEIGHT, 0, 4, 7, 0, 0, 1, LSTM_E_BAD_TENSOR},
        {"non-zero padding column of W_hh", LSTM_ROLE_WEIGHT, 2, 0, 8 + 6, 0, 0, -1, LSTM_E_BAD_TENSOR},
        {"weight changed, row sums kept", LSTM_ROLE_WEIGHT, 2, 5, 1, 0, 0, 100, LSTM_E_BAD_TENSOR},
        {"row sum off by one", LSTM_ROLE_W_ROWSUM, 0, 7, 0, 0, 0, 123456, LSTM_E_BAD_TENSOR},
        {"negative scale", LSTM_ROLE_W_SCALE, 0, 2, 0, 1, -0.01f, 0, LSTM_E_BAD_TENSOR},
        {"scale beyond 2^20 / 127", LSTM_ROLE_W_SCALE, 2, 30, 0, 1, 9000.0f, 0, LSTM_E_NONFINITE_WEIGHT},
        {"NaN scale", LSTM_ROLE_W_SCALE, 0, 0, 0, 1, NAN, 0, LSTM_E_NONFINITE_WEIGHT},
        {"projection -128", LSTM_ROLE_PROJ, 0, 1, 1, 0, 0, -128, LSTM_E_BAD_TENSOR},
        {"projection padding column", LSTM_ROLE_PROJ, 2, 2, 6, 0, 0, 9, LSTM_E_BAD_TENSOR},
        {"projection padding row", LSTM_ROLE_PROJ, 0, 5, 0, 0, 0, 9, LSTM_E_BAD_TENSOR},
        {"negative projection scale", LSTM_ROLE_PROJ_SCALE, 2, 1, 0, 1, -1.0f, 0, LSTM_E_BAD_TENSOR},
        {"largest allowed scale", LSTM_ROLE_W_SCALE, 0, 3, 0, 1, 8256.0f, 0, LSTM_OK},
    };
    for (int d = 0; d < 3; d++) {
        net n;
        net_make(&n, &SPEC);
        size_t len;
        unsigned char *f = net_write_q8(&n, DTYPES[d], &len), *g = (unsigned char *)xmalloc(len);
        test_context("%s: the writer's file", DTYPE_NAMES[d]);
        CHECK_OK(open_and_step(f, len));
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            const damage *k = &cases[c];
            test_context("%s: %s", DTYPE_NAMES[d], k->what);
            memcpy(g, f, len);
            size_t off = tensor_at(g, k->role, k->index);
            CHECK(off != 0);
            if (!off) continue;
            if (k->is_float) {
                uint32_t u;
                memcpy(&u, &k->f, 4);
                put32(g + off + 4 * k->row, u);
            } else if (k->role == LSTM_ROLE_W_ROWSUM) {
                put32(g + off + 4 * k->row, get32(g + off + 4 * k->row) + 1);
            } else {
                size_t at = off + blocked(k->row, k->col, k->role == LSTM_ROLE_PROJ ? pcols : wcols);
                g[at] = (unsigned char)(int8_t)(k->v == 100 ? (int8_t)g[at] == 100 ? 99 : 100 : k->v);
            }
            fix_file_crc(g, len);
            CHECK_STATUS(open_and_step(g, len), k->want);
        }
        free(f);
        free(g);
        net_free(&n);
    }
    test_context("");
}

/* Every single bit flip of the whole file, fingerprint and CRC recomputed: never a crash, an overread or
 * undefined behaviour; whatever opens steps with finite outputs on every ISA. */
static void test_every_bit_flip(void) {
    for (int d = 0; d < 3; d++) {
        net n;
        net_make(&n, &SPEC);
        size_t len, opened = 0;
        unsigned char *f = net_write_q8(&n, DTYPES[d], &len), *g = (unsigned char *)xmalloc(len);
        test_context("%s", DTYPE_NAMES[d]);
        for (size_t bit = 0; bit < 8 * len; bit++) {
            memcpy(g, f, len);
            g[bit / 8] ^= (unsigned char)(1u << (bit % 8));
            fix_file_crc(g, len);
            opened += open_and_step(g, len) == LSTM_OK;
        }
        CHECK(opened > 0 && opened < 8 * len); /* some flips are harmless (a weight's low bit), most are not */
        free(f);
        free(g);
        net_free(&n);
    }
    test_context("");
}

/* The layer-dtype byte: the three int8 dtypes store the same tensors, so any of them opens any such file
 * (and steps on every ISA); values past LSTM_LAYER_INT8_A16 are rejected. */
static void test_layer_dtype_byte(void) {
    net n;
    net_make(&n, &SPEC);
    size_t len;
    unsigned char *f = net_write_q8(&n, LSTM_LAYER_INT8_A16, &len);
    for (unsigned v = 0; v < 256; v++) {
        test_context("layer 1 dtype byte %u", v);
        unsigned char *g = (unsigned char *)xmalloc(len);
        memcpy(g, f, len);
        g[LSTM_HDR_LAYER_DTYPES + 1] = (unsigned char)v;
        fix_file_crc(g, len);
        lstm_status want = v >= 1 && v <= LSTM_LAYER_INT8_A16 ? LSTM_OK : v == 0 ? LSTM_E_BAD_TENSOR : LSTM_E_BAD_HEADER;
        lstm_status got = open_and_step(g, len);
        if (v == 0) CHECK(got != LSTM_OK); /* fp32 expects other tensors */
        else CHECK_STATUS(got, want);
        free(g);
    }
    test_context("");
    free(f);
    net_free(&n);
}

int main(void) {
    run_test("layer_dtype_byte", test_layer_dtype_byte);
    run_test("int8_value_checks", test_value_checks);
    run_test("int8_every_bit_flip", test_every_bit_flip);
    return test_summary();
}
