# Cython declarations mirroring src/lstm_c/lstm.h (the public C API, declared without its LSTM_API macro) and lstm_format.h (file constants).
from libc.stdint cimport int16_t, uint32_t, uint64_t


cdef extern from "lstm.h" nogil:
    enum: LSTM_MAX_LAYERS
    enum: LSTM_ISA_COUNT
    const float LSTM_MAX_ABS_WEIGHT
    const float LSTM_MAX_ABS_INPUT

    ctypedef enum lstm_status:
        LSTM_OK
        LSTM_E_INVALID_ARGUMENT
        LSTM_E_BUFFER_TOO_SMALL
        LSTM_E_TRUNCATED
        LSTM_E_BAD_MAGIC
        LSTM_E_UNSUPPORTED_VERSION
        LSTM_E_CHECKSUM
        LSTM_E_BAD_HEADER
        LSTM_E_BAD_TENSOR
        LSTM_E_NONFINITE_WEIGHT
        LSTM_E_MISALIGNED
        LSTM_E_NONFINITE_INPUT
        LSTM_E_WRONG_MODEL
        LSTM_E_BAD_SNAPSHOT
        LSTM_E_UNSUPPORTED
        LSTM_E_BAD_STATE
        LSTM_E_OUT_OF_MEMORY
        LSTM_E_INPUT_RANGE
        LSTM_E_ISA_UNAVAILABLE

    const char *lstm_status_str(lstm_status status)

    ctypedef enum lstm_activation:
        LSTM_ACT_NONE
        LSTM_ACT_SIGMOID
        LSTM_ACT_TANH
        LSTM_ACT_RELU
        LSTM_ACT_SOFTMAX

    ctypedef enum lstm_layer_dtype:
        LSTM_LAYER_FP32
        LSTM_LAYER_INT8
        LSTM_LAYER_INT8_DYNAMIC
        LSTM_LAYER_INT8_A16
        LSTM_LAYER_INT16X8

    ctypedef enum lstm_isa:
        LSTM_ISA_AUTO
        LSTM_ISA_REFERENCE
        LSTM_ISA_AVX2
        LSTM_ISA_AVX512_VNNI
        LSTM_ISA_NEON
        LSTM_ISA_NEON_DOT
        LSTM_ISA_CORTEX_M_DSP
        LSTM_ISA_BLAS
        LSTM_ISA_AMX_INT8
        LSTM_ISA_AVX2_VNNI

    int lstm_isa_supported(lstm_isa isa)
    lstm_isa lstm_isa_best()
    const char *lstm_isa_name(lstm_isa isa)
    const char *lstm_version()
    unsigned lstm_version_number()

    ctypedef struct lstm_model:
        pass
    ctypedef struct lstm_state:
        pass

    ctypedef struct lstm_model_info:
        uint32_t format_version
        uint32_t input_size
        uint32_t hidden_size
        uint32_t proj_size
        uint32_t num_layers
        uint32_t num_directions
        uint32_t head_size
        uint32_t head_activation
        uint32_t output_size
        uint32_t layer_dtype[LSTM_MAX_LAYERS]
        uint64_t fingerprint
        uint64_t file_size
        uint64_t param_count
        uint32_t isa

    lstm_status lstm_model_open(const void *data, size_t len, lstm_model **out)
    size_t lstm_model_mem_size()
    lstm_status lstm_model_init(void *mem, size_t mem_len, const void *data, size_t len, lstm_model **out)
    void lstm_model_close(lstm_model *model)
    lstm_status lstm_model_get_info(const lstm_model *model, lstm_model_info *info)
    lstm_status lstm_model_set_isa(lstm_model *model, lstm_isa isa)

    size_t lstm_state_size(const lstm_model *model)
    lstm_status lstm_state_init(const lstm_model *model, void *buf, size_t len, lstm_state **out)
    size_t lstm_compact_state_size(const lstm_model *model)
    lstm_status lstm_compact_state_init(const lstm_model *model, void *buf, size_t len, lstm_state **out)
    size_t lstm_step_workspace_size(const lstm_model *model)
    lstm_status lstm_step_ws(lstm_state *state, const float *x, float *y, void *work, size_t work_len) nogil
    lstm_status lstm_state_reset(lstm_state *state)
    size_t lstm_trace_floats(const lstm_model *model)
    lstm_status lstm_step_trace(lstm_state *state, const float *x, float *y, float *trace) nogil
    lstm_status lstm_step(lstm_state *state, const float *x, float *y)
    lstm_status lstm_step_int(lstm_state *state, const int16_t *x, int16_t *y)
    lstm_status lstm_model_int_scales(const lstm_model *model, float *input_scale, float *output_scale)
    size_t lstm_run_workspace_size(const lstm_model *model, size_t steps)
    lstm_status lstm_run(lstm_state *state, const float *xs, size_t steps, float *ys, void *work, size_t work_len)
    size_t lstm_step_many_workspace_size(const lstm_model *model, size_t n)
    lstm_status lstm_step_many(const lstm_model *model, lstm_state *const *states, size_t n,
                               const float *xs, float *ys, void *work, size_t work_len)

    size_t lstm_snapshot_size(const lstm_model *model)
    lstm_status lstm_state_snapshot(const lstm_state *state, void *buf, size_t len)
    lstm_status lstm_state_restore(lstm_state *state, const void *buf, size_t len)


