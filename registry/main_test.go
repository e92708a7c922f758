package registry

import (
	"flag"
	"os"
	"testing"
)

// TestMain makes every test's apply check the received listings it keeps
// in memory against the batch (verifyListings); benchmarks (-test.bench)
// measure the apply as a node runs it.
func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		verifyListings = true
	}
	os.Exit(m.Run())
}
