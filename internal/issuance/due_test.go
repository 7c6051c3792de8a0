package issuance

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/store"
)

// A certificate with nothing stored yet is due: renewed, or with DryRun
// only named, whatever Force says.
func TestRenewalPrepareNothingStored(t *testing.T) {
	for _, tt := range []struct {
		force, dryRun bool
		skip          string
	}{
		{false, false, ""},
		{true, false, ""},
		{false, true, "due (no certificate stored yet); not renewed (dry run)"},
	} {
		cert := &certmanager.Certificate{}
		cert.Namespace, cert.Name, cert.Spec.SecretName = "app", "web", "web-tls"
		var warnings strings.Builder
		r := &Renewal{Options: Options{Store: &store.Store{Client: fake.NewClientset()}}, Force: tt.force, DryRun: tt.dryRun, Warnings: &warnings}
		j := &Job{Cert: cert}
		skip, err := r.Prepare(t.Context(), j)
		if err != nil || skip != tt.skip || j.Replaces != "" || warnings.Len() > 0 {
			t.Errorf("force %v, dry run %v: skip %q, err %v, replaces %q, warnings %q", tt.force, tt.dryRun, skip, err, j.Replaces, warnings.String())
		}
	}
}

// A renewal whose due check fails (here: its issuer is gone; in a
// scheduled run, often the CA down) is recorded as failing on the
// Certificate, so status marks it; a dry run records nothing.
func TestRenewalPrepareRecordsFailure(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	for _, dryRun := range []bool{false, true} {
		sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "web-tls"}, Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{corev1.TLSCertKey: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}}
		st := &store.Store{Client: fake.NewClientset(sec)}
		cert := &certmanager.Certificate{}
		cert.Namespace, cert.Name, cert.Spec.SecretName = "app", "web", "web-tls"
		cert.Spec.IssuerRef.Name = "gone"
		if err := st.SaveCertificate(t.Context(), cert); err != nil {
			t.Fatal(err)
		}
		r := &Renewal{Options: Options{Store: st}, DryRun: dryRun}
		if _, err := r.Prepare(t.Context(), &Job{Cert: cert}); err == nil {
			t.Fatal("Prepare without the issuer succeeded")
		}
		got, err := st.GetCertificate(t.Context(), "app", "web")
		if err != nil {
			t.Fatal(err)
		}
		if recorded := got.Status.LastFailure != "" && got.Status.LastFailureTime != nil; recorded == dryRun {
			t.Errorf("dry run %v: last failure %q at %v", dryRun, got.Status.LastFailure, got.Status.LastFailureTime)
		}
	}
}
