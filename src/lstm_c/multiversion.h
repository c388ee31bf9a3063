/* multiversion.h - LSTM_WIDEST: build a plain C loop for AVX-512, AVX2 and baseline x86-64, and let the
 * loader pick the widest the CPU has (GCC/clang function multiversioning). Elsewhere, or with
 * -DLSTM_NO_SIMD, it is empty and the loop is built once. Loops with clamps vectorise only with
 * -fno-trapping-math, which changes no result. */
#ifndef LSTM_MULTIVERSION_H
#define LSTM_MULTIVERSION_H

#if defined(__x86_64__) && defined(__GNUC__) && !defined(LSTM_NO_SIMD) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define LSTM_WIDEST __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
#endif
#ifndef LSTM_WIDEST
#define LSTM_WIDEST
#endif

#endif /* LSTM_MULTIVERSION_H */
