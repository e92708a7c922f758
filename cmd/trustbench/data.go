package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trustreg/trustreg/registry/record"
)

const (
	benchFramework = "https://bench.example/frameworks/health"
	benchResource  = "https://bench.example/credentials/Nursing"
)

// dataset is a framework with a root accreditor, agencies and
// sub-agencies, and colleges accredited under them in chains of depth 2
// and 3. Agencies sign with did:keys; sub-agencies are registered did:web
// entities signing with their registered keys, as most accreditors would,
// so half the colleges' operations take each path.
type dataset struct {
	gov, root   *record.Signer
	agencies    []*record.Signer
	agencyAccs  []string
	subs        []*record.Signer
	subAccs     []string
	colleges    int // loaded so far
	collegeDIDs []string
}

func sign(s *record.Signer, fields map[string]any) []byte {
	fields["iat"] = time.Now().Unix()
	raw, _ := json.Marshal(fields)
	jws, err := s.SignCompact(raw)
	if err != nil {
		panic(err)
	}
	return jws
}

func submit(client *http.Client, base string, jws []byte) (*record.Result, error) {
	resp, err := client.Post(base+"/v1/operations", "application/jose", bytes.NewReader(jws))
	if err != nil {
		return nil, err
	}
	defer closeRead(resp.Body)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 201 && resp.StatusCode != 200 {
		return nil, fmt.Errorf("submit: %d %s", resp.StatusCode, body)
	}
	var r record.Result
	return &r, json.Unmarshal(body, &r)
}

// newDataset creates the framework and the agency layers.
func newDataset(base string, gov *record.Signer) (*dataset, error) {
	d := &dataset{gov: gov}
	d.root, _ = record.GenerateKey(record.KeyEd25519)
	client := newClient(4)
	payload, _ := json.Marshal(map[string]any{"op": record.OpCreateFramework, "iat": time.Now().Unix(), "id": benchFramework, "name": "Bench", "roots": []string{d.root.DID}})
	jws, _ := record.SignJSON(payload, gov)
	if _, err := submit(client, base, jws); err != nil {
		return nil, err
	}
	for range 10 {
		a, _ := record.GenerateKey(record.KeyEd25519)
		r, err := submit(client, base, sign(d.root, map[string]any{"op": "accredit", "framework": benchFramework, "accreditor": d.root.DID,
			"subject": a.DID, "action": "accredit", "resources": []string{benchResource}, "validFrom": "2020-01-01T00:00:00Z"}))
		if err != nil {
			return nil, err
		}
		d.agencies, d.agencyAccs = append(d.agencies, a), append(d.agencyAccs, r.ID)
	}
	for i := range 10 {
		s, err := registeredSigner(client, base, gov, fmt.Sprintf("did:web:sub-agency-%d.bench.example", i))
		if err != nil {
			return nil, err
		}
		r, err := submit(client, base, sign(d.agencies[i], map[string]any{"op": "accredit", "framework": benchFramework, "accreditor": d.agencies[i].DID,
			"subject": s.DID, "action": "accredit", "resources": []string{benchResource}, "parent": d.agencyAccs[i], "validFrom": "2021-01-01T00:00:00Z"}))
		if err != nil {
			return nil, err
		}
		d.subs, d.subAccs = append(d.subs, s), append(d.subAccs, r.ID)
	}
	return d, nil
}

// registeredSigner registers did as an entity with a new Ed25519 key
// (signed by governance) and returns the signer of that key.
func registeredSigner(client *http.Client, base string, gov *record.Signer, did string) (*record.Signer, error) {
	k, err := record.GenerateKey(record.KeyEd25519)
	if err != nil {
		return nil, err
	}
	s, err := k.WithKID(did + "#key-1")
	if err != nil {
		return nil, err
	}
	jwk, err := s.PublicJWK()
	if err != nil {
		return nil, err
	}
	payload, _ := json.Marshal(map[string]any{"op": record.OpRegisterEntity, "iat": time.Now().Unix(), "id": did, "name": "Bench sub-agency", "keys": []json.RawMessage{jwk}})
	jws, err := record.SignJSON(payload, gov)
	if err != nil {
		return nil, err
	}
	if _, err := submit(client, base, jws); err != nil {
		return nil, fmt.Errorf("register %s: %w", did, err)
	}
	return s, nil
}

// collegeOp accredits college i: even ones under an agency (a chain of
// two), odd ones under a sub-agency (three).
func (d *dataset) collegeOp(i int) ([]byte, string) {
	did := fmt.Sprintf("did:web:college-%d.bench.example", i)
	k := i % 10
	signer, parent := d.agencies[k], d.agencyAccs[k]
	if i%2 == 1 {
		signer, parent = d.subs[k], d.subAccs[k]
	}
	return sign(signer, map[string]any{"op": "accredit", "framework": benchFramework, "accreditor": signer.DID, "subject": did,
		"action": "issue", "resources": []string{benchResource}, "parent": parent, "validFrom": "2022-01-01T00:00:00Z"}), did
}

// loadColleges accredits colleges until there are n, with 32 concurrent
// submitters, printing progress to stderr.
func (d *dataset) loadColleges(ctx context.Context, bases []string, n int) error {
	if n <= d.colleges {
		return nil
	}
	from := d.colleges
	total := n - from
	var next atomic.Int64
	next.Store(int64(from))
	var done atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	dids := make([]string, total)
	client := newClient(32)
	start := time.Now()
	stop := make(chan struct{})
	go progress(stop, "loading colleges", &done, int64(total), start)
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				jws, did := d.collegeOp(i)
				var err error
				for try := range 5 {
					if _, err = submit(client, bases[(w+try)%len(bases)], jws); err == nil {
						break
					}
					time.Sleep(100 * time.Millisecond) // back off and retry (idempotent)
				}
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				dids[i-from] = did
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	close(stop)
	if firstErr != nil {
		return firstErr
	}
	d.collegeDIDs = append(d.collegeDIDs, dids...)
	d.colleges = n
	fmt.Fprintf(os.Stderr, "\rloaded %d colleges in %s (%.0f ops/s)%20s\n", total, time.Since(start).Round(time.Millisecond), float64(total)/time.Since(start).Seconds(), "")
	return nil
}

func progress(stop chan struct{}, what string, done *atomic.Int64, total int64, start time.Time) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			n := done.Load()
			bar := int(40 * n / max(total, 1))
			fmt.Fprintf(os.Stderr, "\r%s [%-40s] %d/%d %.0f/s", what, string(bytes.Repeat([]byte{'#'}, bar)), n, total, float64(n)/time.Since(start).Seconds())
		}
	}
}

// trustURLs returns query URLs for m colleges spread over those loaded,
// each a different college while m is at most their number.
func (d *dataset) trustURLs(base string, m int) []string {
	n := len(d.collegeDIDs)
	stride := 7919 // a prime: a stride coprime with n visits every college
	if n%stride == 0 {
		stride = 1
	}
	out := make([]string, 0, m)
	for i := range m {
		out = append(out, trustURL(base, d.collegeDIDs[(i*stride)%n]))
	}
	return out
}

// trustURL asks whether did may issue the benchmark's credential.
func trustURL(base, did string) string {
	q := url.Values{"entity": {did}, "framework": {benchFramework}, "resource": {benchResource}}
	return base + "/v1/trust?" + q.Encode()
}
