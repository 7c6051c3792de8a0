package issuance

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
)

func TestReissueReason(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *metav1.Time { return &metav1.Time{Time: now.Add(d)} }
	spec := certmanager.CertificateSpec{SecretName: "s", DNSNames: []string{"a.example.com"}, IssuerRef: certmanager.IssuerRef{Name: "le"}}
	stored := func(mod func(*certmanager.Certificate)) *certmanager.Certificate {
		c := &certmanager.Certificate{Spec: spec}
		c.Spec.IssuerRef.Kind, c.Spec.IssuerRef.Group = certmanager.KindIssuer, certmanager.Group
		c.Status.NotAfter, c.Status.RenewalTime, c.Status.Serial = at(48*time.Hour), at(24*time.Hour), "AB"
		if mod != nil {
			mod(c)
		}
		return c
	}
	want := &certmanager.Certificate{Spec: spec}
	tests := []struct {
		name   string
		stored *certmanager.Certificate
		secret bool
		want   string
	}{
		{"current", stored(nil), true, ""},
		{"spec changed", stored(func(c *certmanager.Certificate) { c.Spec.DNSNames = []string{"b.example.com"} }), true, "spec changed"},
		{"key changed", stored(func(c *certmanager.Certificate) {
			c.Spec.PrivateKey = &certmanager.CertificatePrivateKey{Algorithm: "ECDSA"}
		}), true, "spec changed"},
		{"never issued", stored(func(c *certmanager.Certificate) { c.Status.NotAfter = nil }), true, "never issued"},
		{"failed", stored(func(c *certmanager.Certificate) { c.Status.LastFailure = "boom" }), true, "last attempt failed"},
		{"secret gone", stored(nil), false, "secret missing"},
		{"expired", stored(func(c *certmanager.Certificate) { c.Status.NotAfter = at(-time.Hour) }), true, "expired"},
		{"due", stored(func(c *certmanager.Certificate) { c.Status.RenewalTime = at(-time.Hour) }), true, "due for renewal"},
		{"revoked", stored(func(c *certmanager.Certificate) { c.Status.Revoked = &certmanager.RevocationStatus{Serial: "AB"} }), true, "revoked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ReissueReason(tt.stored, want, tt.secret, now); got != tt.want {
				t.Errorf("ReissueReason = %q, want %q", got, tt.want)
			}
		})
	}
}
