/*
 * lstm.h - the public C API of lstm_embed, an embedded LSTM inference library.
 *
 * The model is a read-only view over bytes the caller owns (a file read or mapped into memory, a const
 * array in flash, a Python bytes object). It is validated once when opened and never copied; any number
 * of threads and streams may share it. Each stream's state (h and c of every layer plus scratch) lives in
 * a buffer the caller provides: ask lstm_state_size() how many bytes, then lstm_state_init().
 *
 * Conventions
 *  - Every fallible call returns an lstm_status; LSTM_OK is 0; results come back through out-parameters.
 *    On any error the out-parameters and the state are left unchanged.
 *  - All tensors are float32, row-major, C order. "x" has input_size floats; "y" has output_size floats.
 *  - lstm_step, lstm_run and lstm_step_many never allocate, lock, or do I/O; the library has no mutable
 *    globals. A model may be used by many threads at once; one state must not be used by two threads at
 *    the same time.
 *  - Inputs that are NaN or infinite are rejected with LSTM_E_NONFINITE_INPUT before anything changes.
 *
 * Minimal use:
 *     lstm_model *m;  lstm_state *s;
 *     if (lstm_model_open(bytes, nbytes, &m) != LSTM_OK) ...;
 *     void *buf = malloc(lstm_state_size(m));
 *     lstm_state_init(m, buf, lstm_state_size(m), &s);
 *     for (each frame) lstm_step(s, x, y);
 *     free(buf); lstm_model_close(m);
 */
#ifndef LSTM_H
#define LSTM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LSTM_VERSION_MAJOR 0
#define LSTM_VERSION_MINOR 2
#define LSTM_VERSION_PATCH 0
/* The library's ABI version: the SONAME of the shared library (liblstm_embed.so.<ABI>). Bumped whenever a
 * public struct, enum value or signature changes incompatibly. */
#define LSTM_ABI_VERSION 1

/* LSTM_API marks the public functions. A shared build exports only these (everything else has hidden
 * visibility); define LSTM_STATIC when linking the static library on Windows. */
#ifndef LSTM_API
#if defined(_WIN32) && !defined(LSTM_STATIC)
#ifdef LSTM_BUILDING_LIBRARY
#define LSTM_API __declspec(dllexport)
#else
#define LSTM_API __declspec(dllimport)
#endif
#elif defined(__GNUC__) || defined(__clang__)
#define LSTM_API __attribute__((visibility("default")))
#else
#define LSTM_API
#endif
#endif

/* Limits on values (checked when a model opens, a snapshot is restored, or an input is stepped). Within
 * them every sum the kernels form stays far from float overflow, so a model that opened never produces NaN
 * or infinity from finite inputs. */
#define LSTM_MAX_ABS_WEIGHT 1048576.0f     /* 2^20: |weight|, |bias|, |scale * 127| of every tensor */
#define LSTM_MAX_ABS_INPUT 18446744073709551616.0f /* 2^64: |x| of every input value */

/* Largest number of stacked layers a model file may declare. */
#define LSTM_MAX_LAYERS 16

