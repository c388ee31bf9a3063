/* main.c - the C tests of the int16x8 integer step and of the int8 x int16 kernels, compiled for the
 * Cortex-M0 and run on QEMU's microbit (semihosting): tests/c/test_s16.c (gemv_s16 / gemm_s16, whose
 * reference table runs the Thumb-1 panel kernel of s16_armv6m.c) and tests/c/test_int.c (the step against
 * the specification, written out in int64, with the 32-bit requantisation and cell of ARMv6-M; the 32-bit
 * forms against the int64 ones). Each test file's main() is renamed (-Dmain=...) and called here; the
 * counts are cumulative (tests/c/testlib.c). Prints "RESULT PASS" or "RESULT FAIL" for .ci/cross.sh. */
#include <stdio.h>

int test_s16_main(void);
int test_int_main(void);

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    printf("== cortex-m0: test_s16\n");
    int failed = test_s16_main() != 0;
    printf("== cortex-m0: test_int\n");
    failed |= test_int_main() != 0;
    printf("RESULT %s\n", failed ? "FAIL" : "PASS");
    return failed;
}
