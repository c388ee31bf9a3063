/* status.c - the text of each lstm_status (the codes themselves are defined in lstm.h). */
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
    case LSTM_E_NONFINITE_WEIGHT: return "model file holds a NaN or infinite weight";
    case LSTM_E_MISALIGNED: return "model data must start on a 4-byte boundary";
    case LSTM_E_NONFINITE_INPUT: return "input contains NaN or infinity; the state was not changed";
    case LSTM_E_WRONG_MODEL: return "state or snapshot belongs to a different model";
    case LSTM_E_BAD_SNAPSHOT: return "snapshot is damaged, truncated or not a snapshot";
    case LSTM_E_UNSUPPORTED: return "operation not supported by this model (a bidirectional model needs the whole sequence: use run)";
    case LSTM_E_BAD_STATE: return "not an initialised state (or its model was closed)";
    case LSTM_E_OUT_OF_MEMORY: return "out of memory";
    }
    return "unknown status code";
}
