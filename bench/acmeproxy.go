package bench

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"
)

// acmeProxy is a counting reverse proxy in front of the CA's API. It
// terminates TLS with its own CA (CAPEM) and keeps the client's Host
// header, so Pebble builds every URL it hands out (and checks every JWS
// "url") with the proxy's address and all later requests come back here.
type acmeProxy struct {
	URL   string // https://127.0.0.1:PORT/dir
	CAPEM []byte // trust this for URL

	srv *http.Server
	mu  sync.Mutex
	n   map[string]int
}

// acmeEndpoints names Pebble's paths after the ACME resources (RFC 8555,
// RFC 9773 for renewalInfo).
var acmeEndpoints = []struct{ prefix, name string }{
	{"/dir", "directory"},
	{"/nonce-plz", "newNonce"},
	{"/sign-me-up", "newAccount"},
	{"/my-account/", "account"},
	{"/order-plz", "newOrder"},
	{"/my-order/", "order"},
	{"/finalize-order/", "finalize"},
	{"/authZ/", "authz"},
	{"/chalZ/", "challenge"},
	{"/certZ/", "certificate"},
	{"/revoke-cert", "revokeCert"},
	{"/rollover-account-key", "keyChange"},
	{"/draft-ietf-acme-ari-", "renewalInfo"},
}

// acmeEndpoint names a request: "POST newOrder", "HEAD newNonce".
func acmeEndpoint(method, path string) string {
	for _, e := range acmeEndpoints {
		if strings.HasPrefix(path, e.prefix) {
			return method + " " + e.name
		}
	}
	return method + " " + path
}

// startACMEProxy proxies to the directory upstream (its API trusted with
// upstreamCA).
func startACMEProxy(upstream string, upstreamCA []byte) (*acmeProxy, error) {
	u, err := url.Parse(upstream)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(upstreamCA) {
		return nil, fmt.Errorf("acme proxy: no certificate in the upstream CA bundle")
	}
	caPEM, cert, err := selfSignedLoopback()
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &acmeProxy{URL: "https://" + l.Addr().String() + u.Path, CAPEM: caPEM, n: map[string]int{}}
	target := &url.URL{Scheme: u.Scheme, Host: u.Host}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host
		},
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true},
	}
	p.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p.mu.Lock()
			p.n[acmeEndpoint(r.Method, r.URL.Path)]++
			p.mu.Unlock()
			rp.ServeHTTP(w, r)
		}),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}},
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = p.srv.ServeTLS(l, "", "") }()
	return p, nil
}

// Take returns the counts since the last Take and starts afresh.
func (p *acmeProxy) Take() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.n
	p.n = map[string]int{}
	return n
}

func (p *acmeProxy) Close() error { return p.srv.Close() }

// selfSignedLoopback makes a CA and a serving certificate for 127.0.0.1.
func selfSignedLoopback() (caPEM []byte, _ tls.Certificate, _ error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kubectl-acme bench proxy CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	return caPEM, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// perCert divides counts by n.
func perCert(counts map[string]int, n int) (total float64, by map[string]float64) {
	by = map[string]float64{}
	for k, v := range counts {
		by[k] = float64(v) / float64(n)
		total += float64(v)
	}
	return total / float64(n), by
}
