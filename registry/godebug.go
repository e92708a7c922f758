package registry

import (
	"fmt"
	"os"
	"strings"
)

// applyGODEBUG are the GODEBUG settings that could change what the apply
// decides. Every node must decide alike from the same log, so a state
// refuses to open under one of them; the defaults are those of the go
// line of go.mod, the same for every build of a release. net/url's
// urlstrictcolons changed which identifiers record.ValidateID took for
// https URLs (a host with more than one colon) while it called url.Parse;
// it now reads them by its own frozen rules (record's httpsID), which no
// setting moves, so the guard stays as defence in depth: against a use of
// net/url in the apply that nobody noticed, now or later.
var applyGODEBUG = []string{"urlstrictcolons"}

// checkGODEBUG refuses a GODEBUG value (as in the environment) that sets
// one of applyGODEBUG.
func checkGODEBUG(v string) error {
	for _, kv := range strings.Split(v, ",") {
		name, _, _ := strings.Cut(strings.TrimSpace(kv), "=")
		for _, s := range applyGODEBUG {
			if name == s {
				return fmt.Errorf("GODEBUG sets %s, which changes what the registry accepts: every node must decide alike from the same log; start trustd without it", s)
			}
		}
	}
	return nil
}

// environmentGODEBUG is checkGODEBUG of this process's environment.
func environmentGODEBUG() error { return checkGODEBUG(os.Getenv("GODEBUG")) }
