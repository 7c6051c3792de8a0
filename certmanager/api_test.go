package certmanager

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestNormalizeDomain(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{in: "Example.COM", want: "example.com"},
		{in: "www.example.com.", want: "www.example.com"},
		{in: "bücher.example", want: "xn--bcher-kva.example"},
		{in: "*.example.com", err: "wildcard"},
		{in: "10.0.0.1", err: "--ip"},
		{in: "localhost", err: "fully qualified"},
		{in: "bad_name.example.com", err: "disallowed rune"},
		{in: strings.Repeat("a", 64) + ".example.com", err: "63"},
		{in: "", err: "empty"},
	}
	for _, tt := range tests {
		got, err := NormalizeDomain(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("NormalizeDomain(%q) error = %v, want containing %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("NormalizeDomain(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestValidateCertificateSpec(t *testing.T) {
	base := func() CertificateSpec {
		return CertificateSpec{SecretName: "web", DNSNames: []string{"a.example.com"}, IssuerRef: IssuerRef{Name: "le"}}
	}
	tests := []struct {
		name   string
		mutate func(*CertificateSpec)
		err    string
	}{
		{name: "ok", mutate: func(*CertificateSpec) {}},
		{name: "no names", mutate: func(s *CertificateSpec) { s.DNSNames = nil }, err: "at least one"},
		{name: "duplicate", mutate: func(s *CertificateSpec) { s.DNSNames = []string{"a.example.com", "A.example.com"} }, err: "twice"},
		{name: "bad ip", mutate: func(s *CertificateSpec) { s.IPAddresses = []string{"300.1.1.1"} }, err: "invalid IP"},
		{name: "cn not in names", mutate: func(s *CertificateSpec) { s.CommonName = "b.example.com" }, err: "must also be one of"},
		{name: "cn in names", mutate: func(s *CertificateSpec) { s.CommonName = "A.example.com" }},
		{name: "no issuer", mutate: func(s *CertificateSpec) { s.IssuerRef.Name = "" }, err: "issuer"},
		{name: "bad secret", mutate: func(s *CertificateSpec) { s.SecretName = "Web_TLS" }, err: "invalid secret name"},
		{name: "bad rsa size", mutate: func(s *CertificateSpec) { s.PrivateKey = &CertificatePrivateKey{Size: 1024} }, err: "2048"},
		{name: "bad ecdsa size", mutate: func(s *CertificateSpec) { s.PrivateKey = &CertificatePrivateKey{Algorithm: "ECDSA", Size: 521} }, err: "256 or 384"},
		{name: "bad algorithm", mutate: func(s *CertificateSpec) { s.PrivateKey = &CertificatePrivateKey{Algorithm: "Ed25519"} }, err: "RSA or ECDSA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := base()
			tt.mutate(&s)
			err := ValidateCertificateSpec(&s)
			if tt.err == "" && err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("error = %v, want containing %q", err, tt.err)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *metav1.Time { return &metav1.Time{Time: now.Add(d)} }
	day := 24 * time.Hour
	tests := []struct {
		name string
		st   CertificateStatus
		want State
	}{
		{name: "never issued", st: CertificateStatus{}, want: StatePending},
		{name: "ready", st: CertificateStatus{NotAfter: at(60 * day), RenewalTime: at(30 * day)}, want: StateReady},
		{name: "due", st: CertificateStatus{NotAfter: at(10 * day), RenewalTime: at(-day)}, want: StateExpiring},
		{name: "expired", st: CertificateStatus{NotAfter: at(-time.Second), LastFailure: "x"}, want: StateExpired},
		{name: "failed first", st: CertificateStatus{LastFailure: "404"}, want: StateFailed},
		{name: "failed renewal", st: CertificateStatus{NotAfter: at(60 * day), LastFailure: "404"}, want: StateFailed},
	}
	for _, tt := range tests {
		if got := Summarize(&tt.st, now); got.State != tt.want {
			t.Errorf("%s: state %s, want %s", tt.name, got.State, tt.want)
		}
	}
}

func TestRenewalTime(t *testing.T) {
	nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	na := nb.Add(90 * 24 * time.Hour)
	if got, want := RenewalTime(nb, na, 0), nb.Add(60*24*time.Hour); !got.Equal(want) {
		t.Errorf("default: %v, want %v", got, want)
	}
	if got, want := RenewalTime(nb, na, 10*24*time.Hour), na.Add(-10*24*time.Hour); !got.Equal(want) {
		t.Errorf("renewBefore: %v, want %v", got, want)
	}
	// A renewBefore longer than the lifetime would renew at once, forever.
	if got, want := RenewalTime(nb, na, 100*24*time.Hour), nb.Add(60*24*time.Hour); !got.Equal(want) {
		t.Errorf("too long renewBefore: %v, want %v", got, want)
	}
}
