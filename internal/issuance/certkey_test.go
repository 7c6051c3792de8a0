package issuance

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubectl-acme/kubectl-acme/acme"
	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/store"
)

// A new RSA key is made in the background and signs the CSR once ready;
// its PEM is the key that signed. ECDSA keys and a kept key (rotationPolicy
// Never) are there at once, and a kept key that cannot be read fails
// before the order.
func TestCertKey(t *testing.T) {
	cert := &certmanager.Certificate{}
	cert.Spec.SecretName = "web"
	k, err := newCertKey(&store.TargetSecret{}, cert)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "a.example.com"}}, k)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := x509.ParseCertificateRequest(csr)
	if err != nil || parsed.CheckSignature() != nil {
		t.Fatalf("CSR: %v", err)
	}
	pemKey, err := k.PEM()
	if err != nil {
		t.Fatal(err)
	}
	key, err := acme.ParseKey(pemKey)
	if err != nil {
		t.Fatal(err)
	}
	if rk, ok := key.(*rsa.PrivateKey); !ok || !rk.PublicKey.Equal(parsed.PublicKey) {
		t.Errorf("the PEM is not the key that signed (%T)", key)
	}

	cert.Spec.PrivateKey = &certmanager.CertificatePrivateKey{Algorithm: "ECDSA"}
	k, err = newCertKey(&store.TargetSecret{}, cert)
	if err != nil || k.failed() != nil {
		t.Fatal(err)
	}
	select {
	case <-k.done:
	default:
		t.Error("an ECDSA key is made in the background")
	}
	if _, ok := k.key.(*ecdsa.PrivateKey); !ok {
		t.Errorf("key %T", k.key)
	}

	cert.Spec.PrivateKey = &certmanager.CertificatePrivateKey{RotationPolicy: "Never"}
	kept := &store.TargetSecret{Existing: &corev1.Secret{Data: map[string][]byte{corev1.TLSPrivateKeyKey: pemKey}}}
	if k, err = newCertKey(kept, cert); err != nil {
		t.Fatal(err)
	}
	if got, _ := k.PEM(); string(got) != string(pemKey) {
		t.Error("rotationPolicy Never made a new key")
	}
	kept.Existing.Data[corev1.TLSPrivateKeyKey] = []byte("not a key")
	if _, err := newCertKey(kept, cert); err == nil {
		t.Error("an unreadable kept key is accepted")
	}
}
