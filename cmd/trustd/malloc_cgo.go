//go:build linux && cgo

package main

/*
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#include <sys/auxv.h>
#include <gnu/libc-version.h>
static int trustd_limit_arenas(int n) { return mallopt(M_ARENA_MAX, n); }
static const char *trustd_glibc_version(void) { return gnu_get_libc_version(); }
static int trustd_secure_exec(void) { return getauxval(AT_SECURE) != 0; }
static int trustd_has_interpreter(void) { return getauxval(AT_BASE) != 0; }
static const char *trustd_exec_path(void) { const char *p = (const char *)getauxval(AT_EXECFN); return p ? p : ""; }
#else
static int trustd_limit_arenas(int n) { return -1; }
static const char *trustd_glibc_version(void) { return ""; }
static int trustd_secure_exec(void) { return 0; }
static int trustd_has_interpreter(void) { return 0; }
static const char *trustd_exec_path(void) { return ""; }
#endif
*/
import "C"

// setMallocArenas caps glibc's malloc arenas at n. It reports false where
// the C library is not glibc. (glibc's mallopt answers 1 for any
// M_ARENA_MAX value, so there is no refusal to report.)
func setMallocArenas(n int) bool { return C.trustd_limit_arenas(C.int(n)) >= 0 }

// glibcAppliesTunables reports whether glibc would apply the huge-page
// tunable to this process if trustd executed itself with it: the C
// library is glibc 2.35 or later (older ones ignore the tunable); the
// process is not in secure mode (AT_SECURE: setuid, setgid, or a binary
// with file capabilities, such as one allowed to bind port 443), where
// glibc ignores tunables and removes them from the environment; and the
// kernel started trustd itself, through its interpreter (AT_BASE): not the
// dynamic loader run as a program with trustd's path (executing the start
// path again would run the loader with trustd's own arguments), nor a
// static build.
func glibcAppliesTunables() bool {
	return glibcAtLeast(C.GoString(C.trustd_glibc_version()), 2, 35) &&
		C.trustd_secure_exec() == 0 && C.trustd_has_interpreter() == 1
}

// startPath returns the path the kernel was given to start this process
// (AT_EXECFN, as the caller of execve gave it: not resolved through
// links), or "".
func startPath() string { return C.GoString(C.trustd_exec_path()) }
