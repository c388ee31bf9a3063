/* alloc_count.h - counts the library's calls to malloc, calloc and realloc. The test programs are linked
 * with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc (see the Makefile), so every such call made from the
 * library's object files (and the tests') goes through the counters in alloc_count.c first. */
#ifndef ALLOC_COUNT_H
#define ALLOC_COUNT_H

/* Calls so far of malloc, calloc and realloc together. */
unsigned long alloc_count(void);

#endif /* ALLOC_COUNT_H */
