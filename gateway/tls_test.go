package gateway_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trustreg/trustreg/configs"
)

// selfSigned is a certificate for 127.0.0.1 with its key, as PEM.
type selfSigned struct {
	cert    *x509.Certificate
	certPEM []byte
	keyPEM  []byte
}

func mustSelfSigned(t testing.TB, serial int64) selfSigned {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "trustd test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return selfSigned{cert: cert, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})}
}

// write puts the pair into certFile and keyFile.
func (s selfSigned) write(t testing.TB, certFile, keyFile string) {
	t.Helper()
	if err := os.WriteFile(certFile, s.certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, s.keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
}

// servedSerial makes a new HTTPS connection to url and returns the serial
// number of the certificate the server presented; the client trusts
// roots.
func servedSerial(t testing.TB, url string, roots *x509.CertPool) int64 {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("GET", url, nil)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 {
		t.Fatalf("GET %s: %d, TLS %v", url, resp.StatusCode, resp.TLS)
	}
	return resp.TLS.PeerCertificates[0].SerialNumber.Int64()
}

// TestTLSServedAndReloaded: with certificate and key files the gateway
// and the admin API serve HTTPS; ReloadTLS (trustd's SIGHUP) serves a new
// pair from the next connection on, and a pair that does not load is
// reported and leaves the one served before.
func TestTLSServedAndReloaded(t *testing.T) {
	dir := t.TempDir()
	gwCert, gwKey := filepath.Join(dir, "gateway.crt"), filepath.Join(dir, "gateway.key")
	adCert, adKey := filepath.Join(dir, "admin.crt"), filepath.Join(dir, "admin.key")
	first, second, third := mustSelfSigned(t, 1), mustSelfSigned(t, 2), mustSelfSigned(t, 3)
	first.write(t, gwCert, gwKey)
	first.write(t, adCert, adKey)
	n := mustNewNode(t, func(c *configs.Config) {
		c.HTTP.TLSCertFile, c.HTTP.TLSKeyFile = gwCert, gwKey
		c.Admin.TLSCertFile, c.Admin.TLSKeyFile = adCert, adKey
	})
	roots := x509.NewCertPool()
	for _, s := range []selfSigned{first, second, third} {
		roots.AddCert(s.cert)
	}
	gw, admin := n.GatewayURL()+"/healthz", n.AdminURL()+"/admin/v1/digest"
	if !strings.HasPrefix(gw, "https://") || !strings.HasPrefix(admin, "https://") {
		t.Fatalf("URLs %s and %s are not https", gw, admin)
	}
	if g, a := servedSerial(t, gw, roots), servedSerial(t, admin, roots); g != 1 || a != 1 {
		t.Fatalf("serials %d and %d served, want 1", g, a)
	}

	second.write(t, gwCert, gwKey)
	third.write(t, adCert, adKey)
	if served, err := n.ReloadTLS(); !served || err != nil {
		t.Fatalf("reload: %v %v", served, err)
	}
	if g, a := servedSerial(t, gw, roots), servedSerial(t, admin, roots); g != 2 || a != 3 {
		t.Fatalf("after the reload, serials %d and %d served, want 2 and 3", g, a)
	}

	// A broken pair (a key that is not the certificate's, a certificate
	// file cut short) is reported; the pairs served stay.
	if err := os.WriteFile(gwKey, first.keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(adCert, third.certPEM[:40], 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := n.ReloadTLS()
	if err == nil || !strings.Contains(err.Error(), gwCert) || !strings.Contains(err.Error(), adCert) {
		t.Fatalf("reload of broken pairs: %v, want errors naming %s and %s", err, gwCert, adCert)
	}
	if g, a := servedSerial(t, gw, roots), servedSerial(t, admin, roots); g != 2 || a != 3 {
		t.Fatalf("after a failed reload, serials %d and %d served, want 2 and 3", g, a)
	}
}
