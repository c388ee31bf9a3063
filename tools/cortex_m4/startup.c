/* startup.c - bare-metal start-up for the count and test firmwares (tools/cortex_m4, and tools/cortex_m0
 * on the Cortex-M0): vector table, reset (FPU on when there is one, .data copied, .bss zeroed, main, exit),
 * semihosting output and exit, a heap for malloc, and a SysTick overflow count for cycles.h. Semihosting
 * needs qemu's -semihosting-config enable=on. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include "cycles.h"

extern uint32_t __data_load[], __data_start[], __data_end[], __bss_start[], __bss_end[];
extern char __heap_start[], __heap_end[], __stack_top[];
int main(void);

/* ---- semihosting ---------------------------------------------------------------------------------- */

static int semihost(int op, const void *arg) {
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

#define SYS_WRITE0 0x04
#define SYS_EXIT 0x18
#define ADP_STOPPED_APPLICATION_EXIT 0x20026
#define ADP_STOPPED_RUNTIME_ERROR 0x20023

void _exit(int status) {
    semihost(SYS_EXIT, (const void *)(uintptr_t)(status == 0 ? ADP_STOPPED_APPLICATION_EXIT : ADP_STOPPED_RUNTIME_ERROR));
    for (;;) {}
}

int _write(int fd, const char *buf, int len) {
    (void)fd;
    char chunk[65];
    for (int done = 0; done < len;) {
        int n = len - done < 64 ? len - done : 64;
        memcpy(chunk, buf + done, (size_t)n);
        chunk[n] = '\0';
        semihost(SYS_WRITE0, chunk);
        done += n;
    }
    return len;
}

void *_sbrk(ptrdiff_t incr) {
    static char *brk = __heap_start;
    if (incr > __heap_end - brk) {
        errno = ENOMEM;
        return (void *)-1;
    }
    char *old = brk;
    brk += incr;
    return old;
}

int _close(int fd) { (void)fd; return -1; }
int _fstat(int fd, struct stat *st) { (void)fd; st->st_mode = S_IFCHR; return 0; }
int _isatty(int fd) { (void)fd; return 1; }
int _lseek(int fd, int off, int whence) { (void)fd, (void)off, (void)whence; return 0; }
int _read(int fd, char *buf, int len) { (void)fd, (void)buf, (void)len; return 0; }
int _kill(int pid, int sig) { (void)pid, (void)sig; return -1; }
int _getpid(void) { return 1; }

/* ---- SysTick: 24-bit down counter; the handler counts its wraps ------------------------------------- */

volatile uint32_t cycles_wraps;

static void systick_handler(void) { cycles_wraps++; }

/* ---- reset ------------------------------------------------------------------------------------------ */

static void default_handler(void) {
    static const char msg[] = "unexpected exception\n";
    _write(1, msg, sizeof msg - 1);
    _exit(3);
}

void reset_handler(void) {
#if defined(__ARM_FP)
    *(volatile uint32_t *)0xE000ED88 |= 0xFu << 20; /* CPACR: CP10, CP11 full access (the FPU) */
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    for (uint32_t *s = __data_load, *d = __data_start; d < __data_end;) *d++ = *s++;
    for (uint32_t *d = __bss_start; d < __bss_end;) *d++ = 0;
    _exit(main());
}

__attribute__((section(".vectors"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))(uintptr_t)__stack_top, reset_handler, default_handler, default_handler, default_handler,
    default_handler, default_handler, 0, 0, 0, 0, default_handler, default_handler, 0, default_handler,
    systick_handler};
