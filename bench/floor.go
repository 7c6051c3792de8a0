package bench

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	xacme "golang.org/x/crypto/acme"
)

// floor is the least a client can do for one certificate: the ACME
// round trips of golang.org/x/crypto/acme with an in-process HTTP-01
// responder, a registered account and a warm connection. It makes the
// same kind of key as kubectl-acme's default (RSA 2048) and asks for the
// same profile.
type floor struct {
	c       *xacme.Client
	profile string

	mu     sync.Mutex
	tokens map[string]string // token -> key authorization
}

var _ http.Handler = (*floor)(nil)

func newFloor(ctx context.Context, dirURL string, caPEM []byte, profile string) (*floor, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("floor: no certificate in the CA bundle")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	f := &floor{
		c: &xacme.Client{
			Key:          key,
			DirectoryURL: dirURL,
			HTTPClient:   &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}},
			UserAgent:    "kubectl-acme-bench-floor",
		},
		profile: profile,
		tokens:  map[string]string{},
	}
	if _, err := f.c.Register(ctx, &xacme.Account{Contact: []string{"mailto:floor@example.com"}}, xacme.AcceptTOS); err != nil {
		return nil, fmt.Errorf("floor: register: %w", err)
	}
	return f, nil
}

// ServeHTTP answers http-01 challenges.
func (f *floor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	token, ok := strings.CutPrefix(r.URL.Path, "/.well-known/acme-challenge/")
	f.mu.Lock()
	ka, known := f.tokens[token]
	f.mu.Unlock()
	if !ok || !known {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte(ka))
}

// serveFloors answers the floors' http-01 challenges on a port of its
// own; the switchboard passes Pebble's connections to it.
func serveFloors(fs ...*floor) (addr string, stop func(), err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := strings.TrimPrefix(r.URL.Path, "/.well-known/acme-challenge/")
		for _, f := range fs {
			if f.has(token) {
				f.ServeHTTP(w, r)
				return
			}
		}
		http.NotFound(w, r)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return l.Addr().String(), func() { _ = srv.Close() }, nil
}

func (f *floor) has(token string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.tokens[token]
	return ok
}

func (f *floor) setToken(token, ka string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ka == "" {
		delete(f.tokens, token)
		return
	}
	f.tokens[token] = ka
}

// floorRun is one floor issuance, split at its round trips.
type floorRun struct {
	Total, Keygen, Order, Validation, Finalize time.Duration
}

// Floor phase names.
const (
	FloorKeygen     = "key generation"
	FloorOrder      = "new order + authorization"
	FloorValidation = "accept + wait for valid"
	FloorFinalize   = "finalize + download"
)

// FloorPhaseNames lists the floor's phases in order.
var FloorPhaseNames = []string{FloorKeygen, FloorOrder, FloorValidation, FloorFinalize}

func (r floorRun) phases() map[string]float64 {
	return map[string]float64{
		FloorKeygen:     r.Keygen.Seconds(),
		FloorOrder:      r.Order.Seconds(),
		FloorValidation: r.Validation.Seconds(),
		FloorFinalize:   r.Finalize.Seconds(),
	}
}

// Issue obtains a certificate for name.
func (f *floor) Issue(ctx context.Context, name string) (floorRun, error) {
	var r floorRun
	start := time.Now()
	mark := func(d *time.Duration) {
		now := time.Now()
		*d = now.Sub(start) - r.Keygen - r.Order - r.Validation - r.Finalize
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return r, err
	}
	mark(&r.Keygen)
	var opts []xacme.OrderOption
	if f.profile != "" {
		opts = append(opts, xacme.WithOrderIssuanceProfile(xacme.ProfileName(f.profile)))
	}
	o, err := f.c.AuthorizeOrder(ctx, xacme.DomainIDs(name), opts...)
	if err != nil {
		return r, fmt.Errorf("floor: new order: %w", err)
	}
	type pending struct {
		url  string
		chal *xacme.Challenge
	}
	var todo []pending
	for _, u := range o.AuthzURLs {
		z, err := f.c.GetAuthorization(ctx, u)
		if err != nil {
			return r, fmt.Errorf("floor: %w", err)
		}
		var chal *xacme.Challenge
		for _, ch := range z.Challenges {
			if ch.Type == "http-01" {
				chal = ch
			}
		}
		if chal == nil {
			return r, fmt.Errorf("floor: no http-01 challenge for %s", z.Identifier.Value)
		}
		ka, err := f.c.HTTP01ChallengeResponse(chal.Token)
		if err != nil {
			return r, err
		}
		f.setToken(chal.Token, ka)
		defer f.setToken(chal.Token, "")
		todo = append(todo, pending{u, chal})
	}
	mark(&r.Order)
	for _, p := range todo {
		if _, err := f.c.Accept(ctx, p.chal); err != nil {
			return r, fmt.Errorf("floor: accept: %w", err)
		}
		if _, err := f.c.WaitAuthorization(ctx, p.url); err != nil {
			return r, fmt.Errorf("floor: authorization: %w", err)
		}
	}
	mark(&r.Validation)
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{name}}, key)
	if err != nil {
		return r, err
	}
	if _, _, err := f.c.CreateCertFromOrder(ctx, o, csr, true); err != nil {
		return r, fmt.Errorf("floor: finalize: %w", err)
	}
	mark(&r.Finalize)
	r.Total = time.Since(start)
	return r, nil
}

// cpuSeconds is the CPU time this process has used so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// rsaKeygen times RSA 2048 key generation, part of every issuance here.
func rsaKeygen(n int) ([]float64, error) {
	var out []float64
	for range n {
		start := time.Now()
		if _, err := rsa.GenerateKey(rand.Reader, 2048); err != nil {
			return nil, err
		}
		out = append(out, time.Since(start).Seconds())
	}
	return out, nil
}