cdef extern from "lstm_format.h":
    const char *LSTM_FILE_MAGIC
    enum:
        LSTM_FILE_MAGIC_LEN
        LSTM_FORMAT_VERSION
        LSTM_TENSOR_ALIGN
        LSTM_HDR_MAGIC
        LSTM_HDR_VERSION
        LSTM_HDR_HEADER_SIZE
        LSTM_HDR_FILE_SIZE
        LSTM_HDR_CRC32
        LSTM_HDR_FLAGS
        LSTM_HDR_FINGERPRINT
        LSTM_HDR_INPUT_SIZE
        LSTM_HDR_HIDDEN_SIZE
        LSTM_HDR_PROJ_SIZE
        LSTM_HDR_NUM_LAYERS
        LSTM_HDR_NUM_DIRECTIONS
        LSTM_HDR_HEAD_SIZE
        LSTM_HDR_HEAD_ACTIVATION
        LSTM_HDR_TENSOR_COUNT
        LSTM_HDR_LAYER_DTYPES
        LSTM_HDR_RESERVED
        LSTM_HDR_SIZE
        LSTM_TENSOR_ENTRY_SIZE
        LSTM_TENSOR_ROLE
        LSTM_TENSOR_INDEX
        LSTM_TENSOR_DTYPE
        LSTM_TENSOR_ROWS
        LSTM_TENSOR_COLS
        LSTM_TENSOR_RESERVED
        LSTM_TENSOR_OFFSET
        LSTM_MAX_TENSORS
        LSTM_ROLE_WEIGHT
        LSTM_ROLE_BIAS
        LSTM_ROLE_PROJ
        LSTM_ROLE_HEAD_W
        LSTM_ROLE_HEAD_B
        LSTM_ROLE_W_SCALE
        LSTM_ROLE_W_ROWSUM
        LSTM_ROLE_PROJ_SCALE
        LSTM_ROLE_QPARAMS
        LSTM_ROLE_HEAD_QPARAMS
        LSTM_ROLE_IO_SCALES
        LSTM_QP_ROWS
        LSTM_HQP_ROWS
        LSTM_IO_COLS
        LSTM_INT_MAX_WIDTH
        LSTM_DTYPE_F32
        LSTM_DTYPE_I8_BLOCKED
        LSTM_DTYPE_F32_PANELS
        LSTM_DTYPE_I32
        LSTM_Q8_BLOCK_ROWS
        LSTM_Q8_BLOCK_COLS
        LSTM_MAX_DIM
