/* count_model.h - the model one count firmware measures (tools/cortex_m0/count.c), written into flash by
 * gen_count_models.c (fp32, int8, int8-dynamic) or gen_int16x8_model.py (int16x8): one layer, I = H, no
 * head. */
#ifndef COUNT_MODEL_H
#define COUNT_MODEL_H

#include <stddef.h>

extern const char count_dtype[];         /* "fp32", "int8", "int8-dynamic" or "int16x8" */
extern const unsigned count_hidden;      /* H (= I) */
extern const size_t count_model_len;
extern const unsigned char count_model[]; /* the model file, 64-byte aligned */
extern const float count_inputs[];       /* 4 input vectors of H values in [-1, 1) */

#endif
