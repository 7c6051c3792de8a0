package issuance

import (
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/store"
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

// A run's Certificates of one namespace are read with one LIST; a user
// who may not list reads each with a GET.
func TestReconcilerListsOnce(t *testing.T) {
	ctx := t.Context()
	for _, mayList := range []bool{true, false} {
		client := fake.NewClientset()
		st := &store.Store{Client: client}
		var wants []*certmanager.Certificate
		for _, n := range []string{"a", "b", "c"} {
			c := &certmanager.Certificate{}
			c.Name, c.Namespace = n, "ns"
			c.Spec = certmanager.CertificateSpec{SecretName: n, DNSNames: []string{n + ".example.com"}, IssuerRef: certmanager.IssuerRef{Name: "le"}}
			wants = append(wants, c)
		}
		stored := *wants[1]
		stored.Status.LastFailure = "boom"
		if err := st.SaveCertificate(ctx, &stored); err != nil {
			t.Fatal(err)
		}
		if !mayList {
			client.PrependReactor("list", "configmaps", func(k8stesting.Action) (bool, runtime.Object, error) {
				return true, nil, apierrors.NewForbidden(corev1.Resource("configmaps"), "", nil)
			})
		}
		client.ClearActions()
		r := NewReconciler(st, wants, true)
		for i, w := range wants {
			j := &Job{Cert: w}
			if skip, err := r.Prepare(w)(ctx, j); err != nil || skip != "" {
				t.Fatalf("%s: %q, %v", w.Name, skip, err)
			}
			if got := j.Cert.Status.LastFailure; (i == 1) != (got == "boom") {
				t.Errorf("mayList %v: %s has status %q", mayList, w.Name, got)
			}
		}
		counts := map[string]int{}
		for _, a := range client.Actions() {
			counts[a.GetVerb()]++
		}
		want := map[string]int{"list": 1}
		if !mayList {
			want = map[string]int{"list": 1, "get": 3}
		}
		if !reflect.DeepEqual(counts, want) {
			t.Errorf("mayList %v: requests %v, want %v", mayList, counts, want)
		}
	}
}

// A stored Certificate that must be issued again anyway (its spec
// changed) is not checked for its Secret, which Issue reads; a current
// one is, once, and skipped.
func TestReconcileReadsTheSecretOnlyToSkip(t *testing.T) {
	ctx := t.Context()
	client := fake.NewClientset()
	st := &store.Store{Client: client}
	now := time.Now()
	stored := &certmanager.Certificate{}
	stored.Name, stored.Namespace = "web", "ns"
	stored.Spec = certmanager.CertificateSpec{SecretName: "web", DNSNames: []string{"a.example.com"}, IssuerRef: certmanager.IssuerRef{Name: "le", Kind: certmanager.KindIssuer, Group: certmanager.Group}}
	stored.Status.NotAfter, stored.Status.RenewalTime = &metav1.Time{Time: now.Add(48 * time.Hour)}, &metav1.Time{Time: now.Add(24 * time.Hour)}
	stored.Status.Serial = "AB"
	if err := st.SaveCertificate(ctx, stored); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Secrets("ns").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	secretReads := func(want *certmanager.Certificate) (string, int) {
		client.ClearActions()
		skip, err := Reconcile(st, want, false)(ctx, &Job{Cert: want})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, a := range client.Actions() {
			if a.GetResource().Resource == "secrets" {
				n++
			}
		}
		return skip, n
	}
	same := &certmanager.Certificate{}
	same.Name, same.Namespace, same.Spec = "web", "ns", stored.Spec
	if skip, n := secretReads(same); skip == "" || n != 1 {
		t.Errorf("current certificate: skip %q after %d Secret reads, want a skip after 1", skip, n)
	}
	changed := &certmanager.Certificate{}
	changed.Name, changed.Namespace, changed.Spec = "web", "ns", stored.Spec
	changed.Spec.DNSNames = []string{"b.example.com"}
	if skip, n := secretReads(changed); skip != "" || n != 0 {
		t.Errorf("changed spec: skip %q after %d Secret reads, want an issue and none", skip, n)
	}
}