/* Status codes. Values are stable and only ever appended to. */
typedef enum lstm_status {
    LSTM_OK = 0,
    LSTM_E_INVALID_ARGUMENT = 1,    /* a NULL pointer or an out-of-range argument */
    LSTM_E_BUFFER_TOO_SMALL = 2,    /* a caller buffer is smaller than the size function said */
    LSTM_E_TRUNCATED = 3,           /* model bytes shorter than the header or the declared file size */
    LSTM_E_BAD_MAGIC = 4,           /* not a model file: the first 8 bytes are not the magic */
    LSTM_E_UNSUPPORTED_VERSION = 5, /* a format version this build does not read */
    LSTM_E_CHECKSUM = 6,            /* CRC32 mismatch: the bytes were altered or damaged */
    LSTM_E_BAD_HEADER = 7,          /* a header field is out of range or inconsistent */
    LSTM_E_BAD_TENSOR = 8,          /* a tensor is missing, repeated, misplaced, misaligned or mis-shaped */
    LSTM_E_NONFINITE_WEIGHT = 9,    /* a weight or bias is NaN or infinite */
    LSTM_E_MISALIGNED = 10,         /* the model bytes do not start on a 4-byte boundary */
    LSTM_E_NONFINITE_INPUT = 11,    /* an input value is NaN or infinite; nothing was changed */
    LSTM_E_WRONG_MODEL = 12,        /* the state or snapshot belongs to another model */
    LSTM_E_BAD_SNAPSHOT = 13,       /* snapshot bytes are truncated, damaged or not a snapshot */
    LSTM_E_UNSUPPORTED = 14,        /* this model cannot do that (e.g. lstm_step on a bidirectional model) */
    LSTM_E_BAD_STATE = 15,          /* not an initialised state (never initialised, or overwritten) */
    LSTM_E_OUT_OF_MEMORY = 16,      /* malloc failed (only the convenience lstm_model_open allocates) */
    LSTM_E_INPUT_RANGE = 17,        /* an input value's magnitude exceeds LSTM_MAX_ABS_INPUT; nothing changed */
    LSTM_E_ISA_UNAVAILABLE = 18     /* this CPU or this build lacks the requested instruction set */
} lstm_status;

/* A short English description of a status ("checksum mismatch ..."); never NULL. */
LSTM_API const char *lstm_status_str(lstm_status status);

/* Activation applied after the optional dense head. */
typedef enum lstm_activation {
    LSTM_ACT_NONE = 0,
    LSTM_ACT_SIGMOID = 1,
    LSTM_ACT_TANH = 2,
    LSTM_ACT_RELU = 3,
    LSTM_ACT_SOFTMAX = 4
} lstm_activation;

/* Numeric format of a layer's weights, and how it computes. */
typedef enum lstm_layer_dtype {
    LSTM_LAYER_FP32 = 0,        /* float32 weights through BLAS */
    LSTM_LAYER_INT8 = 1,        /* int8 weights (one scale per row) times float activations */
    LSTM_LAYER_INT8_DYNAMIC = 2 /* int8 weights times int8 activations quantised at every step (x and h
                                   each with their own scale), int32 accumulation */
} lstm_layer_dtype;

/* Instruction-set paths of the kernels. Every kernel that has ISA variants (fp32 and int8 products,
 * activation quantisation, the gate epilogue, the cell update and activations) comes from one table per
 * ISA, chosen when a model is opened (or by lstm_model_set_isa); nothing else picks code behind it.
 * int8 and int8-dynamic layers and every head give bit-identical results on every ISA and target; fp32
 * layers use fused multiply-add where the ISA has it and agree within float rounding (README). */
typedef enum lstm_isa {
    LSTM_ISA_AUTO = 0,          /* the best this CPU has (chosen when the model is opened) */
    LSTM_ISA_REFERENCE = 1,     /* portable C, always available */
    LSTM_ISA_AVX2 = 2,          /* x86-64 AVX2 + FMA */
    LSTM_ISA_AVX512_VNNI = 3,   /* x86-64 AVX-512 (F, BW, VL) with VNNI */
    LSTM_ISA_NEON = 4,          /* ARM Advanced SIMD (aarch64, or 32-bit ARMv7-A with NEON) */
    LSTM_ISA_NEON_DOT = 5,      /* aarch64 NEON with the dot-product extension (ARMv8.2-A SDOT) */
    LSTM_ISA_CORTEX_M_DSP = 6,  /* Cortex-M with the DSP extension (M4, M7, M33): SMLAD, chosen at build */
    LSTM_ISA_BLAS = 7           /* fp32 products through the linked CBLAS (builds with LSTM_USE_CBLAS),
                                   the rest portable C; the BLAS may allocate or lock inside its calls */
} lstm_isa;
#define LSTM_ISA_COUNT 8

