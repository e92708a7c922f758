package ports

import (
	"net"
	"os"
	"strconv"
	"testing"
)

// TestFreeNeverRepeats asks for more ports than any test cluster uses and
// checks that none comes back twice and each can be bound for TCP and UDP.
func TestFreeNeverRepeats(t *testing.T) {
	seen := make(map[int]bool)
	for range 200 {
		p, err := Free()
		if err != nil {
			t.Fatal(err)
		}
		if p <= 0 || p > 65535 {
			t.Fatalf("port %d out of range", p)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
	p, err := Free()
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("tcp %s: %v", addr, err)
	}
	defer ln.Close()
	udp, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatalf("udp %s: %v", addr, err)
	}
	udp.Close()
}

// TestFreeStaysBelowTheEphemeralRange checks that, where the kernel says
// where its ephemeral ports start, every port handed out lies below it
// (where no outgoing connection can hold it while a test's node is down),
// and that without the range file the kernel's choice is used.
func TestFreeStaysBelowTheEphemeralRange(t *testing.T) {
	start, err := ephemeralStart()
	if err != nil {
		t.Skipf("the kernel's ephemeral range is unknown here: %v", err)
	}
	if start <= lowest {
		t.Skipf("the ephemeral range starts at %d, not above %d", start, lowest)
	}
	for range 50 {
		p, err := Free()
		if err != nil {
			t.Fatal(err)
		}
		if p < lowest || p >= start {
			t.Fatalf("port %d outside [%d, %d)", p, lowest, start)
		}
	}

	saved := rangeFile
	rangeFile = t.TempDir() + "/absent"
	defer func() { rangeFile = saved }()
	p, err := Free()
	if err != nil {
		t.Fatalf("without the range file: %v", err)
	}
	if p <= 0 || p > 65535 {
		t.Fatalf("without the range file: port %d out of range", p)
	}
}

// TestEphemeralStartRejectsAMalformedFile checks the range file's parse.
func TestEphemeralStartRejectsAMalformedFile(t *testing.T) {
	saved := rangeFile
	defer func() { rangeFile = saved }()
	rangeFile = t.TempDir() + "/range"
	for _, c := range []struct {
		text string
		want int
		ok   bool
	}{
		{"32768\t60999\n", 32768, true},
		{"1024 65535", 1024, true},
		{"32768", 0, false},
		{"x 60999", 0, false},
		{"", 0, false},
	} {
		if err := os.WriteFile(rangeFile, []byte(c.text), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := ephemeralStart()
		if (err == nil) != c.ok || (c.ok && got != c.want) {
			t.Errorf("%q: got %d, %v; want %d, ok=%v", c.text, got, err, c.want, c.ok)
		}
	}
}
