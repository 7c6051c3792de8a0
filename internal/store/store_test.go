package store

import (
	"crypto"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
)

func testIssuer() *certmanager.Issuer {
	iss := &certmanager.Issuer{}
	iss.Kind = certmanager.KindIssuer
	iss.Name, iss.Namespace = "le", "ns"
	iss.Spec.ACME = &certmanager.ACMEIssuer{Server: "https://ca.example/dir", PrivateKeySecretRef: certmanager.SecretKeySelector{Name: "le-key"}}
	return iss
}

// An Issuer and a Certificate round-trip through their ConfigMaps, and
// listing finds the Certificate.
func TestStoreRoundTrip(t *testing.T) {
	ctx := t.Context()
	s := &Store{Client: fake.NewClientset()}
	if err := s.SaveIssuer(ctx, testIssuer()); err != nil {
		t.Fatal(err)
	}
	iss, err := s.GetIssuer(ctx, "ns", "le", false)
	if err != nil || iss.Spec.ACME.Server != "https://ca.example/dir" {
		t.Fatalf("GetIssuer = %+v, %v", iss, err)
	}
	if _, err := s.GetCertificate(ctx, "ns", "web"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetCertificate of none: %v, want ErrNotFound", err)
	}
	c := &certmanager.Certificate{}
	c.Name, c.Namespace = "web", "ns"
	c.Spec = certmanager.CertificateSpec{SecretName: "web-tls", DNSNames: []string{"a.example.com"}, IssuerRef: certmanager.IssuerRef{Name: "le", Kind: certmanager.KindIssuer}}
	if err := s.SaveCertificate(ctx, c); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetCertificate(ctx, "ns", "web")
	if err != nil || got.Spec.SecretName != "web-tls" || len(got.Spec.DNSNames) != 1 {
		t.Fatalf("GetCertificate = %+v, %v", got, err)
	}
	list, err := s.ListCertificates(ctx, "")
	if err != nil || len(list) != 1 || list[0].Name != "web" {
		t.Errorf("ListCertificates = %v, %v", list, err)
	}
}

// The account key is made once and then read back, never replaced.
func TestAccountKeyIsKept(t *testing.T) {
	ctx := t.Context()
	s := &Store{Client: fake.NewClientset()}
	iss := testIssuer()
	k1, created, err := s.AccountKey(ctx, iss)
	if err != nil || !created {
		t.Fatalf("AccountKey = %v, created %v", err, created)
	}
	k2, created, err := s.AccountKey(ctx, iss)
	if err != nil || created {
		t.Fatalf("second AccountKey = %v, created %v", err, created)
	}
	if !k1.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(k2.Public()) {
		t.Error("the account key changed")
	}
}

// A Secret kubectl-acme did not create is not written without force.
func TestSecretNotOwnedIsRefused(t *testing.T) {
	ctx := t.Context()
	other := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "web-tls", Namespace: "ns"}, Type: corev1.SecretTypeTLS}
	s := &Store{Client: fake.NewClientset(other)}
	c := &certmanager.Certificate{}
	c.Name, c.Namespace = "web", "ns"
	c.Spec.SecretName = "web-tls"
	if err := s.CheckSecretWritable(ctx, c, false); err == nil {
		t.Error("a Secret someone else made is writable")
	}
	if err := s.CheckSecretWritable(ctx, c, true); err != nil {
		t.Errorf("with force: %v", err)
	}
}

// GetCertificates reads many Certificates with one LIST, and a name too
// long for a label value with a GET.
func TestGetCertificatesOneList(t *testing.T) {
	ctx := t.Context()
	client := fake.NewClientset()
	s := &Store{Client: client}
	long := "a-certificate-name-longer-than-the-sixty-three-characters-of-a-label"
	for _, n := range []string{"web", "api", long} {
		c := &certmanager.Certificate{}
		c.Name, c.Namespace = n, "ns"
		c.Spec = certmanager.CertificateSpec{SecretName: n, DNSNames: []string{"a.example.com"}, IssuerRef: certmanager.IssuerRef{Name: "le"}}
		if err := s.SaveCertificate(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	client.ClearActions()
	got, err := s.GetCertificates(ctx, "ns", []string{"web", "api", "new", long})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got["web"] == nil || got["api"].Spec.SecretName != "api" || got[long] == nil || got["new"] != nil {
		t.Errorf("GetCertificates = %v", got)
	}
	var verbs []string
	for _, a := range client.Actions() {
		verbs = append(verbs, a.GetVerb())
	}
	if len(verbs) != 2 || verbs[0] != "get" || verbs[1] != "list" {
		t.Errorf("requests %v, want a get (the long name) and one list", verbs)
	}
}
