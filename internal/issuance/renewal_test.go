package issuance

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-acme/kubectl-acme/acme"
	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/store"
)

func ariLeaf(t *testing.T, notBefore, notAfter time.Time) *x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(4242), Subject: pkix.Name{CommonName: "x"},
		NotBefore: notBefore, NotAfter: notAfter, AuthorityKeyId: []byte{9, 8, 7}, SubjectKeyId: []byte{9, 8, 7}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return leaf
}

func TestRenewAt(t *testing.T) {
	nb := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	leaf := ariLeaf(t, nb, nb.Add(90*24*time.Hour))
	id, _ := acme.CertID(leaf)
	ri := &acme.RenewalInfo{Start: nb.Add(60 * 24 * time.Hour), End: nb.Add(62 * 24 * time.Hour)}
	cert := &certmanager.Certificate{}

	// No ARI: a third of the lifetime left.
	if got, want := renewAt(cert, leaf, nil, ""), nb.Add(60*24*time.Hour); !got.Equal(want) {
		t.Errorf("no ARI: %v, want %v", got, want)
	}
	// ARI: the stable point inside the window, not its start.
	got := renewAt(cert, leaf, ri, id)
	if !got.Equal(ri.RenewAt(id)) || got.Before(ri.Start) || !got.Before(ri.End) {
		t.Errorf("ARI: %v, want %v inside [%v, %v)", got, ri.RenewAt(id), ri.Start, ri.End)
	}
	// A renewBefore asking for earlier wins; one asking for later does not.
	cert.Spec.RenewBefore = &metav1.Duration{Duration: 40 * 24 * time.Hour}
	if got, want := renewAt(cert, leaf, ri, id), nb.Add(50*24*time.Hour); !got.Equal(want) {
		t.Errorf("earlier renewBefore: %v, want %v", got, want)
	}
	cert.Spec.RenewBefore = &metav1.Duration{Duration: 24 * time.Hour}
	if got := renewAt(cert, leaf, ri, id); !got.Equal(ri.RenewAt(id)) {
		t.Errorf("later renewBefore: %v, want the ARI point %v", got, ri.RenewAt(id))
	}
}

// A check before the CA's Retry-After uses the stored window and asks the
// CA nothing (the Options have no account client to ask with); after it,
// or for another certificate, the stored window is not used.
func TestCheckRenewalUsesStoredWindowUntilRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 10, 0, 0, 0, 0, time.UTC)
	leaf := ariLeaf(t, now.Add(-9*24*time.Hour), now.Add(81*24*time.Hour))
	id, _ := acme.CertID(leaf)
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "web-tls"},
		Data: map[string][]byte{corev1.TLSCertKey: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw})}}
	o := Options{Store: &store.Store{Client: fake.NewClientset(sec)}}
	cert := &certmanager.Certificate{}
	cert.Namespace, cert.Name, cert.Spec.SecretName = "app", "web", "web-tls"
	cert.Spec.IssuerRef.Name = "missing"
	window := func(start, end time.Time, next time.Time, certID string) {
		cert.Status.RenewalInfo = &certmanager.RenewalInfoStatus{CertID: certID,
			WindowStart: metav1.Time{Time: start}, WindowEnd: metav1.Time{Time: end}, NextCheck: metav1.Time{Time: next}}
	}
	ctx := context.Background()

	// Window in the past: due, without asking the CA.
	window(now.Add(-2*time.Hour), now.Add(-time.Hour), now.Add(time.Hour), id)
	check, _, err := CheckRenewal(ctx, o, cert, now)
	if err != nil || !check.Due || check.Replaces != id || check.Updated {
		t.Fatalf("past window: %+v, %v; want due, replaces %s, nothing to store", check, err, id)
	}
	// Window in the future: not due, the chosen point reported.
	start, end := now.Add(24*time.Hour), now.Add(72*time.Hour)
	window(start, end, now.Add(time.Hour), id)
	check, _, err = CheckRenewal(ctx, o, cert, now)
	want := (&acme.RenewalInfo{Start: start, End: end}).RenewAt(id)
	if err != nil || check.Due || !check.RenewAt.Equal(want) {
		t.Fatalf("future window: %+v, %v; want not due, renew at %v", check, err, want)
	}
	// Retry-After passed: the CA is asked (here: the issuer lookup fails first).
	window(start, end, now, id)
	if _, _, err := CheckRenewal(ctx, o, cert, now); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("after Retry-After: %v; want the CA asked (issuer lookup)", err)
	}
	// A window stored for another certificate is not this one's.
	window(start, end, now.Add(time.Hour), "other.id")
	if _, _, err := CheckRenewal(ctx, o, cert, now); err == nil {
		t.Fatal("another certificate's window was used")
	}
}
