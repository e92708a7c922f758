package main

import (
	"context"
	"fmt"
	"os/exec"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// TestEtcdBaselinePutsThroughItsGoClient drives a real etcd cluster
// (Debian's etcd-server) through etcd's Go client with the benchmark's
// closed loop, and reads back what the loop counted as written.
func TestEtcdBaselinePutsThroughItsGoClient(t *testing.T) {
	if _, err := exec.LookPath("etcd"); err != nil {
		t.Skip("etcd is not installed (Debian's etcd-server; .ci/run installs it)")
	}
	procs, urls, err := startEtcdCluster(t.TempDir(), 3)
	t.Cleanup(func() {
		for _, p := range procs {
			p.stop()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	value := []byte("a value of some bytes")
	next := func(w int, i int64) (request, bool) {
		return request{url: fmt.Sprintf("test/%d", i), body: value}, i <= 200
	}
	s := closedLoopOf(context.Background(), 6, 20*time.Second, etcdSenders(urls), next, func(c int) bool { return c == 200 })
	if s.Errors != 0 || s.Requests == 0 {
		t.Fatalf("%d puts acknowledged, %d errors", s.Requests, s.Errors)
	}

	c, err := clientv3.New(clientv3.Config{Endpoints: urls[2:], DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := c.Get(ctx, "test/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if got.Count < s.Requests {
		t.Fatalf("etcd holds %d keys, the loop counted %d acknowledged puts", got.Count, s.Requests)
	}
}
