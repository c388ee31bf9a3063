/* sha256.h - SHA-256 (FIPS 180-4), for the model fingerprint: the first 8 bytes of the digest of every
 * tensor's table fields and data (lstm_format.h), recomputed when a model opens. */
#ifndef LSTM_SHA256_H
#define LSTM_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct lstm_sha256 {
    uint32_t h[8];
    uint64_t length;          /* bytes hashed so far */
    unsigned char block[64];  /* pending input */
    size_t fill;
} lstm_sha256;

void lstm_sha256_init(lstm_sha256 *s);
void lstm_sha256_update(lstm_sha256 *s, const void *data, size_t n);
void lstm_sha256_final(lstm_sha256 *s, unsigned char digest[32]);

#endif /* LSTM_SHA256_H */
