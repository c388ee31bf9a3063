/* reference.c - the double-precision LSTM of reference.h, written for clarity, not speed: layer by layer
 * over the whole sequence, each direction from a zero state, libm's exp and tanh. */
#include "reference.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double sigmoid(double v) { return 1.0 / (1.0 + exp(-v)); }

static void activate(uint32_t act, double *v, size_t n) {
    double mx, sum = 0.0;
    switch (act) {
    case LSTM_ACT_SIGMOID:
        for (size_t i = 0; i < n; i++) v[i] = sigmoid(v[i]);
        break;
    case LSTM_ACT_TANH:
        for (size_t i = 0; i < n; i++) v[i] = tanh(v[i]);
        break;
    case LSTM_ACT_RELU:
        for (size_t i = 0; i < n; i++) v[i] = v[i] > 0.0 ? v[i] : 0.0;
        break;
    case LSTM_ACT_SOFTMAX:
        mx = v[0];
        for (size_t i = 1; i < n; i++) mx = v[i] > mx ? v[i] : mx;
        for (size_t i = 0; i < n; i++) sum += (v[i] = exp(v[i] - mx));
        for (size_t i = 0; i < n; i++) v[i] /= sum;
        break;
    default:
        break;
    }
}

/* One step of one cell: x[in] and h[Hr], c[H] in; h and c updated. */
static void cell_step(const net *n, const net_cell *cell, const double *x, double *h, double *c) {
    size_t H = n->spec.hidden_size, P = n->spec.proj_size, hr = n->hr, ld = cell->in + hr;
    double *g = (double *)xmalloc(4 * H * sizeof(double)), *hfull = (double *)xmalloc(H * sizeof(double));
    for (size_t r = 0; r < 4 * H; r++) {
        const float *w = cell->w + r * ld;
        double s = cell->b[r];
        for (size_t j = 0; j < cell->in; j++) s += (double)w[j] * x[j];
        for (size_t j = 0; j < hr; j++) s += (double)w[cell->in + j] * h[j];
        g[r] = s;
    }
    for (size_t j = 0; j < H; j++) {
        double i = sigmoid(g[j]), f = sigmoid(g[H + j]), gg = tanh(g[2 * H + j]), o = sigmoid(g[3 * H + j]);
        c[j] = f * c[j] + i * gg;
        hfull[j] = o * tanh(c[j]);
    }
    if (P == 0) {
        memcpy(h, hfull, H * sizeof(double));
    } else {
        for (size_t r = 0; r < P; r++) {
            double s = 0.0;
            for (size_t j = 0; j < H; j++) s += (double)cell->w_hr[r * H + j] * hfull[j];
            h[r] = s;
        }
    }
    free(g);
    free(hfull);
}

void ref_forward(const net *n, const float *xs, size_t steps, double *ys) {
    size_t lo = n->layer_out, hr = n->hr, H = n->spec.hidden_size, in0 = n->spec.input_size;
    size_t T = steps ? steps : 1;
    double *x = (double *)xmalloc(T * in0 * sizeof(double)); /* the current layer's input sequence */
    double *y = (double *)xmalloc(T * lo * sizeof(double));
    double *h = (double *)xmalloc(hr * sizeof(double)), *c = (double *)xmalloc(H * sizeof(double));
    size_t width = in0;
    for (size_t i = 0; i < steps * in0; i++) x[i] = xs[i];
    for (uint32_t l = 0; l < n->spec.num_layers; l++) {
        for (uint32_t d = 0; d < n->spec.num_directions; d++) {
            memset(h, 0, hr * sizeof(double));
            memset(c, 0, H * sizeof(double));
            for (size_t s = 0; s < steps; s++) {
                size_t t = d ? steps - 1 - s : s;
                cell_step(n, &n->cells[l][d], x + t * width, h, c);
                memcpy(y + t * lo + d * hr, h, hr * sizeof(double));
            }
        }
        if (width < lo) { /* the next layer's input is wider: grow x */
            free(x);
            x = (double *)xmalloc(T * lo * sizeof(double));
        }
        memcpy(x, y, steps * lo * sizeof(double));
        width = lo;
    }
    for (size_t t = 0; t < steps; t++) {
        double *out = ys + t * n->output_size;
        const double *top = x + t * lo;
        if (!n->head_w) {
            memcpy(out, top, lo * sizeof(double));
            continue;
        }
        for (size_t r = 0; r < n->spec.head_size; r++) {
            double s = n->head_b[r];
            for (size_t j = 0; j < lo; j++) s += (double)n->head_w[r * lo + j] * top[j];
            out[r] = s;
        }
        activate(n->spec.head_activation, out, n->spec.head_size);
    }
    free(x);
    free(y);
    free(h);
    free(c);
}
