/* xcheck_main.c - prints xcheck.h's lines on a hosted target; exit 1 if a model failed to run. */
#include <stdio.h>

#include "xcheck.h"

static void emit(const char *line) { puts(line); }

int main(void) { return xcheck_run(emit) ? 1 : 0; }
