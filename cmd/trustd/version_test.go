package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/trustreg/trustreg/registry"
	"github.com/trustreg/trustreg/version"
)

// TestVersionFlag: trustd --version prints the build and exits without
// starting a node (nothing is written to the working directory).
func TestVersionFlag(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"--version"}, nil, &stdout, &stderr); err != nil {
		t.Fatalf("trustd --version: %v\n%s", err, stderr.String())
	}
	if want := "trustd version " + version.Get().String() + "\n"; stdout.String() != want {
		t.Errorf("trustd --version printed %q, want %q", stdout.String(), want)
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Errorf("trustd --version wrote to the working directory: %v %v", entries, err)
	}
}

// TestVersionCommand: trustd version prints the build and the highest
// feature level it applies, which the configuration's docs name it for.
func TestVersionCommand(t *testing.T) {
	t.Chdir(t.TempDir())
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"version"}, nil, &stdout, &stderr); err != nil {
		t.Fatalf("trustd version: %v\n%s", err, stderr.String())
	}
	want := "trustd version " + version.Get().String() + "\nfeature level " + strconv.Itoa(registry.FeatureLevel) + " "
	if !strings.HasPrefix(stdout.String(), want) {
		t.Errorf("trustd version printed %q, want it to start %q", stdout.String(), want)
	}
}

// TestWelcomeNamesTheExplorer: the start-up text names the registry
// explorer at the gateway's root, and that URL serves its page.
func TestWelcomeNamesTheExplorer(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "trustd.yaml")
	yaml := "data_dir: " + filepath.Join(dir, "data") + "\nhttp:\n  addr: 127.0.0.1:0\nadmin:\n  addr: 127.0.0.1:0\np2p:\n  listen: [/ip4/127.0.0.1/tcp/0]\n"
	if err := os.WriteFile(conf, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"--config", conf}, nil, &stdout, &stderr) }()
	ended := false // run's result was read from done
	defer func() {
		cancel()
		if !ended {
			if err := <-done; err != nil {
				t.Errorf("run: %v", err)
			}
		}
	}()
	explorerRE := regexp.MustCompile(`(?m)^  explorer (http://127\.0\.0\.1:\d+/) .*registry explorer`)
	var gateway, explorer string
	waitFor(t, "the explorer URL on stdout", func() bool {
		select {
		case err := <-done:
			ended = true
			t.Fatalf("run ended: %v\n%s", err, stderr.String())
		default:
		}
		out := stdout.String()
		if m := explorerRE.FindStringSubmatch(out); m != nil {
			explorer = m[1]
			gateway = regexp.MustCompile(`gateway  (\S+)`).FindStringSubmatch(out)[1]
			return true
		}
		return false
	})
	if explorer != gateway+"/" {
		t.Errorf("explorer %s, want the gateway's root %s/\n%s", explorer, gateway, stdout.String())
	}
	resp, err := http.Get(explorer)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET %s: %d %s: %.200s", explorer, resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
}