/* 1 if this build and this CPU can run kernels of `isa` (LSTM_ISA_AUTO: always 1), else 0. Thread-safe. */
LSTM_API int lstm_isa_supported(lstm_isa isa);
/* The ISA that LSTM_ISA_AUTO picks on this CPU. */
LSTM_API lstm_isa lstm_isa_best(void);
/* A short lower-case name ("reference", "avx2", "avx512_vnni", "neon", ...); "unknown" for other values. */
LSTM_API const char *lstm_isa_name(lstm_isa isa);

/* The library's version as "MAJOR.MINOR.PATCH" (of the library that was linked, which may differ from the
 * LSTM_VERSION_* macros of the header a program was compiled with). */
LSTM_API const char *lstm_version(void);
/* The same as MAJOR * 10000 + MINOR * 100 + PATCH. */
LSTM_API unsigned lstm_version_number(void);

typedef struct lstm_model lstm_model;
typedef struct lstm_state lstm_state;

/* What a model is, as read from its file. */
typedef struct lstm_model_info {
    uint32_t format_version;
    uint32_t input_size;     /* floats per input step */
    uint32_t hidden_size;    /* H: units per layer (cell state size) */
    uint32_t proj_size;      /* P: LSTMP projection size, 0 when the model has none */
    uint32_t num_layers;
    uint32_t num_directions; /* 1, or 2 for a bidirectional model (lstm_run only) */
    uint32_t head_size;      /* rows of the dense head, 0 when the model has none */
    uint32_t head_activation;/* an lstm_activation */
    uint32_t output_size;    /* floats per output step: head_size, or (P or H) * num_directions */
    uint32_t layer_dtype[LSTM_MAX_LAYERS]; /* an lstm_layer_dtype per layer; unused entries are 0 */
    uint64_t fingerprint;    /* identifies the weights; snapshots carry it */
    uint64_t file_size;      /* bytes of the model file */
    uint64_t param_count;    /* weights and biases */
    uint32_t isa;            /* the lstm_isa of the kernels in use (see lstm_model_set_isa) */
} lstm_model_info;

/* ---- model ------------------------------------------------------------------------------------------ */

/* Bytes of caller memory that lstm_model_init needs on this target, as a compile-time constant (for a
 * static array on a device without malloc); any alignment will do. lstm_model_mem_size() returns the same. */
#define LSTM_MODEL_MEM_SIZE (512 + 2 * LSTM_MAX_LAYERS * (16 + 12 * sizeof(void *)))

/* Validate a model file of `len` bytes at `data` and open it without copying: `data` must stay valid and
 * unchanged until the model is closed, and must start on a 4-byte boundary (64 is best: lstm-embed
 * export-c aligns its array so). Every header field, tensor position and shape, the CRC32, the
 * fingerprint (recomputed from the tensors), and every value's range (finite, |w| <= LSTM_MAX_ABS_WEIGHT,
 * int8 values in [-127, 127], exact row sums, scales >= 0) are checked here, once; on success nothing is
 * checked again. Statuses: LSTM_E_TRUNCATED, LSTM_E_BAD_MAGIC, LSTM_E_UNSUPPORTED_VERSION,
 * LSTM_E_CHECKSUM, LSTM_E_BAD_HEADER, LSTM_E_BAD_TENSOR, LSTM_E_NONFINITE_WEIGHT (a value NaN, infinite
 * or out of range), LSTM_E_MISALIGNED, LSTM_E_INVALID_ARGUMENT (a NULL pointer). `len` may exceed the file
 * (the rest is ignored). lstm_model_open allocates the small model descriptor with malloc (free it with
 * lstm_model_close; LSTM_E_OUT_OF_MEMORY if malloc fails); lstm_model_init places it in caller memory of
 * LSTM_MODEL_MEM_SIZE bytes at any alignment instead, for systems without malloc (then lstm_model_close
 * only marks it closed): a shorter `mem` gives LSTM_E_BUFFER_TOO_SMALL. Both pick the kernels of
 * lstm_isa_best(). Stack: under 1 KB on 32-bit targets (measured in CI with -fstack-usage). */
