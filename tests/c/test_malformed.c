/* test_malformed.c - damaged and hostile model files: every truncation, every bit flip (with and without
 * a recomputed CRC), header and tensor-table fields set to extreme values, random damage. Every file is
 * copied into a buffer of exactly its length, so the sanitizer build reports any read past it; a file the
 * library accepts is run a little, so a bad layout would show there too. */
#include <stdlib.h>
#include <string.h>

#include "lstm_format.h"
#include "testlib.h"

/* in, H, P, layers, dirs, head, activation, seed, scale: every tensor role, and a bidirectional net */
static const net_spec SPEC_UNI = {3, 4, 2, 2, 1, 2, LSTM_ACT_SOFTMAX, 51, 0.5f};
static const net_spec SPEC_BI = {3, 4, 2, 2, 2, 0, LSTM_ACT_NONE, 52, 0.5f};
/* The files most tests walk: one unidirectional with a head, one bidirectional. */
static const net_spec *const SPECS[] = {&SPEC_UNI, &SPEC_BI};
#define N_SPECS 2

/* Build the network of `spec` into *n and return its model file (caller frees both). */
static unsigned char *spec_file(const net_spec *spec, net *n, size_t *len) {
    net_make(n, spec);
    return net_write(n, 0, len);
}

#define ENTRY(t, field) (LSTM_HDR_SIZE + (size_t)(t) * LSTM_TENSOR_ENTRY_SIZE + (field))

static int documented_open_status(lstm_status st) {
    switch (st) {
    case LSTM_OK: case LSTM_E_TRUNCATED: case LSTM_E_BAD_MAGIC: case LSTM_E_UNSUPPORTED_VERSION:
    case LSTM_E_CHECKSUM: case LSTM_E_BAD_HEADER: case LSTM_E_BAD_TENSOR: case LSTM_E_NONFINITE_WEIGHT:
        return 1;
    default:
        return 0;
    }
}

/* Run an accepted model: a step (or a bidirectional run) and a chunked run, into exact-size buffers. */
static void use_model(const lstm_model *m) {
    lstm_model_info info;
    CHECK_OK(lstm_model_get_info(m, &info));
    size_t steps = 3, in = info.input_size, out = info.output_size, work_len = lstm_run_workspace_size(m, steps);
    void *buf;
    lstm_state *s = new_state(m, &buf, NULL);
    float *xs = random_inputs(61, steps, in, 1.0f), *ys = (float *)xmalloc(steps * out * sizeof(float));
    void *work = xmalloc(work_len);
    if (info.num_directions == 1) CHECK_OK(lstm_step(s, xs, ys));
    CHECK_OK(lstm_run(s, xs, steps, ys, work, work_len));
    free(work);
    free(xs);
    free(ys);
    free(buf);
}

/* Open a copy of `len` bytes in a buffer of exactly that length, with lstm_model_open and with
 * lstm_model_init (they must agree); run the model if it is accepted. */
static lstm_status try_open(const unsigned char *bytes, size_t len) {
    unsigned char *copy = (unsigned char *)xmalloc(len);
    size_t mem_size = lstm_model_mem_size();
    unsigned char *mem_raw = (unsigned char *)xmalloc(mem_size + 16);
    void *mem = (void *)(((uintptr_t)mem_raw + 15) / 16 * 16);
    lstm_model *m = NULL, *m2 = NULL;
    if (len) memcpy(copy, bytes, len);
    lstm_status st = lstm_model_open(copy, len, &m);
    CHECK_STATUS(lstm_model_init(mem, mem_size, copy, len, &m2), st);
    CHECK(documented_open_status(st));
    CHECK((st == LSTM_OK) == (m != NULL));
    if (m) {
        use_model(m);
        lstm_model_close(m);
    }
    free(mem_raw);
    free(copy);
    return st;
}

static void test_intact_files_open(void) {
    for (int k = 0; k < N_SPECS; k++) {
        net n;
        size_t len;
        unsigned char *f = spec_file(SPECS[k], &n, &len);
        CHECK_OK(try_open(f, len));
        /* bytes after the file are ignored */
        unsigned char *longer = (unsigned char *)xmalloc(len + 100);
        memcpy(longer, f, len);
        memset(longer + len, 0xee, 100);
        CHECK_OK(try_open(longer, len + 100));
        free(longer);
        free(f);
        net_free(&n);
    }
}

