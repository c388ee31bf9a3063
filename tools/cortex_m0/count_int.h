/* count_int.h - instructions of the int16x8 step and of its parts, for the count firmwares of the
 * Cortex-M0 (tools/cortex_m0/count.c) and the Cortex-M4 (tools/cortex_m4/count.c). */
#ifndef COUNT_INT_H
#define COUNT_INT_H

#include <stddef.h>
#include <stdint.h>

#include "lstm.h"

/* One measurement: thousandths of an instruction per call; `weights` the step's weights (0: not a
 * product, no per-weight figure). */
typedef void (*count_report_fn)(const char *isa, const char *dtype, unsigned h, const char *what, uint64_t milli,
                                uint64_t weights);

/* Times lstm_step_int ("step"), lstm_step with float input and output ("step_f32io") and the parts of the
 * integer step: "products" (the two gemv_s16 calls), "epilogue" (lstm_int_layer less the products),
 * "other" (the step less lstm_int_layer); and the epilogue's pieces as the spec's arithmetic written here:
 * "requant" (rshift_round(A * M, S) of both parts of every gate row plus B), "activations" (sigmoid and
 * tanh of the gates, tanh of the new c), "cell" (the rest of the cell update); of the int16x8 model `model` (one layer,
 * I = H, no head) on `isa`. `mem` (mem_len bytes, 8-byte aligned) holds the model descriptor, the state,
 * then the parts' operands; 0 or 1 with
 * a message on failure. `milli_per_tick`: thousandths of an instruction per cycles.h tick. */
int count_int16x8(lstm_isa isa, const unsigned char *model, size_t len, const float *inputs, unsigned hidden,
                  void *mem, size_t mem_len, uint64_t milli_per_tick, uint64_t overhead_milli, count_report_fn report);

/* Thousandths of an instruction per call of an empty timing loop body (the overhead count_int16x8
 * subtracts). */
uint64_t count_loop_overhead(uint64_t milli_per_tick);

#endif
