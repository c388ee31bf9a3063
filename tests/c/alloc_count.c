/* alloc_count.c - the --wrap interposers of alloc_count.h: count, then call the real allocator. */
#include "alloc_count.h"

#include <stddef.h>

/* Resolved by the linker's --wrap to the C library's functions. */
void *__real_malloc(size_t n);
void *__real_calloc(size_t count, size_t n);
void *__real_realloc(void *p, size_t n);

/* The wrappers are declared here only: nothing includes them, the linker routes calls to them. */
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t count, size_t n);
void *__wrap_realloc(void *p, size_t n);

static unsigned long g_calls;

void *__wrap_malloc(size_t n) {
    g_calls++;
    return __real_malloc(n);
}

void *__wrap_calloc(size_t count, size_t n) {
    g_calls++;
    return __real_calloc(count, n);
}

void *__wrap_realloc(void *p, size_t n) {
    g_calls++;
    return __real_realloc(p, n);
}

unsigned long alloc_count(void) { return g_calls; }
