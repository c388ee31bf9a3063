/* xcheck.h - the outputs of two fixed models (xcheck_fp32_data.c: fp32, xcheck_q8_data.c: int8-dynamic)
 * for a fixed input sequence, as float32 bit patterns, one line per step: the same text on every target
 * when the results are bit-identical (.ci/cross.sh diffs each target's lines against x86-64's). */
#ifndef XCHECK_H
#define XCHECK_H

/* Emit the lines through `emit` (each without a newline); returns the number of errors (0: all ran). */
int xcheck_run(void (*emit)(const char *line));

#endif
