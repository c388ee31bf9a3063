/* elementwise_ref.c - the portable elementwise kernels (quantize, gates epilogue, cell update, head
 * activations): the reference table's, and the twin of every SIMD instantiation. */
#define LSTM_EW_SUFFIX ref
#define LSTM_EW_ATTR
#include "elementwise_impl.h"
