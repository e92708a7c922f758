package client

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// TestClientServesSeveralGoroutines: one Client used from several
// goroutines at once (run with -race: the endpoint in use is read and
// written under one lock).
func TestClientServesSeveralGoroutines(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	c := New(srv.URL)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				var out map[string]any
				if err := c.Get(context.Background(), "/v1/status", nil, &out); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
