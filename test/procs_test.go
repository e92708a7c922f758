package test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/trustreg/trustreg/test/netns"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// mustBuild builds trustd and trustctl once per test binary.
func mustBuild(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "trustreg-bin-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", binDir+"/", "./cmd/trustd", "./cmd/trustctl")
		cmd.Dir = ".."
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = err
			binDir = string(out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build: %v\n%s", buildErr, binDir)
	}
	return binDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" && buildErr == nil {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// proc is a trustd process started by a test.
type proc struct {
	cmd    *exec.Cmd
	url    string
	stderr *lockedBuffer
	done   chan error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startTrustd starts trustd in dir with args and waits until its gateway
// answers /readyz.
func startTrustd(t *testing.T, bin, dir string, args ...string) *proc {
	t.Helper()
	p, err := tryStartTrustd(t, bin, dir, args...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// tryStartTrustd is startTrustd reporting failure as an error, for
// goroutines other than the test's (t.Fatal there would end only that
// goroutine and leave the test running without the process).
func tryStartTrustd(t *testing.T, bin, dir string, args ...string) (*proc, error) {
	return tryStartTrustdOn(t, nil, bin, dir, args...)
}

// tryStartTrustdOn is tryStartTrustd on host h (nil: this machine's
// network, as tryStartTrustd).
func tryStartTrustdOn(t *testing.T, h *netns.Host, bin, dir string, args ...string) (*proc, error) {
	var cmd *exec.Cmd
	if h != nil {
		cmd = h.Command(filepath.Join(bin, "trustd"), args...)
	} else {
		cmd = exec.Command(filepath.Join(bin, "trustd"), args...)
	}
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOCOVERDIR=")
	return tryStartCmd(t, h, cmd, args)
}

// tryStartCmd starts cmd, trustd with args set up to run on host h (nil:
// this machine's network), directly or through a program that executes it
// (such as setpriv), and waits until its gateway answers /readyz.
func tryStartCmd(t *testing.T, h *netns.Host, cmd *exec.Cmd, args []string) (*proc, error) {
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, stderr: &lockedBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { p.kill() })
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "gateway"); ok {
				select {
				case urls <- strings.TrimSpace(rest):
				default:
				}
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() { p.done <- cmd.Wait() }()
	select {
	case p.url = <-urls:
		if h != nil && h.Via.IsValid() {
			// Behind NAT: the router forwards the gateway's port.
			p.url = strings.Replace(p.url, h.IP.String(), h.Via.String(), 1)
		}
	case err := <-p.done:
		return nil, fmt.Errorf("trustd %v exited early: %v\n%s", args, err, p.stderr)
	case <-time.After(30 * time.Second):
		return nil, fmt.Errorf("trustd %v printed no gateway URL\n%s", args, p.stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		resp, err := http.Get(p.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("trustd at %s never became ready\n%s", p.url, p.stderr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("trustd exited with %v after SIGTERM\n%s", err, p.stderr)
		}
		p.done <- nil
	case <-time.After(20 * time.Second):
		t.Fatal("trustd did not stop within 20s of SIGTERM")
	}
}

// kill ends the process (by its pid) if it still runs.
func (p *proc) kill() {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Kill()
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
		}
	}
}
