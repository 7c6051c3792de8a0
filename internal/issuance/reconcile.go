package issuance

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/store"
)

// Reconcile is the Prepare of a Certificate given in full (apply, issue
// --ingress): want is issued, keeping the stored Certificate's status
// (revision, last order) when there is one, unless the stored one matches
// want and holds a current certificate. Then only changed labels and
// annotations are saved (they take part in solver selection) and the job
// is skipped, saying so. With always, want is issued in any case.
func Reconcile(st *store.Store, want *certmanager.Certificate, always bool) func(ctx context.Context, j *Job) (string, error) {
	return reconcile(st, want, always, st.GetCertificate)
}

// Reconciler is Reconcile for every Certificate of one run (apply): the
// stored ones are read by one LIST per namespace (store.GetCertificates)
// when the first job of that namespace starts, not by a GET each. A job
// whose turn comes later decides from that read; another process issuing
// the same Certificate meanwhile is found by its Lease (which makes Issue
// read the stored status again) and by the resourceVersion the final
// write carries.
type Reconciler struct {
	st     *store.Store
	always bool
	mu     sync.Mutex
	names  map[string][]string // by namespace
	byNS   map[string]*storedNamespace
}

type storedNamespace struct {
	once  sync.Once
	certs map[string]*certmanager.Certificate
	err   error
}

// NewReconciler prepares the reads of wants' stored versions.
func NewReconciler(st *store.Store, wants []*certmanager.Certificate, always bool) *Reconciler {
	r := &Reconciler{st: st, always: always, names: map[string][]string{}, byNS: map[string]*storedNamespace{}}
	for _, w := range wants {
		r.names[w.Namespace] = append(r.names[w.Namespace], w.Name)
	}
	return r
}

// Prepare is the Job.Prepare of want.
func (r *Reconciler) Prepare(want *certmanager.Certificate) func(ctx context.Context, j *Job) (string, error) {
	return reconcile(r.st, want, r.always, r.get)
}

// get is GetCertificate from the namespace's one read; a namespace of one
// Certificate, or a user who may not list, reads by GET.
func (r *Reconciler) get(ctx context.Context, ns, name string) (*certmanager.Certificate, error) {
	r.mu.Lock()
	names := r.names[ns]
	sn := r.byNS[ns]
	if sn == nil {
		sn = &storedNamespace{}
		r.byNS[ns] = sn
	}
	r.mu.Unlock()
	if len(names) < 2 {
		return r.st.GetCertificate(ctx, ns, name)
	}
	sn.once.Do(func() { sn.certs, sn.err = r.st.GetCertificates(ctx, ns, names) })
	if sn.err != nil {
		return r.st.GetCertificate(ctx, ns, name)
	}
	c, ok := sn.certs[name]
	if !ok {
		return nil, fmt.Errorf("certificate %q %w in namespace %q", name, store.ErrNotFound, ns)
	}
	// One job per name: no other job shares c.
	return c, nil
}

func reconcile(st *store.Store, want *certmanager.Certificate, always bool, get func(ctx context.Context, ns, name string) (*certmanager.Certificate, error)) func(ctx context.Context, j *Job) (string, error) {
	return func(ctx context.Context, j *Job) (string, error) {
		cert, err := get(ctx, want.Namespace, want.Name)
		switch {
		case errors.Is(err, store.ErrNotFound):
			j.Cert = want
			return "", nil
		case err != nil:
			return "", err
		}
		// The Secret is read only when nothing else already calls for a new
		// certificate: Issue reads it again, and a Secret is read once.
		if now := time.Now(); !always && ReissueReason(cert, want, true, now) == "" {
			sec, err := st.GetSecret(ctx, want)
			if ReissueReason(cert, want, err == nil && sec != nil, now) == "" {
				if !reflect.DeepEqual(cert.Labels, want.Labels) || !reflect.DeepEqual(cert.Annotations, want.Annotations) {
					cert.Labels, cert.Annotations = want.Labels, want.Annotations
					if err := st.SaveCertificate(ctx, cert); err != nil {
						return "", err
					}
				}
				j.Cert = cert
				return fmt.Sprintf("unchanged: secret/%s valid until %s, renewal due %s",
					cert.Spec.SecretName, FormatTime(cert.Status.NotAfter), FormatTime(cert.Status.RenewalTime)), nil
			}
		}
		cert.Spec, cert.Labels, cert.Annotations = want.Spec, want.Labels, want.Annotations
		j.Cert = cert
		return "", nil
	}
}

// reissueReasons phrase each state of certmanager.Summarize that needs a
// new certificate.
var reissueReasons = map[certmanager.State]string{
	certmanager.StatePending:  "never issued",
	certmanager.StateFailed:   "last attempt failed",
	certmanager.StateExpired:  "expired",
	certmanager.StateExpiring: "due for renewal",
	certmanager.StateRevoked:  "revoked",
}

// ReissueReason says why a stored Certificate must be issued again to
// match want, or "" when its certificate is current: its spec differs, its
// state (as status shows it) is anything but Ready, or its Secret is gone.
func ReissueReason(stored, want *certmanager.Certificate, secretExists bool, now time.Time) string {
	if !SpecEqual(stored.Spec, want.Spec) {
		return "spec changed"
	}
	if why := reissueReasons[certmanager.Summarize(&stored.Status, now).State]; why != "" {
		return why
	}
	if !secretExists {
		return "secret missing"
	}
	return ""
}

// SpecEqual compares specs as stored: empty and nil lists are equal, and
// an empty issuerRef kind or group means cert-manager's defaults.
func SpecEqual(a, b certmanager.CertificateSpec) bool {
	norm := func(s certmanager.CertificateSpec) certmanager.CertificateSpec {
		if len(s.DNSNames) == 0 {
			s.DNSNames = nil
		}
		if len(s.IPAddresses) == 0 {
			s.IPAddresses = nil
		}
		if len(s.AdditionalOutputFormats) == 0 {
			s.AdditionalOutputFormats = nil
		}
		if s.IssuerRef.Kind == "" {
			s.IssuerRef.Kind = certmanager.KindIssuer
		}
		if s.IssuerRef.Group == "" {
			s.IssuerRef.Group = certmanager.Group
		}
		return s
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

// FormatTime is t in RFC 3339, UTC, or <none>.
func FormatTime(t *metav1.Time) string {
	if t == nil {
		return "<none>"
	}
	return t.UTC().Format(time.RFC3339)
}
