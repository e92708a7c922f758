//go:build linux && cgo

package main

/*
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#include <sys/auxv.h>
static int trustd_limit_arenas(int n) { return mallopt(M_ARENA_MAX, n); }
static int trustd_is_glibc(void) { return 1; }
static int trustd_secure_exec(void) { return getauxval(AT_SECURE) != 0; }
#else
static int trustd_limit_arenas(int n) { return -1; }
static int trustd_is_glibc(void) { return 0; }
static int trustd_secure_exec(void) { return 0; }
#endif
*/
import "C"

// setMallocArenas caps glibc's malloc arenas at n. It reports false where
// the C library is not glibc. (glibc's mallopt answers 1 for any
// M_ARENA_MAX value, so there is no refusal to report.)
func setMallocArenas(n int) bool { return C.trustd_limit_arenas(C.int(n)) >= 0 }

// mallocReadsTunables reports whether the C library trustd allocates
// through is glibc and reads GLIBC_TUNABLES for this process: not when the
// process runs in secure mode (AT_SECURE: setuid, setgid, or a binary with
// file capabilities, such as one allowed to bind port 443), where glibc
// ignores the tunable and removes it from the environment. Executing again
// there would find it missing each time and never stop.
func mallocReadsTunables() bool { return C.trustd_is_glibc() == 1 && C.trustd_secure_exec() == 0 }
