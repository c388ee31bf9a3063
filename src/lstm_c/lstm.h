/*
 * lstm.h - the public C API of lstm_embed, an embedded LSTM inference library.
 *
 * The model is a read-only view over bytes the caller owns (a file read or mapped into memory, a const
 * array in flash, a Python bytes object). It is validated once when opened and never copied; any number
 * of threads and streams may share it. Each stream's state (h and c of every layer plus scratch) lives in
 * a buffer the caller provides: ask lstm_state_size() how many bytes, then lstm_state_init(). A server
 * with many streams uses compact states instead (h and c only, lstm_compact_state_init) and one
 * workspace per thread for the scratch (lstm_step_many, lstm_step_ws).
 *
 * Conventions
 *  - Every fallible call returns an lstm_status; LSTM_OK is 0; results come back through out-parameters.
 *    On any error the out-parameters and the state are left unchanged.
 *  - Inputs and outputs are float32, row-major, C order: "x" has input_size floats, "y" has output_size
 *    floats. The one exception is lstm_step_int (integer-only int16x8 models, docs/int16x8.md): int16 x and
 *    y, real values x = xq * input_scale and y = yq * output_scale (lstm_model_int_scales). Inside a model
 *    file the weights are float32 or int8 by layer dtype; an int16x8 model also stores int32 requantisation
 *    parameters, and its state holds h and c as int32 fixed point in the 4-byte slots of the float h and c.
 *  - lstm_step, lstm_step_int, lstm_run and lstm_step_many never allocate, lock, or do I/O; the library has no mutable
 *    globals. A model may be used by many threads at once; one state must not be used by two threads at
 *    the same time.
 *  - Inputs that are NaN or infinite are rejected with LSTM_E_NONFINITE_INPUT, inputs beyond
 *    LSTM_MAX_ABS_INPUT with LSTM_E_INPUT_RANGE, before anything changes. A model that opened never
 *    produces NaN or infinity from accepted inputs, and a state's own snapshot always restores.
 *  - Each function below lists every status it returns. Size functions return 0 for a NULL or closed
 *    model. Strings returned by the library are static and never NULL.
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
#define LSTM_VERSION_MINOR 3
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
    LSTM_E_MISALIGNED = 10,         /* model bytes not on a 4-byte boundary, a compact state not on 8 */
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
    LSTM_LAYER_FP32 = 0,        /* float32 weights in packed panels (our own kernels; CBLAS only as isa "blas") */
    LSTM_LAYER_INT8 = 1,        /* int8 weights (one scale per row) times float activations */
    LSTM_LAYER_INT8_DYNAMIC = 2,/* int8 weights times int8 activations quantised at every step (x and h
                                   each with their own scale), int32 accumulation */
    LSTM_LAYER_INT8_A16 = 3,    /* int8 weights (the same stored tensors as int8-dynamic) times int16
                                   activations quantised at every step: x and h each symmetric per vector,
                                   q = round-half-even(v * 32767 / max|v|) in [-32767, 32767], scale
                                   max|v| / 32767; the int8 x int16 products summed exactly (int32 over
                                   blocks of at most 512 columns, LSTM_S16_BLOCK_GROUPS groups of 4, then
                                   int64: no model can overflow, |sum| < 127 * 32767 * 131072 < 2^53), then
                                   one float epilogue, the same on every ISA (kernels.h) */
    LSTM_LAYER_INT16X8 = 4      /* integer-only (no float instruction in the step): int8 weights, int16
                                   activations and h (Q0.15), int32 cell state (Q11.20), table sigmoid and
                                   tanh, requantisation by integer multiplier and shift (docs/int16x8.md).
                                   Every layer of such a model is int16x8: step it with lstm_step_int */
} lstm_layer_dtype;

/* Instruction-set paths of the kernels. Every kernel that has ISA variants (fp32 and int8 products,
 * activation quantisation, the gate epilogue, the cell update and activations) comes from one table per
 * ISA, chosen when a model is opened (or by lstm_model_set_isa); nothing else picks code behind it.
 * int8, int8-dynamic, int8-a16 and int16x8 layers and their heads give bit-identical results on every ISA and
 * target; fp32 layers use fused multiply-add where the ISA has it and agree within float rounding (README).
 * fp32 layers, and the head of a model whose top layer is fp32, compute sigmoid, tanh, exp and the cell
 * in double rounded once to float (within 0.5 ulp + 2^-13), except on targets without double-precision
 * hardware (Cortex-M, soft-float ARM), which use the float functions of quantised layers (absolute error
 * below 1e-7, 1-2 ulp where the result is not tiny). */
