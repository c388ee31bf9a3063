/* reference.h - a plain double-precision LSTM over a testlib net: the yardstick for the library. */
#ifndef REFERENCE_H
#define REFERENCE_H

#include <stddef.h>

#include "testlib.h"

/* Run the net over xs[steps][input_size] from a zero state and write ys[steps][output_size]. A
 * unidirectional net gives what `steps` calls of lstm_step on a fresh state give; a bidirectional one
 * gives lstm_run's whole-sequence result. */
void ref_forward(const net *n, const float *xs, size_t steps, double *ys);

#endif /* REFERENCE_H */
