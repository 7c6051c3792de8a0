package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

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
	// before holds matching requests before Pebble sees them; after holds
	// Pebble's answers to matching requests, once Pebble has acted on them.
	before, after *gate
}

// Pebble's endpoints the fault tests hold requests at.
const (
	challengePath = "/chalZ/"          // POST {}: the client asks the CA to validate
	finalizePath  = "/finalize-order/" // POST CSR: the CA issues
)

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
		// A client killed or interrupted mid-request is what the fault
		// tests do on purpose: no log line for it.
		ErrorLog:  log.New(io.Discard, "", 0),
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}},
		ModifyResponse: func(res *http.Response) error {
			p.mu.Lock()
			after := p.after
			p.mu.Unlock()
			if after != nil && !after.pass(res.Request) {
				return res.Request.Context().Err()
			}
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
		p.mu.Lock()
		before := p.before
		p.mu.Unlock()
		if before != nil && !before.passIncoming(r) {
			return // the client gave up: Pebble never sees the request
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

// jwsPayload is the decoded payload of r's JWS body, nil when there is
// none; r's body is left for the proxy to send on.
func jwsPayload(r *http.Request) []byte {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	var jws struct{ Payload string }
	if json.Unmarshal(body, &jws) != nil {
		return nil
	}
	payload, err := base64.RawURLEncoding.DecodeString(jws.Payload)
	if err != nil {
		return nil
	}
	return payload
}

// answerNewOrder makes the proxy answer newOrder requests with f.
func (p *caProxy) answerNewOrder(f func(w http.ResponseWriter, r *http.Request, n int) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.onNewOrder = f
}

// holdBefore holds requests g matches before they reach Pebble.
func (p *caProxy) holdBefore(g *gate) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.before = g
}

// holdAfter lets requests g matches reach Pebble and holds its answers.
func (p *caProxy) holdAfter(g *gate) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.after = g
}

// gate holds the HTTP requests it matches in a proxy until released, and
// reports the first one held, so a test can act while a client waits for
// an answer at a known step instead of guessing with sleeps.
type gate struct {
	match     func(r *http.Request) bool
	held      chan struct{} // closed once a request is held
	released  chan struct{}
	abandoned chan struct{} // closed once a held request's client went away
	heldOnce  sync.Once
	relOnce   sync.Once
	abandOnce sync.Once
}

func newGate(match func(r *http.Request) bool) *gate {
	return &gate{match: match, held: make(chan struct{}), released: make(chan struct{}), abandoned: make(chan struct{})}
}

// pass blocks a matching request until Release; it returns false if the
// client went away first. Other requests pass at once.
func (g *gate) pass(r *http.Request) bool {
	if !g.match(r) {
		return true
	}
	g.heldOnce.Do(func() { close(g.held) })
	select {
	case <-g.released:
		return true
	case <-r.Context().Done():
		g.abandOnce.Do(func() { close(g.abandoned) })
		return false
	}
}

// waitAbandoned waits until the proxy has seen a held request's client go
// away (the server notices a closed connection a moment after the kill),
// so a Release after it cannot let that request through.
func (g *gate) waitAbandoned(t *testing.T) {
	t.Helper()
	select {
	case <-g.abandoned:
	case <-time.After(30 * time.Second):
		t.Fatal("the proxy did not notice the killed client's held request end")
	}
}

// passIncoming is pass for a request a proxy has received and not yet
// forwarded. It reads the body first: only then does the server watch the
// connection and end the request's context when the client dies; unread,
// a dead client's request would still be forwarded on Release.
func (g *gate) passIncoming(r *http.Request) bool {
	if !g.match(r) {
		return true
	}
	body, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return g.pass(r)
}

// Release lets held and later requests through.
func (g *gate) Release() { g.relOnce.Do(func() { close(g.released) }) }

// waitHeld waits until a request is held, failing the test after timeout.
func (g *gate) waitHeld(t *testing.T, timeout time.Duration, what string) {
	t.Helper()
	select {
	case <-g.held:
	case <-time.After(timeout):
		t.Fatalf("timed out after %s waiting for the proxy to hold %s", timeout, what)
	}
}

// postTo matches POSTs to a path with the given prefix.
func postTo(prefix string) func(r *http.Request) bool {
	return func(r *http.Request) bool {
		return r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, prefix)
	}
}

// createIssuerVia registers an Issuer against Pebble through the proxy.
func createIssuerVia(t *testing.T, p *caProxy, ns, name string) {
	t.Helper()
	mustACME(t, env.Kubeconfig, "create", "issuer", name, "-n", ns,
		"--server", p.Directory, "--ca-bundle", p.CABundle,
		"--email", "e2e@example.com", "--ingress-class", env.IngressClass, "--agree-tos")
}
