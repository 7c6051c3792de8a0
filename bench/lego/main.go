// Command lego-peer is the benchmark's peer: the lego library
// (github.com/go-acme/lego/v5) issuing certificates from the same CA with
// its own HTTP-01 server (challenge/http01.ProviderServer) on the CA's
// validation port. It lives in its own module so the product does not
// depend on lego.
//
// It registers an account, prints "registered" on stdout and, with
// -wait, waits for a line on stdin (so a counting proxy can start counting),
// then obtains -warmup untimed and -n timed certificates one after the
// other and prints one JSON object with the timings on stdout.
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
	"os"
	"runtime/debug"
	"strconv"
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

// Result is what the driver reads.
type Result struct {
	Lego         string    `json:"lego"`
	RegisterSecs float64   `json:"registerSeconds"`
	PerCertSecs  []float64 `json:"perCertSeconds"`
	// CPUSecs is this process's CPU time (user + system) over the timed
	// certificates.
	CPUSecs float64 `json:"cpuSeconds"`
	// Failures counts certificates lego could not obtain.
	Failures int `json:"failures"`
}

func main() {
	dir := flag.String("dir", "", "ACME directory URL (trust its CA with LEGO_CA_CERTIFICATES)")
	port := flag.Int("port", 0, "port the CA validates http-01 on (127.0.0.1)")
	n := flag.Int("n", 10, "timed certificates")
	warmup := flag.Int("warmup", 1, "untimed certificates first")
	prefix := flag.String("prefix", "lego", "names are PREFIX-I.bench.test")
	profile := flag.String("profile", "default", "ACME profile")
	wait := flag.Bool("wait", false, "after registering, wait for a line on stdin")
	flag.Parse()
	if err := run(*dir, *port, *n, *warmup, *prefix, *profile, *wait); err != nil {
		fmt.Fprintln(os.Stderr, "lego-peer:", err)
		os.Exit(1)
	}
}

func run(dir string, port, n, warmup int, prefix, profile string, wait bool) error {
	if dir == "" || port == 0 {
		return fmt.Errorf("-dir and -port are required")
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

	begin := time.Now()
	client, err := lego.NewClient(cfg)
	if err != nil {
		return err
	}
	if err := client.Challenge.SetHTTP01Provider(http01.NewProviderServer("127.0.0.1", strconv.Itoa(port))); err != nil {
		return err
	}
	if u.reg, err = client.Registration.Register(ctx, registration.RegisterOptions{TermsOfServiceAgreed: true}); err != nil {
		return fmt.Errorf("register: %w", err)
	}
	res := Result{Lego: legoVersion(), RegisterSecs: time.Since(begin).Seconds()}
	fmt.Println("registered")
	if wait {
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			return fmt.Errorf("wait for go-ahead: %w", err)
		}
	}
	var cpuStart float64
	for i := range warmup + n {
		if i == warmup {
			cpuStart = cpuSeconds()
		}
		start := time.Now()
		_, err := client.Certificate.Obtain(ctx, certificate.ObtainRequest{
			Domains: []string{fmt.Sprintf("%s-%d.bench.test", prefix, i)},
			Bundle:  true,
			// lego's CLI default, and kubectl-acme's default too.
			KeyType: certcrypto.RSA2048,
			Profile: profile,
		})
		if err != nil {
			// A loaded machine makes Pebble's DNS time out now and then:
			// count it, and go on.
			fmt.Fprintln(os.Stderr, "lego-peer: obtain:", err)
			res.Failures++
			continue
		}
		if i >= warmup {
			res.PerCertSecs = append(res.PerCertSecs, time.Since(start).Seconds())
		}
	}
	res.CPUSecs = cpuSeconds() - cpuStart
	return json.NewEncoder(os.Stdout).Encode(res)
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
