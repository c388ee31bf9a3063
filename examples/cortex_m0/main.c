/* main.c - Cortex-M0 firmware (QEMU microbit, soft-float, semihosting): opens the three small models of
 * tests/c/xcheck (fp32, int8-dynamic, int16x8) from flash into static memory and prints their outputs for
 * the fixed input sequence (float bit patterns; the int16x8 model's lstm_step_int outputs as int16) for
 * .ci/cross.sh to diff against x86-64's, then "RESULT PASS" or "RESULT FAIL". */
#include <stdio.h>

#include "lstm.h"
#include "xcheck.h"

static void emit(const char *line) { printf("%s\n", line); }

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    printf("lstm_embed %s on Cortex-M0 (soft-float)\n", lstm_version());
    int errors = xcheck_run(emit);
    printf("RESULT %s\n", errors == 0 ? "PASS" : "FAIL");
    return errors == 0 ? 0 : 1;
}