typedef enum lstm_isa {
    LSTM_ISA_AUTO = 0,          /* the best this CPU has (chosen when the model is opened) */
    LSTM_ISA_REFERENCE = 1,     /* portable C, always available */
    LSTM_ISA_AVX2 = 2,          /* x86-64 AVX2 + FMA */
    LSTM_ISA_AVX512_VNNI = 3,   /* x86-64 AVX-512 (F, BW, VL) with VNNI */
    LSTM_ISA_NEON = 4,          /* ARM Advanced SIMD (aarch64, or 32-bit ARMv7-A with NEON) */
    LSTM_ISA_NEON_DOT = 5,      /* aarch64 NEON with the dot-product extension (ARMv8.2-A SDOT) */
    LSTM_ISA_CORTEX_M_DSP = 6,  /* Cortex-M with the DSP extension (M4, M7, M33): SMLAD, chosen at build */
    LSTM_ISA_BLAS = 7,          /* fp32 products through the linked CBLAS (builds with LSTM_USE_CBLAS),
                                   the rest portable C; the BLAS may allocate or lock inside its calls */
    LSTM_ISA_AMX_INT8 = 8,      /* avx512_vnni with the products of several vectors (lstm_run's input
                                   part, lstm_step_many; int8 x int8 from 2, int8 x int16 from 5) on Intel
                                   AMX tiles (AMX-TILE, AMX-INT8);
                                   Linux: lstm_isa_supported asks the kernel for the process's tile state
                                   (arch_prctl ARCH_REQ_XCOMP_PERM) and says 0 where it is refused */
    LSTM_ISA_AVX2_VNNI = 9      /* avx2 with the int8 x int8 and int8 x int16 products (int8-dynamic,
                                   int8-a16 and int16x8 layers) on AVX-VNNI's 256-bit vpdpbusd: Intel
                                   cores without AVX-512 from Alder Lake on */
} lstm_isa;
#define LSTM_ISA_COUNT 10

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

/* lstm_model_open: validate a model file of `len` bytes at `data` and open it without copying.
 *   data      the file's bytes; must stay valid and unchanged until the model is closed, and start on a
 *             4-byte boundary. 64 is best: `lstm-embed export-c` aligns its array so, Model.from_bytes
 *             copies to 64; malloc's 16 made the AVX-512 batched fp32 products ~25% slower (every weight
 *             load split two cache lines; step_many of 64 streams at H = 256: 695 against 538 us).
 *             `len` may exceed the file (the rest is ignored).
 *   *out      receives the model; unchanged on error.
 * Checked here, once (nothing is checked again later): every header field, each tensor's position, shape,
 * alignment and overlap, the CRC32, the fingerprint (recomputed from the tensors), and every value: finite,
 * |weight|, |bias| <= LSTM_MAX_ABS_WEIGHT, int8 values in [-127, 127] with zero padding, exact row sums,
 * scales in [0, LSTM_MAX_ABS_WEIGHT / 127].
 * Returns LSTM_OK; LSTM_E_INVALID_ARGUMENT (data or out NULL); LSTM_E_MISALIGNED; LSTM_E_TRUNCATED;
 * LSTM_E_BAD_MAGIC; LSTM_E_UNSUPPORTED_VERSION; LSTM_E_BAD_HEADER; LSTM_E_CHECKSUM (CRC or fingerprint);
 * LSTM_E_BAD_TENSOR; LSTM_E_NONFINITE_WEIGHT (a value NaN, infinite or out of range);
 * LSTM_E_OUT_OF_MEMORY (malloc of the small descriptor failed).
 * Kernels: those of lstm_isa_best() (change with lstm_model_set_isa).
 * Memory: one malloc of LSTM_MODEL_MEM_SIZE bytes, freed by lstm_model_close.
 * Stack: under 1 KB (no large locals; the CRC uses a 16-entry table).
 * Thread safety: any number of threads may open models at once; the library has no mutable globals. */
LSTM_API lstm_status lstm_model_open(const void *data, size_t len, lstm_model **out);

/* LSTM_MODEL_MEM_SIZE, for a caller that asks at run time. */
LSTM_API size_t lstm_model_mem_size(void);

/* lstm_model_init: lstm_model_open without malloc, for systems that have none: the descriptor is placed
 * in `mem` (`mem_len` >= LSTM_MODEL_MEM_SIZE bytes, any alignment, e.g. a static unsigned char array).
 * `mem` must stay valid while the model is used; lstm_model_close then only marks it closed.
 * Returns what lstm_model_open returns, except LSTM_E_OUT_OF_MEMORY, plus LSTM_E_BUFFER_TOO_SMALL
 * (mem_len short) and LSTM_E_INVALID_ARGUMENT (mem NULL). On error `mem` may have been written. */
