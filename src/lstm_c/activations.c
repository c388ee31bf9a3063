/* activations.c - vectorisable exp-based nonlinearities. */
#include "activations.h"

#include <string.h>

#include "lstm.h"
#include "multiversion.h"


/* exp(x) for x clamped to [-87.3, 88]: x = n ln2 + r with |r| <= ln2/2; exp(r) by a degree-6 polynomial
 * fitted for least maximum relative error on that interval (< 1e-7); 2^n (n in [-126, 127]) placed
 * straight into the exponent bits. */
static inline float exp_clamped(float x) {
    const float log2e = 1.44269504089f, ln2_hi = 0.693145751953125f, ln2_lo = 1.428606765330187e-06f;
    const float round_magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to the nearest integer */
    x = x < -87.3f ? -87.3f : x;
    x = x > 88.0f ? 88.0f : x;
    float n = (x * log2e + round_magic) - round_magic;
    float r = (x - n * ln2_hi) - n * ln2_lo;
    float p = 0.0013843654f;
    p = p * r + 0.0083741555f;
    p = p * r + 0.041668002f;
    p = p * r + 0.16666432f;
    p = p * r + 0.49999994f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    unsigned bits = (unsigned)((int)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, 4);
    return p * scale;
}

static inline float sigmoid1(float x) { return 1.0f / (1.0f + exp_clamped(-x)); }
/* tanh(x) = 2 sigmoid(2x) - 1: absolute error stays at a few 1e-8 near 0, where relative error would grow */
static inline float tanh1(float x) { return 2.0f / (1.0f + exp_clamped(-2.0f * x)) - 1.0f; }

LSTM_WIDEST void lstm_sigmoid(float *v, size_t n) {
    for (size_t i = 0; i < n; i++) v[i] = sigmoid1(v[i]);
}

LSTM_WIDEST void lstm_tanh(float *v, size_t n) {
    for (size_t i = 0; i < n; i++) v[i] = tanh1(v[i]);
}

LSTM_WIDEST void lstm_relu(float *v, size_t n) {
    for (size_t i = 0; i < n; i++) v[i] = v[i] > 0.0f ? v[i] : 0.0f;
}

LSTM_WIDEST void lstm_softmax(float *v, size_t n) {
    if (n == 0) return;
    float mx = v[0];
    for (size_t i = 1; i < n; i++) mx = v[i] > mx ? v[i] : mx;
    float sum = 0.0f;
    for (size_t i = 0; i < n; i++) {
        v[i] = exp_clamped(v[i] - mx);
        sum += v[i];
    }
    float inv = 1.0f / sum;
    for (size_t i = 0; i < n; i++) v[i] *= inv;
}

void lstm_activate(unsigned activation, float *v, size_t n) {
    switch (activation) {
    case LSTM_ACT_SIGMOID: lstm_sigmoid(v, n); break;
    case LSTM_ACT_TANH: lstm_tanh(v, n); break;
    case LSTM_ACT_RELU: lstm_relu(v, n); break;
    case LSTM_ACT_SOFTMAX: lstm_softmax(v, n); break;
    default: break;
    }
}

LSTM_WIDEST void lstm_cell_update(size_t hidden, float *gates, float *c, float *hfull) {
    float *gi = gates, *gf = gates + hidden, *gg = gates + 2 * hidden, *go = gates + 3 * hidden;
    /* the gates first, as long simple loops; then the state, with one more tanh per unit */
    for (size_t j = 0; j < 2 * hidden; j++) gi[j] = sigmoid1(gi[j]);
    for (size_t j = 0; j < hidden; j++) gg[j] = tanh1(gg[j]);
    for (size_t j = 0; j < hidden; j++) go[j] = sigmoid1(go[j]);
    for (size_t j = 0; j < hidden; j++) {
        float cj = gf[j] * c[j] + gi[j] * gg[j];
        c[j] = cj;
        hfull[j] = go[j] * tanh1(cj);
    }
}
