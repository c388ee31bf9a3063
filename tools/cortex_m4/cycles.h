/* cycles.h - a 64-bit tick count from SysTick (processor clock source). Under qemu-system-arm
 * -icount shift=0 virtual time advances exactly 1 ns per executed instruction, and mps2-an386 clocks the
 * core at 25 MHz, so one tick is exactly 40 instructions: deterministic instruction counts. */
#ifndef CYCLES_H
#define CYCLES_H

#include <stdint.h>

extern volatile uint32_t cycles_wraps;

#define SYST_CSR (*(volatile uint32_t *)0xE000E010)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018)

static inline void cycles_start(void) {
    SYST_RVR = 0xFFFFFF;
    SYST_CVR = 0;
    SYST_CSR = 7; /* enable, interrupt on wrap, processor clock */
    while (SYST_CVR == 0) {} /* the first tick loads the reload value (not a wrap) */
}

static inline uint64_t cycles_now(void) {
    uint32_t w, v;
    do {
        w = cycles_wraps;
        v = SYST_CVR;
    } while (w != cycles_wraps);
    return (uint64_t)w * 0x1000000u + (0xFFFFFFu - v);
}

#endif
