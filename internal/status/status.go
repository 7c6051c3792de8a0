// Package status reads what `kubectl acme status` shows of the stored
// Certificates. The table needs only the summary annotations the store
// writes on each Certificate's ConfigMap (store.SaveCertificate), so it
// lists metadata alone, in pages, and turns each ConfigMap into a Row as
// its page arrives: tens of thousands of certificates cost one request per
// page and a few hundred bytes each, never a GET per certificate nor the
// stored YAML.
package status

import (
	"context"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/pager"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/kube"
	"github.com/kubectl-acme/kubectl-acme/internal/store"
)

// PageSize is how many ConfigMaps one list request asks for. kubectl's
// default chunk is 500; over 50,000 certificates on a two-core machine 500
// took 2.0 s of requests, 5,000 took 0.9 s (bench/README.md), since
// every page costs the API server a read from etcd of its own. A page of
// metadata is about 1 kB per object.
const PageSize = 5000

// pageBuffer is how many pages are fetched ahead while rows are made from
// the current one: one keeps the API server busy without holding the
// whole list.
const pageBuffer = 1

var configMaps = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}

// Row is what the status table shows of one Certificate, read from its
// ConfigMap's labels and annotations.
type Row struct {
	Namespace, Name, Secret, Domains, Issuer string
	NotAfter, RenewAfter                     *time.Time
	LastFailure, Revoked                     string
	Created                                  time.Time
}

// RowFromMetadata reads a Row from a Certificate ConfigMap's metadata. A
// timestamp that does not parse is left out (nil), as if never set.
func RowFromMetadata(m *metav1.ObjectMeta) Row {
	a := m.Annotations
	r := Row{
		Namespace:   m.Namespace,
		Name:        m.Labels[store.LabelName],
		Secret:      a[store.AnnotationSecret],
		Domains:     a[store.AnnotationDomains],
		Issuer:      a[store.AnnotationIssuer],
		LastFailure: a[store.AnnotationLastFailure],
		Revoked:     a[store.AnnotationRevoked],
		Created:     m.CreationTimestamp.Time,
	}
	r.NotAfter = parseTime(a[store.AnnotationNotAfter])
	r.RenewAfter = parseTime(a[store.AnnotationRenewAfter])
	return r
}

func parseTime(s string) *time.Time {
	if s == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return nil
	}
	return &t
}

// Summary is the Row's state (Ready, Expiring, Expired, Pending, Failed)
// and its reason, as certmanager.Summarize judges a full status.
func (r *Row) Summary(now time.Time) certmanager.Summary {
	st := &certmanager.CertificateStatus{LastFailure: r.LastFailure}
	if r.Revoked != "" {
		st.Revoked = &certmanager.RevocationStatus{Reason: r.Revoked}
	}
	if r.NotAfter != nil {
		st.NotAfter = &metav1.Time{Time: *r.NotAfter}
	}
	if r.RenewAfter != nil {
		st.RenewalTime = &metav1.Time{Time: *r.RenewAfter}
	}
	return certmanager.Summarize(st, now)
}

// SortRows orders rows by namespace, then name.
func SortRows(rows []Row) {
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Namespace != rows[j].Namespace {
			return rows[i].Namespace < rows[j].Namespace
		}
		return rows[i].Name < rows[j].Name
	})
}

// EachRow lists the Certificates of ns ("" for every namespace) as
// metadata, PageSize at a time with limit and continue, and calls fn with
// each Row as its page arrives.
func EachRow(ctx context.Context, mc metadata.Interface, ns string, fn func(Row) error) error {
	return eachRow(ctx, mc, ns, PageSize, fn)
}

// eachRow is EachRow with pageSize items per request; 0 lists all at once.
func eachRow(ctx context.Context, mc metadata.Interface, ns string, pageSize int64, fn func(Row) error) error {
	res := mc.Resource(configMaps).Namespace(ns)
	p := pager.New(func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
		return res.List(ctx, opts)
	})
	p.PageSize, p.PageBufferSize = pageSize, pageBuffer
	return each(ctx, p, ns, func(obj runtime.Object) error {
		m, ok := obj.(*metav1.PartialObjectMetadata)
		if !ok {
			return fmt.Errorf("list configmaps: unexpected %T", obj)
		}
		return fn(RowFromMetadata(&m.ObjectMeta))
	})
}

// each runs the pager over the Certificates' ConfigMaps. The API
// server's errors are described for the user; fn's are returned as they are.
func each(ctx context.Context, p *pager.ListPager, ns string, fn func(runtime.Object) error) error {
	var fnErr error
	err := p.EachListItem(ctx, metav1.ListOptions{LabelSelector: store.CertificateSelector}, func(obj runtime.Object) error {
		fnErr = fn(obj)
		return fnErr
	})
	switch {
	case fnErr != nil:
		return fnErr
	case err != nil:
		return kube.Describe(err, "list", "configmaps", ns)
	}
	return nil
}

// Rows is every Row of ns ("" for every namespace), sorted by SortRows.
// A continue token that expires before the last page (the listing
// outlived etcd's compaction window) starts over with one list of
// everything, as client-go's pager.List does for kubectl.
func Rows(ctx context.Context, mc metadata.Interface, ns string) ([]Row, error) {
	var rows []Row
	collect := func(r Row) error {
		rows = append(rows, r)
		return nil
	}
	err := eachRow(ctx, mc, ns, PageSize, collect)
	if apierrors.IsResourceExpired(err) && len(rows) > 0 {
		rows = rows[:0]
		err = eachRow(ctx, mc, ns, 0, collect)
	}
	if err != nil {
		return nil, err
	}
	SortRows(rows)
	return rows, nil
}

// Certificates reads every Certificate of ns ("" for every namespace) in
// full, for -o json and -o yaml: ConfigMaps in pages, each decoded once as
// its page arrives.
func Certificates(ctx context.Context, c kubernetes.Interface, ns string) ([]*certmanager.Certificate, error) {
	cms := c.CoreV1().ConfigMaps(ns)
	p := pager.New(func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
		return cms.List(ctx, opts)
	})
	// A full ConfigMap is a few kB: smaller pages than for metadata.
	p.PageSize, p.PageBufferSize = PageSize/5, pageBuffer
	var out []*certmanager.Certificate
	err := each(ctx, p, ns, func(obj runtime.Object) error {
		cm, ok := obj.(*corev1.ConfigMap)
		if !ok {
			return fmt.Errorf("list configmaps: unexpected %T", obj)
		}
		cert, err := store.DecodeCertificate(cm)
		if err != nil {
			return err
		}
		out = append(out, cert)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
