/* activations.h - gate and head nonlinearities over arrays, written so the compiler vectorises them:
 * no libm calls, no branches in the loops. Accurate to a few float ulp (tests check against float64). */
#ifndef LSTM_ACTIVATIONS_H
#define LSTM_ACTIVATIONS_H

#include <stddef.h>

void lstm_sigmoid(float *v, size_t n);
void lstm_tanh(float *v, size_t n);
void lstm_relu(float *v, size_t n);
void lstm_softmax(float *v, size_t n);
/* Apply an lstm_activation code to v[n]. */
void lstm_activate(unsigned activation, float *v, size_t n);

/* The LSTM cell update for one step. gates[4H] holds the pre-activations (i, f, g, o); c[H] is updated in
 * place; hfull[H] receives o * tanh(c). gates is used as scratch. */
void lstm_cell_update(size_t hidden, float *gates, float *c, float *hfull);

#endif /* LSTM_ACTIVATIONS_H */
