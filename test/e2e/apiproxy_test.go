package e2e

import (
	"io"
	"net"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
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
