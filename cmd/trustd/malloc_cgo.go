//go:build linux && cgo

package main

/*
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
static int trustd_limit_arenas(int n) { return mallopt(M_ARENA_MAX, n); }
#else
static int trustd_limit_arenas(int n) { return -1; }
#endif
*/
import "C"

// setMallocArenas caps glibc's malloc arenas at n. It reports false where
// the C library is not glibc. (glibc's mallopt answers 1 for any
// M_ARENA_MAX value, so there is no refusal to report.)
func setMallocArenas(n int) bool { return C.trustd_limit_arenas(C.int(n)) >= 0 }
