package node

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/trustreg/trustreg/consensus"
	"github.com/trustreg/trustreg/registry/record"
)

func TestBackupRestoresIntoANewCluster(t *testing.T) {
	c := mustNewCluster(t, 1)
	for i := range 20 {
		c.mustSubmit(0, c.accreditOp(fmt.Sprintf("did:web:b%d.example", i)))
	}
	src := c.node(0)
	resp, err := http.Get(src.AdminURL() + "/admin/v1/backup")
	if err != nil {
		t.Fatal(err)
	}
	backup, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(backup) == 0 {
		t.Fatalf("backup: %d, %d bytes", resp.StatusCode, len(backup))
	}
	genesis, _ := os.ReadFile(c.cfgs[0].Genesis)

	dir := t.TempDir()
	index, err := RestoreBackup(dir, genesis, bytes.NewReader(backup))
	if err != nil {
		t.Fatal(err)
	}
	if index != src.State.AppliedIndex() {
		t.Fatalf("restored index %d, source applied %d", index, src.State.AppliedIndex())
	}
	// A second restore into the same directory is refused.
	if _, err := RestoreBackup(dir, genesis, bytes.NewReader(backup)); err == nil {
		t.Fatal("restore over existing data accepted")
	}
	// A backup of another consortium is refused.
	otherGenesis, _ := writeGenesis(t, t.TempDir())
	og, _ := os.ReadFile(otherGenesis)
	keyed := t.TempDir() // its identity made beforehand, as trustd identity does
	key, err := consensus.LoadOrCreateIdentity(filepath.Join(keyed, "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RestoreBackup(keyed, og, bytes.NewReader(backup)); !errors.Is(err, record.ErrGenesis) {
		t.Fatalf("restore with another genesis: %v", err)
	}
	// A failed restore leaves nothing of its own behind (the identity made
	// beforehand stays), so it can be run again.
	if entries, _ := os.ReadDir(keyed); len(entries) != 1 || entries[0].Name() != "node.key" {
		t.Fatalf("after a refused restore the directory holds %v", entries)
	}
	if again, err := consensus.LoadOrCreateIdentity(filepath.Join(keyed, "node.key")); err != nil || !again.Equals(key) {
		t.Fatalf("identity made beforehand changed: %v", err)
	}
	fresh := filepath.Join(t.TempDir(), "new")
	for _, bad := range [][]byte{[]byte("not a backup"), backup[:len(backup)/2]} {
		if _, err := RestoreBackup(fresh, genesis, bytes.NewReader(bad)); err == nil {
			t.Fatalf("restore of %d bad bytes accepted", len(bad))
		}
		if _, err := os.Stat(fresh); !os.IsNotExist(err) {
			t.Fatalf("a failed restore left %s behind: %v", fresh, err)
		}
	}
	if _, err := RestoreBackup(fresh, genesis, bytes.NewReader(backup)); err != nil {
		t.Fatalf("restore after failed ones: %v", err)
	}

	cfg := LoopbackConfig(dir)
	cfg.Genesis = c.cfgs[0].Genesis
	restored := mustNewNode(t, cfg)
	want, _ := src.State.StateDigest()
	if got, _ := restored.State.StateDigest(); got != want {
		t.Fatal("restored node's state digest differs from the source")
	}
	// The new cluster goes on from the backup's index.
	c2 := &testCluster{t: t, nodes: []*Node{restored}, root: c.root, fw: c.fw}
	res := c2.mustSubmit(0, c.accreditOp("did:web:after-restore.example"))
	if res.Index <= index {
		t.Fatalf("first write after restore at index %d, not after %d", res.Index, index)
	}
}
