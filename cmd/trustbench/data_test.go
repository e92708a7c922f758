package main

import (
	"fmt"
	"testing"
)

func TestTrustURLsAskDistinctColleges(t *testing.T) {
	for _, n := range []int{1, 2000, 10000, 7919 * 2} {
		d := &dataset{}
		for i := range n {
			d.collegeDIDs = append(d.collegeDIDs, fmt.Sprintf("did:web:college-%d.example", i))
		}
		seen := map[string]bool{}
		for _, u := range d.trustURLs("http://127.0.0.1:1", n) {
			seen[u] = true
		}
		if len(seen) != n {
			t.Fatalf("%d colleges: %d distinct questions of %d", n, len(seen), n)
		}
	}
}
