package status

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/metadata"
	metadatafake "k8s.io/client-go/metadata/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/store"
)

// certificateMeta is a Certificate ConfigMap's metadata as
// store.SaveCertificate writes it.
func certificateMeta(ns, name string, ann map[string]string) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: store.CertificateConfigMapName(name),
			Labels:      map[string]string{store.LabelManagedBy: store.ManagedBy, store.LabelKind: certmanager.KindCertificate, store.LabelName: name},
			Annotations: ann,
		},
	}
}

func TestRowFromMetadata(t *testing.T) {
	m := certificateMeta("ns", "web", map[string]string{
		store.AnnotationSecret:      "web-tls",
		store.AnnotationDomains:     "a.example.com,b.example.com",
		store.AnnotationIssuer:      "Issuer/le",
		store.AnnotationNotAfter:    "2027-01-01T00:00:00Z",
		store.AnnotationRenewAfter:  "not a time",
		store.AnnotationLastFailure: "CA unreachable",
		store.AnnotationRevoked:     "keyCompromise",
	})
	r := RowFromMetadata(&m.ObjectMeta)
	if r.Namespace != "ns" || r.Name != "web" || r.Secret != "web-tls" || r.Domains != "a.example.com,b.example.com" ||
		r.Issuer != "Issuer/le" || r.LastFailure != "CA unreachable" || r.Revoked != "keyCompromise" {
		t.Errorf("row = %+v", r)
	}
	if r.NotAfter == nil || !r.NotAfter.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("NotAfter = %v", r.NotAfter)
	}
	if r.RenewAfter != nil {
		t.Errorf("RenewAfter from a bad timestamp = %v, want none", r.RenewAfter)
	}
	if s := r.Summary(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)); s.State != certmanager.StateRevoked {
		t.Errorf("summary = %+v, want %s", s, certmanager.StateRevoked)
	}
	// A Certificate never issued has no times.
	empty := RowFromMetadata(&certificateMeta("ns", "new", nil).ObjectMeta)
	if empty.NotAfter != nil || empty.RenewAfter != nil || empty.Name != "new" {
		t.Errorf("empty row = %+v", empty)
	}
}

// paged is the client-go metadata fake with the API server's paging,
// which the fake lacks (its list actions drop limit and continue): the
// fake holds the objects and applies the namespace and the selector;
// paged cuts its answer into pages of at most Limit items, with a continue
// token naming the next index, and records every request's options.
type paged struct {
	fake     *metadatafake.FakeMetadataClient
	requests []metav1.ListOptions
	// expireAt, when > 0, makes the continue token for that index expired
	// (410 Gone), as after an etcd compaction.
	expireAt int
}

func (p *paged) Resource(gvr schema.GroupVersionResource) metadata.Getter {
	return &pagedResource{Getter: p.fake.Resource(gvr), p: p, ri: p.fake.Resource(gvr)}
}

type pagedResource struct {
	metadata.Getter
	p  *paged
	ri metadata.ResourceInterface
}

func (r *pagedResource) Namespace(ns string) metadata.ResourceInterface {
	return &pagedResource{Getter: r.Getter, p: r.p, ri: r.Getter.Namespace(ns)}
}

func (r *pagedResource) List(ctx context.Context, opts metav1.ListOptions) (*metav1.PartialObjectMetadataList, error) {
	r.p.requests = append(r.p.requests, opts)
	if opts.LabelSelector != store.CertificateSelector {
		return nil, fmt.Errorf("selector %q, want %q", opts.LabelSelector, store.CertificateSelector)
	}
	all, err := r.ri.List(ctx, metav1.ListOptions{LabelSelector: opts.LabelSelector})
	if err != nil {
		return nil, err
	}
	start := 0
	if opts.Continue != "" {
		if start, err = strconv.Atoi(opts.Continue); err != nil {
			return nil, err
		}
		if start == r.p.expireAt {
			return nil, apierrors.NewResourceExpired("continue token expired")
		}
	}
	end := len(all.Items)
	if opts.Limit > 0 && start+int(opts.Limit) < end {
		end = start + int(opts.Limit)
	}
	page := &metav1.PartialObjectMetadataList{Items: all.Items[start:end]}
	if end < len(all.Items) {
		page.Continue = strconv.Itoa(end)
	}
	return page, nil
}

