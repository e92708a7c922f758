package node

import (
	"context"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry"
)

// TestNodeOnAFullDiskIsNotReadyUntilSpaceReturns starts a node on a small
// filesystem with less free space than the state keeps in reserve: it
// reaches the gateway, answers /readyz 503 saying the disk is full and
// shows trustd_disk_full 1, applies nothing; once the filesystem grows it
// becomes ready and applies what waited.
func TestNodeOnAFullDiskIsNotReadyUntilSpaceReturns(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=100m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs here (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	n, err := New(LoopbackConfig(dir), Options{})
	if err != nil {
		t.Fatalf("start on a full disk: %v", err)
	}
	defer n.Close()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(n.GatewayURL() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	code, body := get("/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "disk full") {
		t.Fatalf("/readyz on a full disk: %d %s", code, body)
	}
	if _, metrics := get("/metrics"); !strings.Contains(metrics, "\ntrustd_disk_full 1\n") {
		t.Fatalf("metrics on a full disk lack trustd_disk_full 1")
	}
	if lvl := n.State.ClusterFeatureLevel(); lvl == registry.FeatureLevel && registry.FeatureLevel != registry.FeatureLevelBase {
		t.Fatalf("the state applied the leader's feature level with the disk full")
	}

	if out, err := exec.Command("mount", "-o", "remount,size=400m", dir).CombinedOutput(); err != nil {
		t.Fatalf("grow the tmpfs: %v: %s", err, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for code, body = get("/readyz"); code != http.StatusOK; code, body = get("/readyz") {
		if time.Now().After(deadline) {
			t.Fatalf("/readyz once space returned: %d %s", code, body)
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
	if _, metrics := get("/metrics"); !strings.Contains(metrics, "\ntrustd_disk_full 0\n") {
		t.Fatalf("metrics once space returned lack trustd_disk_full 0")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.State.WaitFeatureLevel(ctx, registry.FeatureLevel); err != nil {
		t.Fatalf("the apply did not resume once space returned: %v", err)
	}
}