LSTM_API lstm_status lstm_model_init(void *mem, size_t mem_len, const void *data, size_t len, lstm_model **out);

/* lstm_model_close: release a model from lstm_model_open (or mark one from lstm_model_init closed). NULL
 * and an already closed model are fine. Its states must no longer be used: they then fail with
 * LSTM_E_BAD_STATE while the descriptor memory still exists (lstm_model_init), and must not be touched at
 * all after lstm_model_open's memory is freed. Not while another thread uses the model. */
LSTM_API void lstm_model_close(lstm_model *model);

/* lstm_model_get_info: fill *info. Returns LSTM_OK or LSTM_E_INVALID_ARGUMENT (NULL, or a closed model).
 * Thread-safe. */
LSTM_API lstm_status lstm_model_get_info(const lstm_model *model, lstm_model_info *info);

/* lstm_model_set_isa: choose the kernels' instruction set (LSTM_ISA_AUTO: lstm_isa_best()). Outputs
 * depend on it only as the table above lstm_isa says. Call it before the model is used, not while another
 * thread steps it. Returns LSTM_OK; LSTM_E_INVALID_ARGUMENT (NULL or closed model);
 * LSTM_E_ISA_UNAVAILABLE (this CPU or build lacks it: see lstm_isa_supported); the model is unchanged on
 * error. */
LSTM_API lstm_status lstm_model_set_isa(lstm_model *model, lstm_isa isa);

/* ---- state (one stream) ----------------------------------------------------------------------------- */

/* lstm_state_size: bytes a (full) state of this model needs (h and c of every layer, the scratch of a
 * step, alignment slack);
 * 0 if model is NULL or closed. The buffer may have any alignment. */
LSTM_API size_t lstm_state_size(const lstm_model *model);

/* lstm_state_init: lay out a zeroed state in `buf` (`len` bytes, at least lstm_state_size) and return it in
 * *out. The state refers to the model: keep the model open while the state is used; `buf` belongs to the
 * caller (free it when done; there is no lstm_state_free). Returns LSTM_OK; LSTM_E_INVALID_ARGUMENT (a
 * NULL argument or a closed model); LSTM_E_BUFFER_TOO_SMALL. */
LSTM_API lstm_status lstm_state_init(const lstm_model *model, void *buf, size_t len, lstm_state **out);

/* Compact states, for servers holding many streams: h and c of every layer after a 32-byte header, and
 * no scratch. Step them with lstm_step_many (any subset at once), lstm_step_ws or lstm_run with a
 * workspace; lstm_step on a compact state returns LSTM_E_BUFFER_TOO_SMALL. Snapshots, restore and reset
 * work as for a full state, and the two kinds' snapshots are interchangeable.
 * lstm_compact_state_size: bytes of one compact state (32 + 4 * (h and c floats), rounded up to 16); 0 if
 * model is NULL or closed. An array of them from one 8-byte-aligned block keeps each one aligned. */
LSTM_API size_t lstm_compact_state_size(const lstm_model *model);

/* lstm_compact_state_init: lay out a zeroed compact state in `buf` (8-byte aligned, `len` bytes, at least
 * lstm_compact_state_size). Returns LSTM_OK; LSTM_E_INVALID_ARGUMENT; LSTM_E_MISALIGNED (buf not on an
 * 8-byte boundary); LSTM_E_BUFFER_TOO_SMALL. */
LSTM_API lstm_status lstm_compact_state_init(const lstm_model *model, void *buf, size_t len, lstm_state **out);

/* lstm_state_is_compact: 1 for an initialised compact state, else 0. */
LSTM_API int lstm_state_is_compact(const lstm_state *state);

/* lstm_step_workspace_size: bytes of workspace lstm_step_ws needs (any alignment; 0 if model is NULL or
 * closed). One workspace per thread serves every stream that thread steps. */
LSTM_API size_t lstm_step_workspace_size(const lstm_model *model);

/* lstm_step_ws: lstm_step with the scratch in `work` (`work_len` bytes, at least
 * lstm_step_workspace_size) instead of the state: for compact and full states alike, the same bits as
 * lstm_step. Returns what lstm_step returns, and LSTM_E_BUFFER_TOO_SMALL (work NULL or short). */
LSTM_API lstm_status lstm_step_ws(lstm_state *state, const float *x, float *y, void *work, size_t work_len);

