// Package acme drives an ACME CA (RFC 8555) for kubectl-acme: account
// registration and the order flow, with HTTP-01 challenges answered by a
// Solver. It wraps golang.org/x/crypto/acme, bounding its retries.
package acme

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"time"

	xacme "golang.org/x/crypto/acme"
)

// Well-known directory shorthands accepted by --server.
var shorthands = map[string]string{
	"letsencrypt":         "https://acme-v02.api.letsencrypt.org/directory",
	"letsencrypt-staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
}

// ResolveServer expands a --server shorthand into a directory URL.
func ResolveServer(s string) string {
	if u, ok := shorthands[s]; ok {
		return u
	}
	return s
}

// ClientConfig says how to reach a CA.
type ClientConfig struct {
	DirectoryURL  string
	CABundle      []byte // extra roots to trust for the CA's API, PEM
	SkipTLSVerify bool
	UserAgent     string
	// Log, when set, is told of every request to the CA (see
	// RequestLogger); kubectl-acme logs them at -v=6.
	Log RequestLogger
}

// maxRetries bounds x/crypto/acme's retries of 5xx answers, which
// otherwise go on until the context ends. badNonce answers are retried up
// to maxBadNonceRetries times at once: a fresh nonce fixes them, and some
// CAs reject many nonces in a row.
const (
	maxRetries         = 5
	maxBadNonceRetries = 20
)

// PreloadSystemRoots parses the system's trusted roots in the background.
// Go parses them on first use (x509.SystemCertPool, or the first verified
// handshake), 145 roots in 35-80 ms on a two-core machine, on the path to
// the first order; a command that will talk to a CA calls this before its
// Kubernetes requests, which then hide it.
func PreloadSystemRoots() {
	go func() { _, _ = x509.SystemCertPool() }()
}

// NewClient returns a client for the CA signing with key.
func NewClient(cfg ClientConfig, key crypto.Signer) (*xacme.Client, error) {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(cfg.CABundle) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(cfg.CABundle) {
			return nil, fmt.Errorf("CA bundle has no PEM certificate")
		}
		tlsCfg.RootCAs = pool
	}
	if cfg.SkipTLSVerify {
		tlsCfg.InsecureSkipVerify = true
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		MaxIdleConnsPerHost:   8,
		ForceAttemptHTTP2:     true,
	}
	var rt http.RoundTripper = tr
	if cfg.Log != nil {
		rt = &loggingTransport{rt: tr, log: cfg.Log}
	}
	rt = newDirectoryTap(rt, cfg.DirectoryURL)
	return &xacme.Client{
		Key:          key,
		DirectoryURL: cfg.DirectoryURL,
		HTTPClient:   &http.Client{Transport: rt, Timeout: 60 * time.Second},
		UserAgent:    cfg.UserAgent,
		RetryBackoff: retryBackoff,
	}, nil
}

// retryBackoff caps retries at maxRetries, honours Retry-After up to a
// minute, and otherwise backs off exponentially with jitter. A rate limit
// (429) is never retried blindly: retrying spends more of the limit, and
// the caller reports the CA's Retry-After instead.
func retryBackoff(n int, req *http.Request, res *http.Response) time.Duration {
	if res != nil {
		if res.StatusCode >= 500 && req != nil && notRetried(req) {
			return -1
		}
		switch res.StatusCode {
		case http.StatusTooManyRequests:
			return -1
		case http.StatusBadRequest:
			// x/crypto/acme retries a 400 only for badNonce.
			if n > maxBadNonceRetries {
				return -1
			}
			return time.Duration(1+rand.N(20)) * time.Millisecond
		}
	}
	if n > maxRetries {
		return -1
	}
	if res != nil {
		if v := res.Header.Get("Retry-After"); v != "" {
			if d, err := time.ParseDuration(v + "s"); err == nil && d <= time.Minute {
				return d
			}
		}
	}
	d := time.Duration(1<<uint(n-1)) * 250 * time.Millisecond
	return d + rand.N(d/2+1)
}

// noRetryKey marks, in a request's context, the one URL whose 5xx answers
// are not retried.
type noRetryKey struct{}

// withoutRetry makes x/crypto/acme return the CA's first 5xx answer to a
// request for url instead of retrying it. For finalize: a CA that refuses
// a CSR with serverInternal (step-ca does, for a notAfter beyond its
// maximum) refuses it the same way each time, and what the order's state
// is afterwards is the only thing worth asking. badNonce is still retried.
func withoutRetry(ctx context.Context, rawURL string) context.Context {
	// Compared with the request's parsed URL, so parsed the same way.
	if u, err := url.Parse(rawURL); err == nil {
		rawURL = u.String()
	}
	return context.WithValue(ctx, noRetryKey{}, rawURL)
}

func notRetried(req *http.Request) bool {
	u, _ := req.Context().Value(noRetryKey{}).(string)
	return u != "" && req.URL != nil && req.URL.String() == u
}
