package node

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"testing"

	"github.com/trustreg/trustreg/registry"
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
	if _, err := RestoreBackup(t.TempDir(), og, bytes.NewReader(backup)); !errors.Is(err, registry.ErrGenesis) {
		t.Fatalf("restore with another genesis: %v", err)
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
