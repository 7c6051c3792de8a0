// Command lego-peer is the benchmark's peer: the lego library
// (github.com/go-acme/lego/v5) issuing certificates from the same CA. Its
// HTTP-01 responder is a challenge.Provider serving the key authorizations
// lego presents from one long-running server on -port: lego's own
// http01.ProviderServer binds the port for each challenge and so cannot
// serve concurrent orders, which the batches need. It lives in its own
// module so the product does not depend on lego.
//
// It registers an account and prints "registered ADDRESS" (its responder's)
// on stdout, so a counting proxy can start counting, then reads commands from stdin, one
// a line: "N CONCURRENCY PREFIX" obtains N certificates named
// PREFIX-I.bench.test, CONCURRENCY at a time, and prints one JSON object
// with the timings on stdout. It exits at the end of stdin.
package main

import (
	"bufio"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/challenge/http01"
	"github.com/go-acme/lego/v5/lego"
	legolog "github.com/go-acme/lego/v5/log"
	"github.com/go-acme/lego/v5/registration"
)

type user struct {
	key crypto.Signer
	reg *acme.ExtendedAccount
}

func (u *user) GetEmail() string                       { return "bench@example.com" }
func (u *user) GetRegistration() *acme.ExtendedAccount { return u.reg }
func (u *user) GetPrivateKey() crypto.Signer           { return u.key }

// Result is what the driver reads, one per command.
type Result struct {
	Lego        string    `json:"lego"`
	PerCertSecs []float64 `json:"perCertSeconds"`
	// WallSecs is the whole command, from the first order to the last
	// certificate.
	WallSecs float64 `json:"wallSeconds"`
	// CPUSecs is this process's CPU time (user + system) over the command.
	CPUSecs float64 `json:"cpuSeconds"`
	// Failures counts certificates lego could not obtain.
	Failures int `json:"failures"`
}

func main() {
	dir := flag.String("dir", "", "ACME directory URL (trust its CA with LEGO_CA_CERTIFICATES)")
	port := flag.Int("port", 0, "port to answer http-01 on (127.0.0.1; 0 picks one); the CA's validation port forwards here")
	profile := flag.String("profile", "default", "ACME profile")
	flag.Parse()
	if err := run(*dir, *port, *profile); err != nil {
		fmt.Fprintln(os.Stderr, "lego-peer:", err)
		os.Exit(1)
	}
}

// provider answers http-01 from a map, for any number of orders at once.
type provider struct {
	mu     sync.Mutex
	tokens map[string]string
}

func (p *provider) Present(_ context.Context, _, token, keyAuth string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tokens[token] = keyAuth
	return nil
}

func (p *provider) CleanUp(_ context.Context, _, token, _ string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.tokens, token)
	return nil
}

func (p *provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	token, ok := strings.CutPrefix(r.URL.Path, http01.PathPrefix)
	p.mu.Lock()
	ka, known := p.tokens[token]
	p.mu.Unlock()
	if !ok || !known {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte(ka))
}

func run(dir string, port int, profile string) error {
	if dir == "" {
		return fmt.Errorf("-dir is required")
	}
	legolog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	ctx := context.Background()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	u := &user{key: key}
	cfg := lego.NewConfig(u)
	cfg.CADirURL = dir
	cfg.UserAgent = "lego-peer"

	client, err := lego.NewClient(cfg)
	if err != nil {
		return err
	}
	p := &provider{tokens: map[string]string{}}
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()
	if err := client.Challenge.SetHTTP01Provider(p); err != nil {
		return err
	}
	if u.reg, err = client.Registration.Register(ctx, registration.RegisterOptions{TermsOfServiceAgreed: true}); err != nil {
		return fmt.Errorf("register: %w", err)
	}
	fmt.Println("registered", l.Addr())
	sc := bufio.NewScanner(os.Stdin)
	out := json.NewEncoder(os.Stdout)
	for sc.Scan() {
		var n, conc int
		var prefix string
		if _, err := fmt.Sscanf(sc.Text(), "%d %d %s", &n, &conc, &prefix); err != nil {
			return fmt.Errorf("command %q: %w", sc.Text(), err)
		}
		if err := out.Encode(obtain(ctx, client, n, max(1, conc), prefix, profile)); err != nil {
			return err
		}
	}
	return sc.Err()
}

// obtain gets n certificates, conc at a time.
func obtain(ctx context.Context, client *lego.Client, n, conc int, prefix, profile string) Result {
	res := Result{Lego: legoVersion()}
	var mu sync.Mutex
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	cpuStart := cpuSeconds()
	begin := time.Now()
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			start := time.Now()
			_, err := client.Certificate.Obtain(ctx, certificate.ObtainRequest{
				Domains: []string{fmt.Sprintf("%s-%d.bench.test", prefix, i)},
				Bundle:  true,
				// lego's CLI default, and kubectl-acme's default too.
				KeyType: certcrypto.RSA2048,
				Profile: profile,
			})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				// A loaded machine makes Pebble's DNS time out now and then:
				// count it, and go on.
				fmt.Fprintln(os.Stderr, "lego-peer: obtain:", err)
				res.Failures++
				return
			}
			res.PerCertSecs = append(res.PerCertSecs, time.Since(start).Seconds())
		}()
	}
	wg.Wait()
	res.WallSecs = time.Since(begin).Seconds()
	res.CPUSecs = cpuSeconds() - cpuStart
	return res
}

// cpuSeconds is the CPU time this process has used so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// legoVersion is the lego module this program was built with.
func legoVersion() string {
	const path = "github.com/go-acme/lego/v5"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == path {
				return path + " " + m.Version
			}
		}
	}
	return path
}