LSTM_API lstm_status lstm_model_open(const void *data, size_t len, lstm_model **out);
LSTM_API size_t lstm_model_mem_size(void);
LSTM_API lstm_status lstm_model_init(void *mem, size_t mem_len, const void *data, size_t len, lstm_model **out);
/* Release a model from lstm_model_open. NULL is fine. Its states must no longer be used. */
LSTM_API void lstm_model_close(lstm_model *model);

/* Fill *info. Thread-safe. */
LSTM_API lstm_status lstm_model_get_info(const lstm_model *model, lstm_model_info *info);

/* Choose the kernels' instruction set (lstm_model_open picks LSTM_ISA_AUTO). Call it before the
 * model is used, not while another thread steps it. LSTM_E_UNSUPPORTED if this CPU or build lacks it. */
LSTM_API lstm_status lstm_model_set_isa(lstm_model *model, lstm_isa isa);

/* ---- state (one stream) ----------------------------------------------------------------------------- */

/* Bytes a state of this model needs: h and c of every layer, scratch, and alignment slack. 0 if model
 * is NULL. The buffer may have any alignment. */
LSTM_API size_t lstm_state_size(const lstm_model *model);

/* Lay out a zeroed state in `buf` (`len` bytes, at least lstm_state_size) and return it in *out. The
 * state refers to the model: keep the model open while the state is used. LSTM_E_BUFFER_TOO_SMALL if
 * len is short. */
LSTM_API lstm_status lstm_state_init(const lstm_model *model, void *buf, size_t len, lstm_state **out);

/* Set h and c of every layer back to zero. */
LSTM_API lstm_status lstm_state_reset(lstm_state *state);

/* One timestep: read x[input_size], update the state, write y[output_size]. x and y may not overlap the
 * state buffer. LSTM_E_UNSUPPORTED for a bidirectional model (it needs the whole sequence: lstm_run). */
LSTM_API lstm_status lstm_step(lstm_state *state, const float *x, float *y);

/* Bytes of workspace that lets lstm_run process `steps` timesteps per pass (the input projection of all
 * of them done as one matrix product per layer). */
LSTM_API size_t lstm_run_workspace_size(const lstm_model *model, size_t steps);

/* T timesteps: xs is [steps][input_size], ys is [steps][output_size]; the state carries over exactly as
 * if lstm_step were called `steps` times (results agree within float rounding, ~1e-7 relative). `work`
 * (`work_len` bytes, any alignment) may be NULL: then the steps run one by one. With a workspace of
 * lstm_run_workspace_size(model, k) bytes, steps run in chunks of k. A bidirectional model treats xs as
 * one whole sequence starting from a zero state (its state is not used or changed) and needs a workspace
 * for all `steps`, else LSTM_E_BUFFER_TOO_SMALL. steps == 0 is valid and does nothing. */
LSTM_API lstm_status lstm_run(lstm_state *state, const float *xs, size_t steps, float *ys,
                     void *work, size_t work_len);

/* Bytes of workspace lstm_step_many needs for n streams. */
LSTM_API size_t lstm_step_many_workspace_size(const lstm_model *model, size_t n);

/* One timestep for n streams of the same model at once (one matrix product per layer): xs is
 * [n][input_size], ys is [n][output_size], states[i] is stream i. The states must be distinct.
 * LSTM_E_WRONG_MODEL if a state belongs to another model. */
LSTM_API lstm_status lstm_step_many(const lstm_model *model, lstm_state *const *states, size_t n,
                           const float *xs, float *ys, void *work, size_t work_len);

/* ---- snapshots -------------------------------------------------------------------------------------- */

/* Bytes of a snapshot of a state of this model. */
LSTM_API size_t lstm_snapshot_size(const lstm_model *model);

/* Write h and c of every layer, the model fingerprint and a CRC32 into buf. */
LSTM_API lstm_status lstm_state_snapshot(const lstm_state *state, void *buf, size_t len);

/* Restore a state from a snapshot. LSTM_E_WRONG_MODEL if it was taken from a model with other weights
 * or shape; LSTM_E_BAD_SNAPSHOT if the bytes are damaged; the state is unchanged on error. */
LSTM_API lstm_status lstm_state_restore(lstm_state *state, const void *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* LSTM_H */
