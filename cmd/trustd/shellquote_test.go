package main

import (
	"os/exec"
	"testing"
)

// TestShellQuote passes each word through a real shell: what the shell
// reads back must be the word itself.
func TestShellQuote(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh here")
	}
	for _, word := range []string{
		"/var/lib/trustd", "/tmp/my data/keys/governance.jwk", "it's", "$HOME", "`id`", "a\"b", "tab\there",
		"semi;colon", "star*", "~user", "back\\slash", "", "new\nline", "'", "''",
	} {
		q := shellQuote(word)
		out, err := exec.Command(sh, "-c", "printf %s "+q).Output()
		if err != nil {
			t.Fatalf("%q quoted as %s: %v", word, q, err)
		}
		if string(out) != word {
			t.Errorf("%q quoted as %s reads back as %q", word, q, out)
		}
	}
	if q := shellQuote("/var/lib/trustd/node.key"); q != "/var/lib/trustd/node.key" {
		t.Errorf("a plain path quoted as %s", q)
	}
}
