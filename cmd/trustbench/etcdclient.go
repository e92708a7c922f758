package main

import (
	"context"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// etcdSender puts keys through etcd's own Go client (gRPC), the way etcd's
// users write to it: one client, so one gRPC connection, per worker, the
// workers spread over the members as trustd's writers are spread over its
// nodes. A request's url is the key and its body the value.
type etcdSender struct {
	c   *clientv3.Client
	err error
}

// etcdSenders returns a sender factory over the members' client URLs.
func etcdSenders(endpoints []string) func(worker int) sender {
	return func(w int) sender {
		c, err := clientv3.New(clientv3.Config{
			Endpoints:   []string{endpoints[w%len(endpoints)]},
			DialTimeout: 5 * time.Second,
			// The client's own logging is noise on the benchmark's
			// terminal; its errors reach do's caller.
			Logger: zap.NewNop(),
		})
		return &etcdSender{c: c, err: err}
	}
}

func (s *etcdSender) do(ctx context.Context, r request) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	if _, err := s.c.Put(ctx, r.url, string(r.body)); err != nil {
		return 0, err
	}
	return 200, nil
}

func (s *etcdSender) close() {
	if s.c != nil {
		_ = s.c.Close()
	}
}
