package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
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

func TestNegativeQuestionsAreRefusedBeforeAnythingStarts(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"--questions", "-1", "--skip-writes", "--scale", "0"}, &out)
	if err == nil || !strings.Contains(err.Error(), "--questions -1") {
		t.Fatalf("got %v", err)
	}
}
