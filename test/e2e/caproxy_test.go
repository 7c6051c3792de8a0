package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	testenv "github.com/kubectl-acme/kubectl-acme/test/env"
)

// caProxy is a small fake CA in front of Pebble, on loopback, for the
// answers Pebble cannot give: it counts new orders and can answer them
// itself. It keeps the client's Host header, so Pebble writes the proxy's
// URLs into directory, orders and Location headers, and the client never
// learns Pebble's own address.
type caProxy struct {
	srv *httptest.Server
	// Directory is the proxy's directory URL; CABundle a PEM file with the
	// proxy's certificate, for --ca-bundle.
	Directory, CABundle string

	mu          sync.Mutex
	newOrders   int
	badRequests int // 400 answers from Pebble: badNonce
	// onNewOrder, when set, may answer a newOrder request itself (it
	// returns true) instead of passing it to Pebble.
	onNewOrder func(w http.ResponseWriter, r *http.Request, n int) bool
}

// newOrderPath is Pebble's newOrder endpoint.
const newOrderPath = "/order-plz"

func startCAProxy(t *testing.T) *caProxy {
	t.Helper()
	return startCAProxyFor(t, env)
}

// startCAProxyFor puts the proxy in front of e's Pebble.
func startCAProxyFor(t *testing.T, e *testenv.Env) *caProxy {
	t.Helper()
	upstream, err := url.Parse(e.ACMEServer)
	if err != nil {
		t.Fatal(err)
	}
	upstream.Path = ""
	caPEM, err := os.ReadFile(e.ACMECABundle)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	p := &caProxy{}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(upstream)
			r.Out.Host = r.In.Host
		},
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}},
		ModifyResponse: func(res *http.Response) error {
			// Pebble answers 400 to a POST only for a bad nonce or a bad
			// request; the tests send no bad requests.
			if res.StatusCode == http.StatusBadRequest {
				p.mu.Lock()
				p.badRequests++
				p.mu.Unlock()
			}
			return nil
		},
	}
	p.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, newOrderPath) {
			p.mu.Lock()
			p.newOrders++
			n, answer := p.newOrders, p.onNewOrder
			p.mu.Unlock()
			if answer != nil && answer(w, r, n) {
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	p.Directory = p.srv.URL + "/dir"
	p.CABundle = filepath.Join(t.TempDir(), "caproxy.pem")
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.srv.Certificate().Raw})
	if err := os.WriteFile(p.CABundle, cert, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// NewOrders is how many newOrder requests reached the proxy.
func (p *caProxy) NewOrders() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.newOrders
}

// BadRequests is how many 400 answers Pebble gave.
func (p *caProxy) BadRequests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.badRequests
}

// answerNewOrder makes the proxy answer newOrder requests with f.
func (p *caProxy) answerNewOrder(f func(w http.ResponseWriter, r *http.Request, n int) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.onNewOrder = f
}

// createIssuerVia registers an Issuer against Pebble through the proxy.
func createIssuerVia(t *testing.T, p *caProxy, ns, name string) {
	t.Helper()
	mustACME(t, env.Kubeconfig, "create", "issuer", name, "-n", ns,
		"--server", p.Directory, "--ca-bundle", p.CABundle,
		"--email", "e2e@example.com", "--ingress-class", env.IngressClass, "--agree-tos")
}
