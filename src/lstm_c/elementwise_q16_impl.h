/* elementwise_q16_impl.h - the elementwise kernels of int8-a16 layers (int16 quantisation and the gate
 * epilogue from int64 sums), instantiated per ISA with the others: elementwise_impl.h includes this file
 * with LSTM_EW_SUFFIX, LSTM_EW_ATTR and LSTM_EW defined. The same source for every ISA: the same bits. */

LSTM_EW_ATTR float LSTM_EW(lstm_quantize16)(const float *v, size_t n, int16_t *q, size_t padded) {
    uint32_t max_bits = lstm_max_abs_bits_inline(v, n); /* inputs are finite: checked on entry */
    float amax;
    memcpy(&amax, &max_bits, 4);
    memset(q + n, 0, (padded - n) * sizeof(int16_t));
    if (!(amax >= LSTM_Q8_MIN_AMAX)) { /* zero, or so small that 32767 / amax would overflow */
        memset(q, 0, n * sizeof(int16_t));
        return 0.0f;
    }
    const float qmax = (float)LSTM_Q16_MAX;
    const float inv = LSTM_R(qmax / amax);
    /* |v * inv| <= 32767 * (1 + 2^-23) + rounding: rounds to at most 32767, no clamp needed */
    for (size_t i = 0; i < n; i++)
        q[i] = (int16_t)(int32_t)LSTM_R(LSTM_R(LSTM_R(v[i] * inv) + LSTM_ROUND_MAGIC) - LSTM_ROUND_MAGIC);
    return LSTM_R(amax / qmax);
}

LSTM_EW_ATTR void LSTM_EW(lstm_q16_gates)(float *y, const float *bias, const int64_t *acc_x, float sx,
                                          const float *scale_x, const int64_t *acc_h, float sh,
                                          const float *scale_h, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float ax = LSTM_R((float)acc_x[i]), ah = LSTM_R((float)acc_h[i]);
        float px = LSTM_R(ax * LSTM_R(sx * scale_x[i]));
        float ph = LSTM_R(ah * LSTM_R(sh * scale_h[i]));
        y[i] = LSTM_R(LSTM_R(bias[i] + px) + ph);
    }
}
