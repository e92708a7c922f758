//go:build linux && cgo

package main

/*
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
static int trustd_limit_arenas(int n) { return mallopt(M_ARENA_MAX, n); }
static int trustd_is_glibc(void) { return 1; }
#else
static int trustd_limit_arenas(int n) { return -1; }
static int trustd_is_glibc(void) { return 0; }
#endif
*/
import "C"

// setMallocArenas caps glibc's malloc arenas at n. It reports false where
// the C library is not glibc. (glibc's mallopt answers 1 for any
// M_ARENA_MAX value, so there is no refusal to report.)
func setMallocArenas(n int) bool { return C.trustd_limit_arenas(C.int(n)) >= 0 }

// mallocIsGlibc reports whether the C library trustd allocates through is
// glibc.
func mallocIsGlibc() bool { return C.trustd_is_glibc() == 1 }
