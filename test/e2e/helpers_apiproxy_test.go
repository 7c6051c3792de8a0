package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// apiProxy forwards TCP connections to the API server on loopback. Outage
// makes it look like an API server restart to its clients: open
// connections (requests, watches) are cut and new ones refused until it
// comes back on the same address. The real API server and its state are
// untouched, as etcd keeps them across a real restart.
type apiProxy struct {
	t      *testing.T
	addr   string // 127.0.0.1:PORT
	target string
	// Kubeconfig is the admin kubeconfig pointed at the proxy.
	Kubeconfig string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func startAPIProxy(t *testing.T) *apiProxy {
	t.Helper()
	u, err := url.Parse(env.APIServer)
	if err != nil {
		t.Fatal(err)
	}
	p := &apiProxy{t: t, target: u.Host, conns: map[net.Conn]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(func() {
		p.mu.Lock()
		if p.ln != nil {
			p.ln.Close()
		}
		p.mu.Unlock()
		p.cut()
		p.wg.Wait()
	})

	cfg, err := clientcmd.LoadFromFile(env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cfg.Clusters {
		c.Server = "https://" + p.addr
	}
	p.Kubeconfig = filepath.Join(t.TempDir(), "via-proxy.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, p.Kubeconfig); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *apiProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[up] = true, true
			p.mu.Unlock()
			p.wg.Add(2)
			pipe := func(dst, src net.Conn) {
				defer p.wg.Done()
				_, _ = io.Copy(dst, src)
				dst.Close()
				src.Close()
			}
			go pipe(up, c)
			go pipe(c, up)
		}
	}()
}

// cut closes every open connection.
func (p *apiProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// Outage cuts all connections and refuses new ones for d.
func (p *apiProxy) Outage(d time.Duration) {
	p.t.Helper()
	p.mu.Lock()
	p.ln.Close()
	p.ln = nil
	p.mu.Unlock()
	p.cut()
	time.Sleep(d)
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("the API proxy cannot listen on %s again: %v", p.addr, err)
	}
	p.serve(ln)
}

// apiHTTPProxy is an HTTP reverse proxy in front of the API server, on
// loopback: it terminates TLS with its own certificate (which its
// kubeconfig trusts), forwards every request with the client's bearer
// token over TLS verified with the cluster's CA, and holds the requests its
// gate matches. Unlike apiProxy it sees requests, so a test can stop the
// plugin in the middle of one chosen write.
type apiHTTPProxy struct {
	// Kubeconfig is a copy of the one given, pointed at the proxy.
	Kubeconfig string
}

func startAPIHTTPProxy(t *testing.T, kubeconfig string, g *gate) *apiHTTPProxy {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	var cluster *clientcmdapi.Cluster
	for _, c := range cfg.Clusters {
		cluster = c
	}
	upstream, err := url.Parse(cluster.Server)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(cluster.CertificateAuthorityData) {
		t.Fatal("no cluster CA in the kubeconfig")
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(upstream) },
		// Watches stream: pass every event on at once.
		// A client killed or interrupted mid-request is what the fault
		// tests do on purpose: no log line for it.
		ErrorLog:      log.New(io.Discard, "", 0),
		FlushInterval: -1,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}},
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.passIncoming(r) {
			return // the client gave up: the API server never sees the request
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	for _, c := range cfg.Clusters {
		c.Server = srv.URL
		c.CertificateAuthority = ""
		c.CertificateAuthorityData = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	}
	p := &apiHTTPProxy{Kubeconfig: filepath.Join(t.TempDir(), "via-http-proxy.kubeconfig")}
	if err := clientcmd.WriteToFile(*cfg, p.Kubeconfig); err != nil {
		t.Fatal(err)
	}
	return p
}

// secretWrite matches a create or update of Secret name in ns.
func secretWrite(ns, name string) func(r *http.Request) bool {
	return func(r *http.Request) bool {
		base := "/api/v1/namespaces/" + ns + "/secrets"
		switch r.Method {
		case http.MethodPost:
			// The name of a create is in the body; the plugin creates no
			// other Secret during an issue.
			return r.URL.Path == base
		case http.MethodPut, http.MethodPatch:
			return r.URL.Path == base+"/"+name
		}
		return false
	}
}