/* lstm_state_reset: set h and c of every layer back to zero. Returns LSTM_OK; LSTM_E_INVALID_ARGUMENT
 * (NULL); LSTM_E_BAD_STATE (not an initialised state, or its model was closed). */
LSTM_API lstm_status lstm_state_reset(lstm_state *state);

/* lstm_step: one timestep. Reads x[input_size], updates the state, writes y[output_size]. x and y must not
 * overlap the state buffer. Never allocates, locks or does I/O. On an int16x8 model (and so in lstm_step_ws,
 * lstm_run, lstm_step_many and lstm_step_trace): x is checked as for every model, quantised to
 * clamp(round_half_even(x * inv_input_scale), -32767, 32767) in float32, stepped by lstm_step_int's integer
 * step and y = yq * output_scale: the same bits on every ISA and target.
 * Returns LSTM_OK; LSTM_E_INVALID_ARGUMENT (a NULL argument); LSTM_E_BAD_STATE; LSTM_E_BUFFER_TOO_SMALL (a
 * compact state: it has no scratch, use lstm_step_ws); LSTM_E_UNSUPPORTED (a
 * bidirectional model: it needs the whole sequence, lstm_run); LSTM_E_NONFINITE_INPUT (a NaN or infinity
 * in x); LSTM_E_INPUT_RANGE (|x[i]| > LSTM_MAX_ABS_INPUT). On error the state and y are unchanged.
 * Thread safety: one state must not be used by two threads at once; different states of one model may. */
LSTM_API lstm_status lstm_step(lstm_state *state, const float *x, float *y);

/* lstm_step_int: one timestep of an integer-only (int16x8) model with no floating point at all (docs/int16x8.md):
 * reads x[input_size] int16 (the real input is x * input_scale, any int16), updates the state, writes
 * y[output_size] int16 (real output y * output_scale; Q0.15 for sigmoid, tanh and softmax heads and for a
 * model without a head). x and y must not overlap the state buffer. The same bits on every ISA and target,
 * and the same as lstm_step on the float x that quantises to these x (lstm_step quantises with
 * inv_input_scale). Never allocates, locks or does I/O; links no soft-float routine on an FPU-less core.
 * Returns LSTM_OK; LSTM_E_INVALID_ARGUMENT (a NULL argument); LSTM_E_BAD_STATE; LSTM_E_UNSUPPORTED (a model
 * that is not integer-only: use lstm_step); LSTM_E_BUFFER_TOO_SMALL (a compact state: it has no scratch).
 * On error the state and y are unchanged. Thread safety: as lstm_step. */
LSTM_API lstm_status lstm_step_int(lstm_state *state, const int16_t *x, int16_t *y);

/* lstm_model_int_scales: the two real scales of an integer-only (int16x8) model, for the host that
 * quantises inputs and reads outputs (the device needs neither): x = xq * *input_scale, y = yq * *output_scale.
 * Returns LSTM_OK; LSTM_E_INVALID_ARGUMENT (a NULL argument or a closed model); LSTM_E_UNSUPPORTED (not an
 * integer-only model). The outputs are unchanged on error. Thread-safe. */
LSTM_API lstm_status lstm_model_int_scales(const lstm_model *model, float *input_scale, float *output_scale);

/* Gate traces: what each layer did in a step, from the same code as lstm_step (a unidirectional model).
 * lstm_trace_floats: floats of one step's trace: per layer, in order, the gate activations i, f, g, o
 * (4 * hidden_size, in that order), the cell state c (hidden_size) and h (proj_size or hidden_size), all
 * after the step (an int16x8 model's fixed-point values in real units: gates and h as q / 2^15, c as
 * c / 2^20). An fp32 layer's cell forms c and h from the pre-activations without rounding the gates to
 * float, so its traced gates are the step's pre-activations through the library's precise sigmoid and
 * tanh, each within 0.5 ulp of exact (c and h are the step's own). 0 if model is NULL or closed. */
LSTM_API size_t lstm_trace_floats(const lstm_model *model);

/* lstm_step_trace: lstm_step (the same bits in y and the state) that also writes the step's trace into
 * trace[lstm_trace_floats]. Returns what lstm_step returns; LSTM_E_INVALID_ARGUMENT for a NULL trace; on
 * error trace is unchanged. */
LSTM_API lstm_status lstm_step_trace(lstm_state *state, const float *x, float *y, float *trace);

/* lstm_run_workspace_size: bytes of workspace that lets lstm_run process `steps` timesteps per pass (the
 * input projection of all of them as one matrix product per layer). 0 if the model is NULL or closed or
 * steps is 0; SIZE_MAX if no such buffer can exist. */
