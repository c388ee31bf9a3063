/* status.c - the text of each lstm_status (the codes themselves are defined in lstm.h), and the version. */
#include "lstm.h"

const char *lstm_status_str(lstm_status status) {
    switch (status) {
    case LSTM_OK: return "ok";
    case LSTM_E_INVALID_ARGUMENT: return "invalid argument (a NULL pointer or an out-of-range value)";
    case LSTM_E_BUFFER_TOO_SMALL: return "buffer too small: ask the matching *_size() function how many bytes";
    case LSTM_E_TRUNCATED: return "model data truncated: shorter than its header or declared file size";
    case LSTM_E_BAD_MAGIC: return "not an lstm_embed model file (bad magic bytes)";
    case LSTM_E_UNSUPPORTED_VERSION: return "model file format version not supported by this library version";
    case LSTM_E_CHECKSUM: return "model file checksum mismatch: the file is damaged or was modified";
    case LSTM_E_BAD_HEADER: return "model file header has an out-of-range or inconsistent field";
    case LSTM_E_BAD_TENSOR: return "model file tensor table is inconsistent (missing, repeated, misplaced or mis-shaped tensor)";
    case LSTM_E_NONFINITE_WEIGHT: return "model file holds a weight, bias or scale that is NaN, infinite or beyond +-2^20 (LSTM_MAX_ABS_WEIGHT)";
    case LSTM_E_MISALIGNED: return "model data must start on a 4-byte boundary";
    case LSTM_E_NONFINITE_INPUT: return "input contains NaN or infinity; the state was not changed";
    case LSTM_E_WRONG_MODEL: return "state or snapshot belongs to a different model";
    case LSTM_E_BAD_SNAPSHOT: return "snapshot is damaged, truncated or not a snapshot";
    case LSTM_E_UNSUPPORTED: return "operation not supported by this model (a bidirectional model steps only through lstm_run, over the whole sequence)";
    case LSTM_E_BAD_STATE: return "not an initialised state (or its model was closed)";
    case LSTM_E_OUT_OF_MEMORY: return "out of memory";
    case LSTM_E_INPUT_RANGE: return "an input value's magnitude exceeds 2^64 (LSTM_MAX_ABS_INPUT); the state was not changed";
    case LSTM_E_ISA_UNAVAILABLE: return "this CPU or this build lacks that instruction set (see lstm_isa_supported)";
    }
    return "unknown status code";
}

const char *lstm_version(void) {
#define LSTM_STR2(x) #x
#define LSTM_STR(x) LSTM_STR2(x)
    return LSTM_STR(LSTM_VERSION_MAJOR) "." LSTM_STR(LSTM_VERSION_MINOR) "." LSTM_STR(LSTM_VERSION_PATCH);
}

unsigned lstm_version_number(void) {
    return LSTM_VERSION_MAJOR * 10000U + LSTM_VERSION_MINOR * 100U + LSTM_VERSION_PATCH;
}