// newPaged stores n Certificates in three namespaces, and one ConfigMap
// that is not a Certificate.
func newPaged(t *testing.T, n int) *paged {
	t.Helper()
	var objs []runtime.Object
	for i := range n {
		objs = append(objs, certificateMeta(fmt.Sprintf("ns-%d", i%3), fmt.Sprintf("c-%05d", i), map[string]string{store.AnnotationSecret: fmt.Sprintf("c-%05d-tls", i)}))
	}
	objs = append(objs, &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns-0", Name: "unrelated"}})
	scheme := metadatafake.NewTestScheme()
	scheme.AddKnownTypeWithName(corev1.SchemeGroupVersion.WithKind("ConfigMap"), &metav1.PartialObjectMetadata{})
	scheme.AddKnownTypeWithName(corev1.SchemeGroupVersion.WithKind("ConfigMapList"), &metav1.PartialObjectMetadataList{})
	return &paged{fake: metadatafake.NewSimpleMetadataClient(scheme, objs...)}
}

// Listing pages with limit and continue, reads every Certificate once,
// and returns the rows sorted.
func TestRowsPages(t *testing.T) {
	n := 2*PageSize + 7
	p := newPaged(t, n)
	rows, err := Rows(t.Context(), p, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != n {
		t.Fatalf("%d rows, want %d", len(rows), n)
	}
	if len(p.requests) != 3 {
		t.Errorf("%d list requests, want 3 pages", len(p.requests))
	}
	for i, r := range p.requests {
		if r.Limit != PageSize {
			t.Errorf("request %d: limit %d, want %d", i, r.Limit, PageSize)
		}
		if (i == 0) != (r.Continue == "") {
			t.Errorf("request %d: continue %q", i, r.Continue)
		}
	}
	seen := map[string]bool{}
	for i, r := range rows {
		key := r.Namespace + "/" + r.Name
		if seen[key] {
			t.Fatalf("%s listed twice", key)
		}
		seen[key] = true
		if r.Secret != r.Name+"-tls" {
			t.Errorf("row %s: secret %q", key, r.Secret)
		}
		if i > 0 {
			prev := rows[i-1]
			if prev.Namespace > r.Namespace || (prev.Namespace == r.Namespace && prev.Name > r.Name) {
				t.Fatalf("rows not sorted: %s/%s before %s", prev.Namespace, prev.Name, key)
			}
		}
	}
}

// One namespace lists only its own, still paged.
func TestRowsNamespace(t *testing.T) {
	rows, err := Rows(t.Context(), newPaged(t, 30), "ns-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 10 {
		t.Fatalf("%d rows in ns-1, want 10", len(rows))
	}
	for _, r := range rows {
		if r.Namespace != "ns-1" {
			t.Errorf("row from %s", r.Namespace)
		}
	}
}

// A continue token that expires mid-listing falls back to one full list
// (client-go's pager, as kubectl): every row still comes once.
func TestRowsExpiredContinue(t *testing.T) {
	n := PageSize + 5
	p := newPaged(t, n)
	p.expireAt = PageSize
	rows, err := Rows(t.Context(), p, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != n {
		t.Errorf("%d rows, want %d", len(rows), n)
	}
	last := p.requests[len(p.requests)-1]
	if last.Limit != 0 || last.Continue != "" {
		t.Errorf("fallback request %+v, want a full list", last)
	}
}

// The API server's refusal is described for the user, with the cause kept.
func TestRowsForbidden(t *testing.T) {
	c := metadatafake.NewSimpleMetadataClient(metadatafake.NewTestScheme())
	forbidden := apierrors.NewForbidden(schema.GroupResource{Resource: "configmaps"}, "", errors.New("RBAC: nope"))
	c.PrependReactor("list", "configmaps", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, forbidden
	})
	_, err := Rows(t.Context(), c, "")
	if err == nil || !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "all namespaces") {
		t.Errorf("err = %v, want a forbidden error naming all namespaces", err)
	}
}

// Certificates decodes each stored Certificate, paged too.
func TestCertificates(t *testing.T) {
	ctx := t.Context()
	client := fake.NewClientset()
	s := &store.Store{Client: client}
	for i := range 3 {
		c := &certmanager.Certificate{}
		c.Name, c.Namespace = fmt.Sprintf("web-%d", i), "ns"
		c.Spec = certmanager.CertificateSpec{SecretName: c.Name, DNSNames: []string{c.Name + ".example.com"}, IssuerRef: certmanager.IssuerRef{Name: "le"}}
		if err := s.SaveCertificate(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	// Not a Certificate: left out by the selector.
	if _, err := client.CoreV1().ConfigMaps("ns").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: "ns"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var limits []int64
	client.PrependReactor("list", "configmaps", func(a k8stesting.Action) (bool, runtime.Object, error) {
		limits = append(limits, a.(k8stesting.ListActionImpl).ListOptions.Limit)
		return false, nil, nil
	})
	certs, err := Certificates(ctx, client, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(certs) != 3 {
		t.Fatalf("%d certificates, want 3", len(certs))
	}
	for _, c := range certs {
		if c.Namespace != "ns" || len(c.Spec.DNSNames) != 1 || c.Spec.DNSNames[0] != c.Name+".example.com" {
			t.Errorf("certificate %+v", c)
		}
	}
	if len(limits) != 1 || limits[0] <= 0 {
		t.Errorf("list limits %v, want one paged request", limits)
	}
}