LSTM_API size_t lstm_run_workspace_size(const lstm_model *model, size_t steps);

/* lstm_run: `steps` timesteps. xs is [steps][input_size], ys is [steps][output_size]; the state carries
 * over as if lstm_step were called `steps` times (the same bits, every dtype and ISA). `work` (`work_len`
 * bytes, any alignment) may be NULL: then the steps run one by one (not for a compact state:
 * LSTM_E_BUFFER_TOO_SMALL); with lstm_run_workspace_size(model, k) bytes, in chunks of k. A bidirectional model
 * treats xs as one whole sequence from a zero state (its state is neither used nor changed) and needs a
 * workspace for all `steps`. steps == 0 is valid and does nothing. Never allocates, locks or does I/O.
 * Returns LSTM_OK; LSTM_E_INVALID_ARGUMENT (NULL xs or ys with steps > 0, or steps * input_size
 * overflows); LSTM_E_BAD_STATE; LSTM_E_NONFINITE_INPUT; LSTM_E_INPUT_RANGE (every input is checked before
 * any step runs); LSTM_E_BUFFER_TOO_SMALL (bidirectional model, workspace short). On error the state and
 * ys are unchanged. Thread safety: as lstm_step; `work` must not be shared by two calls at once. */
LSTM_API lstm_status lstm_run(lstm_state *state, const float *xs, size_t steps, float *ys,
                     void *work, size_t work_len);

/* lstm_step_many_workspace_size: bytes of workspace lstm_step_many needs for n streams (0 if the model is
 * NULL or closed or n is 0; SIZE_MAX if no such buffer can exist). */
LSTM_API size_t lstm_step_many_workspace_size(const lstm_model *model, size_t n);

/* lstm_step_many: one timestep for n streams of one model at once (one matrix product per layer): xs is
 * [n][input_size], ys is [n][output_size], states[i] is stream i (full or compact; the same bits as n
 * lstm_step calls). The states must be distinct (not
 * checked: a repeated state gets one of its updates). n == 0 is valid. Never allocates, locks or does I/O.
 * Returns LSTM_OK; LSTM_E_INVALID_ARGUMENT (a NULL argument with n > 0, or a closed model);
 * LSTM_E_UNSUPPORTED (bidirectional model); LSTM_E_BUFFER_TOO_SMALL (work NULL or shorter than
 * lstm_step_many_workspace_size); LSTM_E_BAD_STATE; LSTM_E_WRONG_MODEL (a state of another model);
 * LSTM_E_NONFINITE_INPUT; LSTM_E_INPUT_RANGE. On error no state and no output changed.
 * Thread safety: as lstm_step for each state; `work` must not be shared by two calls at once. */
LSTM_API lstm_status lstm_step_many(const lstm_model *model, lstm_state *const *states, size_t n,
                           const float *xs, float *ys, void *work, size_t work_len);

/* ---- snapshots -------------------------------------------------------------------------------------- */

/* lstm_snapshot_size: bytes of a snapshot of a state of this model (0 if NULL or closed). */
LSTM_API size_t lstm_snapshot_size(const lstm_model *model);

/* lstm_state_snapshot: write h and c of every layer, the model fingerprint and a CRC32 into buf (format:
 * lstm_format.h, docs/format.md). A state's own snapshot always restores. Returns LSTM_OK;
 * LSTM_E_INVALID_ARGUMENT (buf NULL); LSTM_E_BAD_STATE; LSTM_E_BUFFER_TOO_SMALL. Thread-safe while no
 * other thread changes the state. */
LSTM_API lstm_status lstm_state_snapshot(const lstm_state *state, void *buf, size_t len);

/* lstm_state_restore: set a state from a snapshot of `len` bytes (exactly lstm_snapshot_size). Returns
 * LSTM_OK; LSTM_E_INVALID_ARGUMENT (buf NULL); LSTM_E_BAD_STATE; LSTM_E_BAD_SNAPSHOT (truncated, damaged,
 * not a snapshot, or CRC-valid but holding values no state of this model can reach: |h| above 1 or the
 * projection's bound, |c| above 2^25, NaN; for an int16x8 model, whose snapshot words are int32, h outside
 * [-32767, 32767] or c = INT32_MIN); LSTM_E_WRONG_MODEL (taken from a model with other weights or
 * shape). The state is unchanged on error. */
LSTM_API lstm_status lstm_state_restore(lstm_state *state, const void *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* LSTM_H */
