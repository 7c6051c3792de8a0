package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"testing"
	"time"
)

func leafOf(t *testing.T, chain []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(chain)
	if b == nil {
		t.Fatal("no certificate")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// setRenewalInfo moves a certificate's ARI window with Pebble's
// management API.
func setRenewalInfo(t *testing.T, chainPEM []byte, start, end time.Time) {
	t.Helper()
	b, _ := pem.Decode(chainPEM)
	ari, _ := json.Marshal(map[string]any{"suggestedWindow": map[string]string{
		"start": start.Format(time.RFC3339), "end": end.Format(time.RFC3339)}})
	body, _ := json.Marshal(map[string]string{
		"Certificate": string(pem.EncodeToMemory(b)), "ARIResponse": string(ari)})
	res, err := managementClient(t).Post(env.PebbleManagement+"/set-renewal-info/", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("set-renewal-info: %s", res.Status)
	}
}

func managementClient(t *testing.T) *http.Client {
	t.Helper()
	ca, err := os.ReadFile(env.ACMECABundle)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}
