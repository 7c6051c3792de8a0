package simnode

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// kubeletServer serves the one kubelet API endpoint that `kubectl logs`
// needs, so a failing test's pods can be inspected as on a real cluster.
// The API server does not verify kubelet serving certificates unless told
// to, so a self-signed one does.
func (k *kubelet) kubeletServer() (*http.Server, net.Listener, int, error) {
	cert, err := selfSignedCert(k.hostIP)
	if err != nil {
		return nil, nil, 0, err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(k.hostIP, "0"))
	if err != nil {
		return nil, nil, 0, fmt.Errorf("listen for the kubelet API: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containerLogs/{ns}/{pod}/{container}", k.serveLogs)
	srv := &http.Server{
		Handler:           mux,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}},
		ReadHeaderTimeout: 10 * time.Second,
	}
	return srv, tls.NewListener(ln, srv.TLSConfig), ln.Addr().(*net.TCPAddr).Port, nil
}

// logPath finds a container's log. waiting is the kubelet's answer for a
// container that has not started yet.
func (k *kubelet) logPath(ns, pod, container string) (path string, running func() bool, waiting string, ok bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, w := range k.workers {
		w.mu.Lock()
		p, sb := w.pod, w.sb
		st := w.ctrs[container]
		started, reason := st != nil && st.id != "", "ContainerCreating"
		if st != nil && st.waiting != "" {
			reason = st.waiting
		}
		w.mu.Unlock()
		if p.Namespace != ns || p.Name != pod {
			continue
		}
		if !started || sb == nil {
			return "", nil, fmt.Sprintf("container %q in pod %q is waiting to start: %s", container, pod, reason), true
		}
		running := func() bool {
			w.mu.Lock()
			defer w.mu.Unlock()
			return st.running
		}
		return filepath.Join(sb.dir, "logs", container+".log"), running, "", true
	}
	return "", nil, "", false
}

// serveLogs implements GET /containerLogs with tailLines, limitBytes and
// follow. A container's runs share one log, so previous is not supported.
func (k *kubelet) serveLogs(w http.ResponseWriter, r *http.Request) {
	ns, pod, container := r.PathValue("ns"), r.PathValue("pod"), r.PathValue("container")
	p, running, waiting, ok := k.logPath(ns, pod, container)
	switch {
	case !ok:
		http.Error(w, fmt.Sprintf("pod %s/%s is not running on this node", ns, pod), http.StatusNotFound)
		return
	case waiting != "":
		http.Error(w, waiting, http.StatusBadRequest)
		return
	}
	q := r.URL.Query()
	f, err := os.Open(p)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if n, err := strconv.Atoi(q.Get("tailLines")); err == nil && n >= 0 {
		data = lastLines(data, n)
	}
	if n, err := strconv.Atoi(q.Get("limitBytes")); err == nil && n >= 0 && n < len(data) {
		data = data[:n]
	}
	w.Header().Set("Content-Type", "text/plain")
	if _, err := w.Write(data); err != nil || q.Get("follow") != "true" {
		return
	}
	fl, _ := w.(http.Flusher)
	rd := bufio.NewReader(f)
	for {
		if fl != nil {
			fl.Flush()
		}
		select {
		case <-r.Context().Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
		if _, err := io.Copy(w, rd); err != nil {
			return
		}
		if !running() {
			_, _ = io.Copy(w, rd)
			return
		}
	}
}

func lastLines(data []byte, n int) []byte {
	if n == 0 {
		return nil
	}
	end := len(data)
	if end > 0 && data[end-1] == '\n' {
		end--
	}
	for i := 0; i < n; i++ {
		j := bytes.LastIndexByte(data[:end], '\n')
		if j < 0 {
			return data
		}
		end = j
	}
	return data[end+1:]
}

func selfSignedCert(ip string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("kubelet key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "simnode kubelet"},
		IPAddresses:  []net.IP{net.ParseIP(ip)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("kubelet certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// serveKubelet runs srv on ln until ctx ends.
func serveKubelet(ctx context.Context, srv *http.Server, ln net.Listener) {
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	_ = srv.Serve(ln)
}
