package configs

import (
	"errors"
	"syscall"
	"testing"
	"unsafe"
)

// TestConfigFileReadOnce: Load opens the configuration file once, so the
// configuration, its key checks and its case check all come from the same
// text even when the file is rewritten meanwhile. Inotify counts the opens.
func TestConfigFileReadOnce(t *testing.T) {
	file := writeFile(t, "log:\n  level: warn\n")
	fd, err := syscall.InotifyInit1(syscall.IN_NONBLOCK | syscall.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := syscall.Close(fd); err != nil {
			t.Error(err)
		}
	})
	// Closes between the opens keep inotify from merging two opens in a row
	// into one event.
	if _, err := syscall.InotifyAddWatch(fd, file, syscall.IN_OPEN|syscall.IN_CLOSE_NOWRITE); err != nil {
		t.Fatal(err)
	}

	c, err := Load(mustFlags(t, "--config", file), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Log.Level != "warn" {
		t.Fatalf("log.level %q, want warn", c.Log.Level)
	}

	opens := 0
	buf := make([]byte, 4096)
	for range 100 { // at most 100 reads of queued events
		n, err := syscall.Read(fd, buf)
		if errors.Is(err, syscall.EAGAIN) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off+syscall.SizeofInotifyEvent <= n; {
			ev := (*syscall.InotifyEvent)(unsafe.Pointer(&buf[off]))
			if ev.Mask&syscall.IN_OPEN != 0 {
				opens++
			}
			off += syscall.SizeofInotifyEvent + int(ev.Len)
		}
	}
	if opens != 1 {
		t.Errorf("Load opened the configuration file %d times, want once", opens)
	}
}
