package issuance

import (
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-acme/kubectl-acme/acme"
	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/store"
)

func TestRecoveryRecord(t *testing.T) {
	t.Setenv(StateDirEnv, t.TempDir())
	key, err := acme.GenerateKey(acme.KeySpec{})
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := acme.EncodeKey(key, "")
	if err != nil {
		t.Fatal(err)
	}
	o := &Options{Store: &store.Store{Client: fake.NewClientset(), Cluster: "https://127.0.0.1:6443"}}
	iss := &certmanager.Issuer{}
	iss.Kind, iss.Name = certmanager.KindIssuer, "le"
	cert := &certmanager.Certificate{}
	cert.Namespace, cert.Name, cert.Spec.SecretName = "app", "web", "web-tls"

	if r, err := loadRecovery(o, cert); r != nil || err != nil {
		t.Fatalf("no record yet: got %v, %v", r, err)
	}
	rec := newRecovery(o, iss, cert, keyPEM)
	failed := errors.New("challenge failed")
	if got := rec.explain(failed); got != failed {
		t.Errorf("before finalize the error is unchanged, got %v", got)
	}
	if err := rec.beforeFinalize("https://ca.test/order/1"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(rec.path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("record %s: %v, mode %v; want 0600", rec.path, err, fi.Mode())
	}
	if msg := rec.explain(failed).Error(); !strings.Contains(msg, rec.path) || !strings.Contains(msg, "kubectl acme issue web -n app") || strings.Contains(msg, "PRIVATE KEY") {
		t.Errorf("the message must name the record and the command, never the key: %s", msg)
	}

	if p, err := PendingRecoveries(o.Store.Cluster, ""); err != nil || len(p) != 1 || p[0].Certificate != "web" || p[0].Path != rec.path {
		t.Errorf("PendingRecoveries = %+v, %v", p, err)
	}
	if p, _ := PendingRecoveries(o.Store.Cluster, "other-ns"); len(p) != 0 {
		t.Errorf("another namespace has records: %+v", p)
	}
	if p, _ := PendingRecoveries("https://other:6443", ""); len(p) != 0 {
		t.Errorf("another cluster has records: %+v", p)
	}
	// Another cluster's certificate of the same name has its own record.
	other := &Options{Store: &store.Store{Cluster: "https://other:6443"}}
	if r, _ := loadRecovery(other, cert); r != nil {
		t.Errorf("another cluster sees the record %s", r.path)
	}

	got, err := loadRecovery(o, cert)
	if err != nil || got == nil {
		t.Fatalf("loadRecovery: %v, %v", got, err)
	}
	if got.order != "https://ca.test/order/1" || got.secret != "web-tls" || got.issuer != "Issuer/le" || string(got.keyPEM) != string(keyPEM) || got.chainPEM != nil {
		t.Errorf("read back %+v", got)
	}

	// With the chain, the file is a certificate and its key.
	chain := selfSigned(t, key)
	if err := rec.issued(chain); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(rec.path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.X509KeyPair(data, data); err != nil {
		t.Errorf("the record is not a certificate with its key: %v", err)
	}
	if got, _ := loadRecovery(o, cert); got == nil || string(got.chainPEM) != string(chain) {
		t.Errorf("chain not read back")
	}
	rec.done()
	if _, err := os.Stat(rec.path); !os.IsNotExist(err) {
		t.Errorf("record left after done: %v", err)
	}
}

// A finalize the CA refused, with the order still ready, issued nothing:
// the record goes, and the error does not send the user after a
// certificate that does not exist.
func TestRecoveryDiscardedWhenNothingWasIssued(t *testing.T) {
	t.Setenv(StateDirEnv, t.TempDir())
	key, _ := acme.GenerateKey(acme.KeySpec{Algorithm: "ECDSA"})
	keyPEM, _ := acme.EncodeKey(key, "")
	var notes []string
	o := &Options{Store: &store.Store{Cluster: "https://127.0.0.1:6443"}, Observe: func(e acme.Event) { notes = append(notes, e.Detail) }}
	iss := &certmanager.Issuer{}
	iss.Kind, iss.Name = certmanager.KindIssuer, "step"
	cert := &certmanager.Certificate{}
	cert.Namespace, cert.Name, cert.Spec.SecretName = "app", "web", "web-tls"
	rec := newRecovery(o, iss, cert, keyPEM)
	if err := rec.beforeFinalize("https://ca.test/order/1"); err != nil {
		t.Fatal(err)
	}
	refused := &acme.NotIssuedError{OrderURL: "https://ca.test/order/1", Status: "ready", Err: errors.New("serverInternal")}
	err := rec.explain(fmt.Errorf("issue: %w", refused))
	if strings.Contains(err.Error(), "may have issued") || strings.Contains(err.Error(), rec.path) {
		t.Errorf("the error points at a record of nothing: %v", err)
	}
	if _, serr := os.Stat(rec.path); !os.IsNotExist(serr) {
		t.Errorf("record kept after a refused finalize: %v", serr)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "the order is ready: the CA issued no certificate") {
		t.Errorf("notes %q, want one saying why the record went", notes)
	}
}

func TestStateDir(t *testing.T) {
	t.Setenv(StateDirEnv, "")
	t.Setenv("XDG_STATE_HOME", "/state")
	if d, _ := StateDir(); d != "/state/kubectl-acme" {
		t.Errorf("StateDir = %s, want /state/kubectl-acme", d)
	}
	t.Setenv(StateDirEnv, "/override")
	if d, _ := StateDir(); d != "/override" {
		t.Errorf("StateDir = %s, want /override", d)
	}
}

// selfSigned is a PEM certificate for key.
func selfSigned(t *testing.T, key crypto.Signer) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), DNSNames: []string{"web.test"}, NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
