// Package smallfs gives the disk-full tests a filesystem of their own to
// fill: a tmpfs of a few MiB mounted over a test's temporary directory,
// and a way to fill it to a given free space. Filling a real disk, or the
// machine's /tmp, is never an option for a test.
package smallfs

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// maxChunks bounds how many 64 KiB writes Fill makes (4 GiB).
const maxChunks = 1 << 16

// Mount mounts a tmpfs of size (mount's form: "32m") over a new temporary
// directory of t's and returns it; it is unmounted when t ends. A test
// where mounting is not permitted (not root) is skipped, saying so.
func Mount(t testing.TB, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs here (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// Free returns the bytes free for an unprivileged writer under dir.
func Free(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// Fill writes the file dir/name until no more than leave bytes are free
// under dir, and returns its path: removing it gives the space back.
func Fill(t testing.TB, dir, name string, leave uint64) string {
	t.Helper()
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		// The filler's content does not matter, but a close that fails for
		// another reason than the full disk is a broken test setup.
		if err := f.Close(); err != nil && !errors.Is(err, syscall.ENOSPC) {
			t.Errorf("close %s: %v", path, err)
		}
	}()
	chunk := make([]byte, 64<<10)
	for range maxChunks {
		free, err := Free(dir)
		if err != nil {
			t.Fatal(err)
		}
		if free <= leave {
			return path
		}
		if _, err := f.Write(chunk[:min(uint64(len(chunk)), free-leave)]); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return path
			}
			t.Fatal(err)
		}
	}
	t.Fatal("the filesystem did not fill up")
	return ""
}