static void test_every_truncation(void) {
    for (int k = 0; k < N_SPECS; k++) {
        net n;
        size_t len;
        unsigned char *f = spec_file(SPECS[k], &n, &len);
        size_t wrong = 0;
        for (size_t cut = 0; cut < len; cut++) wrong += try_open(f, cut) != LSTM_E_TRUNCATED;
        CHECK(wrong == 0);
        free(f);
        net_free(&n);
    }
}

/* Every single bit flip is refused: the CRC catches what the field checks do not. */
static void test_every_bit_flip(void) {
    for (int k = 0; k < N_SPECS; k++) {
        net n;
        size_t len;
        unsigned char *f = spec_file(SPECS[k], &n, &len);
        size_t accepted = 0;
        for (size_t bit = 0; bit < 8 * len; bit++) {
            f[bit / 8] ^= (unsigned char)(1u << (bit % 8));
            accepted += try_open(f, len) == LSTM_OK;
            f[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        }
        CHECK(accepted == 0);
        free(f);
        net_free(&n);
    }
}

/* Every bit flip with the CRC recomputed, as a careless or hostile writer would: never a crash or an
 * overread; a flip in a checked header field is always refused. The fingerprint is free, and the head
 * activation may turn into another valid one. */
static int header_flip_may_pass(size_t byte) {
    return (byte >= LSTM_HDR_CRC32 && byte < LSTM_HDR_CRC32 + 4) ||
           (byte >= LSTM_HDR_FINGERPRINT && byte < LSTM_HDR_FINGERPRINT + 8) ||
           (byte >= LSTM_HDR_HEAD_ACTIVATION && byte < LSTM_HDR_HEAD_ACTIVATION + 4);
}

static void test_every_bit_flip_crc_fixed(void) {
    for (int k = 0; k < N_SPECS; k++) {
        net n;
        size_t len;
        unsigned char *f = spec_file(SPECS[k], &n, &len), *g = (unsigned char *)xmalloc(len);
        size_t header_accepted = 0;
        for (size_t bit = 0; bit < 8 * len; bit++) {
            memcpy(g, f, len);
            g[bit / 8] ^= (unsigned char)(1u << (bit % 8));
            fix_file_crc(g, len);
            lstm_status st = try_open(g, len);
            if (bit / 8 < LSTM_HDR_SIZE && !header_flip_may_pass(bit / 8)) header_accepted += st == LSTM_OK;
        }
        CHECK(header_accepted == 0);
        free(g);
        free(f);
        net_free(&n);
    }
}

/* ---- fields set to extreme values, CRC recomputed --------------------------------------------------- */

typedef struct patch {
    size_t off;
    int width; /* 1, 4 or 8 bytes */
    uint64_t value;
} patch;

static void expect_patched(const unsigned char *base, size_t len, const patch *p, size_t np, lstm_status want,
                           int line, const char *what) {
    unsigned char *f = (unsigned char *)xmalloc(len);
    memcpy(f, base, len);
    for (size_t i = 0; i < np; i++) {
        if (p[i].width == 1) f[p[i].off] = (unsigned char)p[i].value;
        else if (p[i].width == 4) put32(f + p[i].off, (uint32_t)p[i].value);
        else put64(f + p[i].off, p[i].value);
    }
    fix_file_crc(f, len);
    check_status_at(try_open(f, len), want, __FILE__, line, what);
    free(f);
}

/* one field; two fields at once */
#define SET(off, width, value, want) \
    expect_patched(f, len, (patch[]){{(off), (width), (uint64_t)(value)}}, 1, (want), __LINE__, #off " = " #value)
#define SET2(off1, w1, v1, off2, w2, v2, want)                                                              \
    expect_patched(f, len, (patch[]){{(off1), (w1), (uint64_t)(v1)}, {(off2), (w2), (uint64_t)(v2)}}, 2, \
                   (want), __LINE__, #off1 " = " #v1 ", " #off2 " = " #v2)

static void test_extreme_header_fields(void) {
    net n;
    size_t len;
    net_make(&n, &SPEC_UNI);
    unsigned char *f = net_write(&n, 0, &len);
    const uint32_t count = get32(f + LSTM_HDR_TENSOR_COUNT), header_size = get32(f + LSTM_HDR_HEADER_SIZE);
    const uint64_t u64max = UINT64_MAX, last_end = get64(f + ENTRY(7, LSTM_TENSOR_OFFSET)) + 4 * SPEC_UNI.head_size;
    CHECK(count == 8 && header_size == LSTM_HDR_SIZE + 8 * LSTM_TENSOR_ENTRY_SIZE);
    CHECK(get32(f + ENTRY(7, LSTM_TENSOR_ROLE)) == LSTM_ROLE_HEAD_B && last_end < len);

    SET(LSTM_HDR_MAGIC, 1, 'X', LSTM_E_BAD_MAGIC);
    SET(LSTM_HDR_VERSION, 4, 0, LSTM_E_UNSUPPORTED_VERSION);
    SET(LSTM_HDR_VERSION, 4, LSTM_FORMAT_VERSION + 1, LSTM_E_UNSUPPORTED_VERSION);
    SET(LSTM_HDR_VERSION, 4, 1, LSTM_E_UNSUPPORTED_VERSION); /* 0.1-0.2 files: fp32 weights row-major */
    SET(LSTM_HDR_VERSION, 4, UINT32_MAX, LSTM_E_UNSUPPORTED_VERSION);

    SET(LSTM_HDR_FILE_SIZE, 8, u64max, LSTM_E_TRUNCATED);
    SET(LSTM_HDR_FILE_SIZE, 8, u64max - 63, LSTM_E_TRUNCATED);
    SET(LSTM_HDR_FILE_SIZE, 8, (uint64_t)1 << 63, LSTM_E_TRUNCATED);
    SET(LSTM_HDR_FILE_SIZE, 8, (uint64_t)1 << 32, LSTM_E_TRUNCATED);
    SET(LSTM_HDR_FILE_SIZE, 8, len + 1, LSTM_E_TRUNCATED);
    SET(LSTM_HDR_FILE_SIZE, 8, 0, LSTM_E_BAD_HEADER);
    SET(LSTM_HDR_FILE_SIZE, 8, LSTM_HDR_SIZE - 1, LSTM_E_BAD_HEADER);
    SET(LSTM_HDR_FILE_SIZE, 8, header_size - 1, LSTM_E_BAD_HEADER);
    SET(LSTM_HDR_FILE_SIZE, 8, header_size, LSTM_E_BAD_TENSOR); /* the tensors lie past the declared end */
    SET(LSTM_HDR_FILE_SIZE, 8, last_end - 1, LSTM_E_BAD_TENSOR);  /* the last one ends past it */
    SET(LSTM_HDR_FILE_SIZE, 8, last_end, LSTM_OK);                /* the padding after it is optional */

    SET(LSTM_HDR_HEADER_SIZE, 4, 0, LSTM_E_BAD_HEADER);
    SET(LSTM_HDR_HEADER_SIZE, 4, LSTM_HDR_SIZE - 1, LSTM_E_BAD_HEADER);
    SET(LSTM_HDR_HEADER_SIZE, 4, UINT32_MAX, LSTM_E_BAD_HEADER);
    SET(LSTM_HDR_HEADER_SIZE, 4, header_size + LSTM_TENSOR_ENTRY_SIZE, LSTM_E_BAD_HEADER);
    SET(LSTM_HDR_HEADER_SIZE, 4, header_size - LSTM_TENSOR_ENTRY_SIZE, LSTM_E_BAD_HEADER);

    SET(LSTM_HDR_TENSOR_COUNT, 4, 0, LSTM_E_BAD_HEADER);
    SET(LSTM_HDR_TENSOR_COUNT, 4, count - 1, LSTM_E_BAD_HEADER);
    SET(LSTM_HDR_TENSOR_COUNT, 4, count + 1, LSTM_E_BAD_HEADER);
    SET(LSTM_HDR_TENSOR_COUNT, 4, LSTM_MAX_TENSORS + 1, LSTM_E_BAD_HEADER);
    SET(LSTM_HDR_TENSOR_COUNT, 4, UINT32_MAX, LSTM_E_BAD_HEADER);
    /* header sizes that a 32-bit "128 + 32 * count" would wrap to */
    SET2(LSTM_HDR_TENSOR_COUNT, 4, UINT32_MAX, LSTM_HDR_HEADER_SIZE, 4, (uint32_t)(LSTM_HDR_SIZE - 32),
         LSTM_E_BAD_HEADER);
    SET2(LSTM_HDR_TENSOR_COUNT, 4, 0x08000000, LSTM_HDR_HEADER_SIZE, 4, LSTM_HDR_SIZE, LSTM_E_BAD_HEADER);
    SET2(LSTM_HDR_TENSOR_COUNT, 4, 0x08000008, LSTM_HDR_HEADER_SIZE, 4, header_size, LSTM_E_BAD_HEADER);
    SET2(LSTM_HDR_TENSOR_COUNT, 4, LSTM_MAX_TENSORS + 1, LSTM_HDR_HEADER_SIZE, 4,
         LSTM_HDR_SIZE + (LSTM_MAX_TENSORS + 1) * LSTM_TENSOR_ENTRY_SIZE, LSTM_E_BAD_HEADER);
    /* consistent, but the last entry (the head bias) is no longer listed */
    SET2(LSTM_HDR_TENSOR_COUNT, 4, count - 1, LSTM_HDR_HEADER_SIZE, 4, header_size - LSTM_TENSOR_ENTRY_SIZE,
         LSTM_E_BAD_TENSOR);

    SET(LSTM_HDR_FLAGS, 4, 1, LSTM_E_BAD_HEADER);
    SET(LSTM_HDR_FLAGS, 4, 0x80000000u, LSTM_E_BAD_HEADER);

    SET(LSTM_HDR_INPUT_SIZE, 4, 0, LSTM_E_BAD_HEADER);
    SET(LSTM_HDR_INPUT_SIZE, 4, LSTM_MAX_DIM + 1, LSTM_E_BAD_HEADER);
    SET(LSTM_HDR_INPUT_SIZE, 4, UINT32_MAX, LSTM_E_BAD_HEADER);
    SET(LSTM_HDR_INPUT_SIZE, 4, 4, LSTM_E_BAD_TENSOR);
    SET(LSTM_HDR_HIDDEN_SIZE, 4, 0, LSTM_E_BAD_HEADER);
    SET(LSTM_HDR_HIDDEN_SIZE, 4, 2, LSTM_E_BAD_HEADER); /* == proj_size */
    SET(LSTM_HDR_HIDDEN_SIZE, 4, LSTM_MAX_DIM + 1, LSTM_E_BAD_HEADER);
    SET(LSTM_HDR_HIDDEN_SIZE, 4, UINT32_MAX, LSTM_E_BAD_HEADER);
    SET(LSTM_HDR_HIDDEN_SIZE, 4, 5, LSTM_E_BAD_TENSOR);
    SET(LSTM_HDR_PROJ_SIZE, 4, 4, LSTM_E_BAD_HEADER); /* == hidden_size */
    SET(LSTM_HDR_PROJ_SIZE, 4, UINT32_MAX, LSTM_E_BAD_HEADER);
    SET(LSTM_HDR_PROJ_SIZE, 4, 0, LSTM_E_BAD_TENSOR);
    SET(LSTM_HDR_PROJ_SIZE, 4, 3, LSTM_E_BAD_TENSOR);
    SET(LSTM_HDR_NUM_LAYERS, 4, 0, LSTM_E_BAD_HEADER);
    SET(LSTM_HDR_NUM_LAYERS, 4, LSTM_MAX_LAYERS + 1, LSTM_E_BAD_HEADER);
    SET(LSTM_HDR_NUM_LAYERS, 4, UINT32_MAX, LSTM_E_BAD_HEADER);
    SET(LSTM_HDR_NUM_LAYERS, 4, 1, LSTM_E_BAD_TENSOR);
    SET(LSTM_HDR_NUM_LAYERS, 4, 3, LSTM_E_BAD_TENSOR);
    SET(LSTM_HDR_NUM_DIRECTIONS, 4, 0, LSTM_E_BAD_HEADER);
    SET(LSTM_HDR_NUM_DIRECTIONS, 4, 3, LSTM_E_BAD_HEADER);
    SET(LSTM_HDR_NUM_DIRECTIONS, 4, UINT32_MAX, LSTM_E_BAD_HEADER);
    SET(LSTM_HDR_NUM_DIRECTIONS, 4, 2, LSTM_E_BAD_TENSOR);
    SET(LSTM_HDR_HEAD_SIZE, 4, 0, LSTM_E_BAD_HEADER); /* an activation without a head */
    SET(LSTM_HDR_HEAD_SIZE, 4, LSTM_MAX_DIM + 1, LSTM_E_BAD_HEADER);
    SET(LSTM_HDR_HEAD_SIZE, 4, UINT32_MAX, LSTM_E_BAD_HEADER);
    SET(LSTM_HDR_HEAD_SIZE, 4, 3, LSTM_E_BAD_TENSOR);
    SET(LSTM_HDR_HEAD_ACTIVATION, 4, LSTM_ACT_SOFTMAX + 1, LSTM_E_BAD_HEADER);
    SET(LSTM_HDR_HEAD_ACTIVATION, 4, UINT32_MAX, LSTM_E_BAD_HEADER);
    SET(LSTM_HDR_LAYER_DTYPES, 1, 0xff, LSTM_E_BAD_HEADER);
    SET(LSTM_HDR_LAYER_DTYPES + 2, 1, 1, LSTM_E_BAD_HEADER); /* entries past the last layer are 0 */
    SET(LSTM_HDR_LAYER_DTYPES + LSTM_MAX_LAYERS - 1, 1, 1, LSTM_E_BAD_HEADER);
    SET(LSTM_HDR_RESERVED, 1, 1, LSTM_E_BAD_HEADER);
    SET(LSTM_HDR_SIZE - 1, 1, 0x80, LSTM_E_BAD_HEADER);
    free(f);
    net_free(&n);
}

static void test_extreme_tensor_entries(void) {
    net n;
    size_t len;
    net_make(&n, &SPEC_UNI);
    unsigned char *f = net_write(&n, 0, &len);
    /* natural order: 0 weight l0, 1 bias l0, 2 proj l0, 3 weight l1, 4 bias l1, 5 proj l1, 6 head w, 7 head b */
    const uint64_t off0 = get64(f + ENTRY(0, LSTM_TENSOR_OFFSET)), off3 = get64(f + ENTRY(3, LSTM_TENSOR_OFFSET));
    const uint64_t off7 = get64(f + ENTRY(7, LSTM_TENSOR_OFFSET)), u64max = UINT64_MAX;
    const uint32_t rows0 = get32(f + ENTRY(0, LSTM_TENSOR_ROWS)), header_size = get32(f + LSTM_HDR_HEADER_SIZE);
    CHECK(get32(f + ENTRY(0, LSTM_TENSOR_ROLE)) == LSTM_ROLE_WEIGHT && get32(f + ENTRY(7, LSTM_TENSOR_ROLE)) == LSTM_ROLE_HEAD_B);

    SET(ENTRY(0, LSTM_TENSOR_ROLE), 4, 0, LSTM_E_BAD_TENSOR);
    SET(ENTRY(0, LSTM_TENSOR_ROLE), 4, 100, LSTM_E_BAD_TENSOR);
    SET(ENTRY(0, LSTM_TENSOR_ROLE), 4, UINT32_MAX, LSTM_E_BAD_TENSOR);
    SET(ENTRY(0, LSTM_TENSOR_ROLE), 4, LSTM_ROLE_HEAD_B, LSTM_E_BAD_TENSOR);
    SET(ENTRY(1, LSTM_TENSOR_INDEX), 4, UINT32_MAX, LSTM_E_BAD_TENSOR);
    SET(ENTRY(1, LSTM_TENSOR_INDEX), 4, 2 * LSTM_MAX_LAYERS, LSTM_E_BAD_TENSOR);
    SET(ENTRY(1, LSTM_TENSOR_INDEX), 4, 4, LSTM_E_BAD_TENSOR); /* layer 2 does not exist */
    SET(ENTRY(1, LSTM_TENSOR_INDEX), 4, 1, LSTM_E_BAD_TENSOR); /* direction 1 in a unidirectional net */
    SET(ENTRY(6, LSTM_TENSOR_INDEX), 4, 1, LSTM_E_BAD_TENSOR); /* head tensors have index 0 */
    SET(ENTRY(0, LSTM_TENSOR_DTYPE), 4, 0, LSTM_E_BAD_TENSOR);
    SET(ENTRY(0, LSTM_TENSOR_DTYPE), 4, LSTM_DTYPE_F32, LSTM_E_BAD_TENSOR); /* fp32 weights are packed panels */
    SET(ENTRY(2, LSTM_TENSOR_DTYPE), 4, LSTM_DTYPE_F32, LSTM_E_BAD_TENSOR);
    SET(ENTRY(6, LSTM_TENSOR_DTYPE), 4, LSTM_DTYPE_F32_PANELS, LSTM_E_BAD_TENSOR); /* the head is row-major */
    SET(ENTRY(0, LSTM_TENSOR_DTYPE), 4, 77, LSTM_E_BAD_TENSOR);
    SET(ENTRY(0, LSTM_TENSOR_DTYPE), 4, UINT32_MAX, LSTM_E_BAD_TENSOR);
    SET(ENTRY(0, LSTM_TENSOR_ROWS), 4, 0, LSTM_E_BAD_TENSOR);
    SET(ENTRY(0, LSTM_TENSOR_ROWS), 4, rows0 + 1, LSTM_E_BAD_TENSOR);
    SET(ENTRY(0, LSTM_TENSOR_ROWS), 4, UINT32_MAX, LSTM_E_BAD_TENSOR);
    SET(ENTRY(0, LSTM_TENSOR_COLS), 4, 0, LSTM_E_BAD_TENSOR);
    SET(ENTRY(0, LSTM_TENSOR_COLS), 4, UINT32_MAX, LSTM_E_BAD_TENSOR);
    SET2(ENTRY(0, LSTM_TENSOR_ROWS), 4, UINT32_MAX, ENTRY(0, LSTM_TENSOR_COLS), 4, UINT32_MAX, LSTM_E_BAD_TENSOR);
    SET(ENTRY(2, LSTM_TENSOR_RESERVED), 4, 1, LSTM_E_BAD_TENSOR);

    SET(ENTRY(0, LSTM_TENSOR_OFFSET), 8, u64max, LSTM_E_BAD_TENSOR);
    SET(ENTRY(0, LSTM_TENSOR_OFFSET), 8, u64max - 63, LSTM_E_BAD_TENSOR); /* aligned, and off + size wraps */
    SET(ENTRY(0, LSTM_TENSOR_OFFSET), 8, (uint64_t)1 << 63, LSTM_E_BAD_TENSOR);
    SET(ENTRY(0, LSTM_TENSOR_OFFSET), 8, (uint64_t)1 << 32, LSTM_E_BAD_TENSOR);
    SET(ENTRY(0, LSTM_TENSOR_OFFSET), 8, len, LSTM_E_BAD_TENSOR);      /* at the end of the file */
    SET(ENTRY(0, LSTM_TENSOR_OFFSET), 8, len - 64, LSTM_E_BAD_TENSOR); /* runs past the end */
    SET(ENTRY(0, LSTM_TENSOR_OFFSET), 8, 0, LSTM_E_BAD_TENSOR);        /* over the header */
    SET(ENTRY(0, LSTM_TENSOR_OFFSET), 8, header_size - 64, LSTM_E_BAD_TENSOR); /* over the table */
    SET(ENTRY(0, LSTM_TENSOR_OFFSET), 8, off0 + 4, LSTM_E_BAD_TENSOR); /* not a multiple of 64 */
    SET(ENTRY(0, LSTM_TENSOR_OFFSET), 8, off3, LSTM_E_BAD_TENSOR);     /* over another tensor */
    SET(ENTRY(3, LSTM_TENSOR_OFFSET), 8, off0, LSTM_E_BAD_TENSOR);
    SET(ENTRY(7, LSTM_TENSOR_OFFSET), 8, len, LSTM_E_BAD_TENSOR);
    SET(ENTRY(7, LSTM_TENSOR_OFFSET), 8, off7 + 1, LSTM_E_BAD_TENSOR);

    /* weights that are not numbers */
    SET(off0, 4, 0x7fc00000u, LSTM_E_NONFINITE_WEIGHT);                /* NaN */
    SET(off3 + 4 * 5, 4, 0xff800000u, LSTM_E_NONFINITE_WEIGHT);        /* -Inf */
    SET(off7 + 4, 4, 0x7f800000u, LSTM_E_NONFINITE_WEIGHT);            /* +Inf in the last tensor */

    /* a packed matrix's padding rows hold zeros (+0.0 bits): the projection has rows2 rows, rows2 % 16 != 0 */
    const uint64_t off2 = get64(f + ENTRY(2, LSTM_TENSOR_OFFSET));
    const uint32_t rows2 = get32(f + ENTRY(2, LSTM_TENSOR_ROWS)), cols2 = get32(f + ENTRY(2, LSTM_TENSOR_COLS));
    CHECK(rows2 % 16 != 0);
    SET(off2 + 4 * panel_index(rows2, 0, cols2), 4, 0x3f800000u, LSTM_E_BAD_TENSOR);        /* 1.0 */
    SET(off2 + 4 * panel_index(15, cols2 - 1, cols2), 4, 0x80000000u, LSTM_E_BAD_TENSOR);   /* -0.0 */

    /* a repeated entry: entry 3 (layer 1's weight) replaced by a copy of entry 0 */
    unsigned char *dup = (unsigned char *)xmalloc(len);
    memcpy(dup, f, len);
    memcpy(dup + ENTRY(3, 0), dup + ENTRY(0, 0), LSTM_TENSOR_ENTRY_SIZE);
    fix_file_crc(dup, len);
    CHECK_STATUS(try_open(dup, len), LSTM_E_BAD_TENSOR);
    free(dup);
    free(f);
    net_free(&n);
}

/* Random damage to the header and the table, CRC recomputed: a documented status every time, never a
 * crash or an overread, and an accepted file runs. */
static void test_random_damage(void) {
    rng r = {71};
    for (int k = 0; k < N_SPECS; k++) {
        net n;
        size_t len;
        unsigned char *f = spec_file(SPECS[k], &n, &len), *g = (unsigned char *)xmalloc(len);
        size_t table_end = get32(f + LSTM_HDR_HEADER_SIZE);
        const uint32_t values[] = {0, 1, 2, 3, 4, 63, 64, 0x7f, 0x80, 0xff, 0x7fffffffu, 0x80000000u, UINT32_MAX,
                                   (uint32_t)len, (uint32_t)len - 64, (uint32_t)table_end};
        for (int iter = 0; iter < 3000; iter++) {
            memcpy(g, f, len);
            int edits = 1 + (int)(rng_next(&r) % 4);
            for (int e = 0; e < edits; e++) {
                size_t pos = (size_t)(rng_next(&r) % (table_end - 3)) & ~(size_t)3; /* a u32 field */
                uint64_t pick = rng_next(&r);
                if (pick % 2) put32(g + pos, values[(pick >> 8) % (sizeof values / sizeof values[0])]);
                else g[pos + (pick >> 8) % 4] = (unsigned char)(pick >> 16);
            }
            fix_file_crc(g, len);
            try_open(g, len); /* its checks: documented status, both entry points agree, runs if accepted */
        }
        free(g);
        free(f);
        net_free(&n);
    }
}

int main(void) {
    run_test("intact_files_open", test_intact_files_open);
    run_test("every_truncation", test_every_truncation);
    run_test("every_bit_flip", test_every_bit_flip);
    run_test("every_bit_flip_crc_fixed", test_every_bit_flip_crc_fixed);
    run_test("extreme_header_fields", test_extreme_header_fields);
    run_test("extreme_tensor_entries", test_extreme_tensor_entries);
    run_test("random_damage", test_random_damage);
    return test_summary();
}
