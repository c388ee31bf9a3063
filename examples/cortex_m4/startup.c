/* startup.c - the least a Cortex-M needs to reach main(): the vector table (initial stack pointer, reset
 * and fault handlers), .data copied from flash, .bss zeroed, the FPU enabled (Cortex-M4F), newlib's
 * semihosting I/O initialised (librdimon, --specs=rdimon.specs). Shared with examples/cortex_m0. */
#include <stdint.h>
#include <stdlib.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack; /* from the linker script */
extern int main(void);
extern void initialise_monitor_handles(void);                  /* librdimon: opens stdin/stdout/stderr */
extern void __libc_init_array(void);

void Reset_Handler(void);
void Fault_Handler(void);

__attribute__((section(".isr_vector"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))(uintptr_t)&_estack, /* initial stack pointer */
    Reset_Handler,
    Fault_Handler, /* NMI */
    Fault_Handler, /* HardFault */
    Fault_Handler, /* MemManage (M3/M4) */
    Fault_Handler, /* BusFault */
    Fault_Handler, /* UsageFault */
};

void Reset_Handler(void) {
    uint32_t *src = &_sidata, *dst = &_sdata;
    while (dst < &_edata) *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss;) *dst++ = 0;
#if defined(__ARM_FP)
    /* CPACR: full access to coprocessors 10 and 11 (the FPU), before any float instruction */
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    initialise_monitor_handles();
    __libc_init_array();
    exit(main());
}

/* A fault: report it through semihosting (SYS_WRITE0) and stop with a failure (SYS_EXIT). */
void Fault_Handler(void) {
    static const char msg[] = "FAULT: the firmware hit a fault handler\n";
    register uint32_t r0 __asm__("r0") = 0x04; /* SYS_WRITE0 */
    register const char *r1 __asm__("r1") = msg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    exit(3);
}

/* -nostartfiles leaves out crti.o/crtn.o: __libc_init_array and __libc_fini_array call these. */
void _init(void) {}
void _fini(void) {}
