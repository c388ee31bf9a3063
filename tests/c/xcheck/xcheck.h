/* xcheck.h - the outputs of three fixed models (xcheck_fp32_data.c: fp32, xcheck_q8_data.c: int8-dynamic,
 * xcheck_int16x8_data.c: int16x8, integer-only) for a fixed input sequence, one line per step: float32 bit
 * patterns ("fp32", "int8dyn", and "int16x8f": lstm_step on the int16x8 model), the int16 outputs of
 * lstm_step_int as 4 hex digits ("int16x8", for integer inputs from the same generator). The same text on
 * every target when the results are bit-identical (.ci/cross.sh diffs each target's lines against
 * x86-64's; the two int16x8 kinds must be identical, the float models may differ in rounding). */
#ifndef XCHECK_H
#define XCHECK_H

/* Emit the lines through `emit` (each without a newline); returns the number of errors (0: all ran). */
int xcheck_run(void (*emit)(const char *line));

#endif
