package issuance

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/manifest"
	"github.com/kubectl-acme/kubectl-acme/internal/store"
)

// Plan is what `apply` does with decoded manifests, in order: register
// the Issuers of the input, save the stored Issuers that legacy
// Certificates extend, then issue the Certificates.
type Plan struct {
	// Issuers are the input's Issuers and ClusterIssuers, in input order.
	Issuers []*manifest.Object
	// StoredIssuers are Issuers not in the input whose solvers a legacy
	// Certificate extends; they are saved, not registered again. Resolve
	// fills them in.
	StoredIssuers []*certmanager.Issuer
	Certs         []*manifest.Object
	// Notes say what the plan changed in the Issuers (legacy solvers).
	Notes []string
	// External are the Certificates whose issuer is not in the input, by
	// IssuerKey: Resolve reads those issuers.
	External map[string][]*manifest.Object

	// issuers are the Certificates' issuers by IssuerKey: the input's,
	// then those Resolve read.
	issuers map[string]*certmanager.Issuer
}

// IssuerKey identifies an Issuer or ClusterIssuer.
func IssuerKey(kind, ns, name string) string {
	if kind == certmanager.KindClusterIssuer {
		ns = ""
	}
	return kind + "/" + ns + "/" + name
}

// CertIssuerKey is the IssuerKey of c's issuer.
func CertIssuerKey(c *certmanager.Certificate) string {
	kind := c.Spec.IssuerRef.Kind
	if kind == "" {
		kind = certmanager.KindIssuer
	}
	return IssuerKey(kind, c.Namespace, c.Spec.IssuerRef.Name)
}

// KindName is an issuer as kubectl names objects: issuer/le,
// clusterissuer/le.
func KindName(iss *certmanager.Issuer) string {
	return strings.ToLower(iss.Kind) + "/" + iss.Name
}

// NewPlan orders the objects (Issuers first, in input order) and merges
// legacy Certificates' solvers into the Issuers of the input. It reads
// nothing: the Certificates whose Issuer is not in the input are left in
// External for Resolve.
func NewPlan(objs []*manifest.Object) (*Plan, error) {
	p := &Plan{External: map[string][]*manifest.Object{}, issuers: map[string]*certmanager.Issuer{}}
	for _, o := range objs {
		if o.Issuer != nil {
			p.Issuers = append(p.Issuers, o)
			p.issuers[IssuerKey(o.Kind, o.Issuer.Namespace, o.Issuer.Name)] = o.Issuer
		}
	}
	for _, o := range objs {
		if o.Certificate == nil {
			continue
		}
		p.Certs = append(p.Certs, o)
		key := CertIssuerKey(o.Certificate)
		iss := p.issuers[key]
		if iss == nil {
			p.External[key] = append(p.External[key], o)
			continue
		}
		if len(o.LegacySolvers) > 0 {
			n, err := manifest.MergeSolvers(iss, o.LegacySolvers)
			if err != nil {
				return nil, fmt.Errorf("%s (%s): %w", o, o.Location, err)
			}
			if n > 0 {
				p.Notes = append(p.Notes, legacyNote(iss, o, n))
			}
		}
	}
	return p, nil
}

func legacyNote(iss *certmanager.Issuer, o *manifest.Object, n int) string {
	return fmt.Sprintf("%s: added %d solver(s) from certificate/%s's spec.acme.config (cert-manager v0.11 moved per-domain solver settings to the issuer)",
		KindName(iss), n, o.Name())
}

// Issuer is the issuer of c: from the input, or read by Resolve; nil when
// it is neither.
func (p *Plan) Issuer(c *certmanager.Certificate) *certmanager.Issuer {
	return p.issuers[CertIssuerKey(c)]
}

// StoredIssuersOfCerts are the issuers Resolve read for the Certificates
// (not those of the input, which are registered first), once each.
func (p *Plan) StoredIssuersOfCerts() []*certmanager.Issuer {
	var out []*certmanager.Issuer
	seen := map[string]bool{}
	for _, o := range p.Certs {
		key := CertIssuerKey(o.Certificate)
		if iss := p.issuers[key]; iss != nil && len(p.External[key]) > 0 && !seen[key] {
			seen[key] = true
			out = append(out, iss)
		}
	}
	return out
}

// PlanError lists everything wrong with a plan before anything changed.
type PlanError struct {
	Problems []string
}

func (e *PlanError) Error() string {
	return "nothing was changed:\n" + strings.Join(e.Problems, "\n")
}

// Resolve checks, before anything changes, everything that can fail
// without the CA: it reads the issuers not in the input (all at once),
// merges legacy Certificates' solvers into them, and checks that each
// Certificate's issuer selects a solver for every name. Problems come back
// together as a *PlanError.
func (p *Plan) Resolve(ctx context.Context, st *store.Store) error {
	type read struct {
		iss *certmanager.Issuer
		err error
	}
	keys := make([]string, 0, len(p.External))
	for key := range p.External {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	reads := make([]read, len(keys))
	var wg sync.WaitGroup
	for i, key := range keys {
		c := p.External[key][0].Certificate
		wg.Go(func() {
			ref := c.Spec.IssuerRef
			reads[i].iss, reads[i].err = st.GetIssuer(ctx, c.Namespace, ref.Name, ref.Kind == certmanager.KindClusterIssuer)
		})
	}
	wg.Wait()

	var problems []string
	problem := func(c *manifest.Object, err error) {
		problems = append(problems, fmt.Sprintf("%s (%s, %s): %v", c, c.File, c.Location, err))
	}
	for i, key := range keys {
		certs := p.External[key]
		iss, err := reads[i].iss, reads[i].err
		if err != nil {
			for _, c := range certs {
				problem(c, err)
			}
			continue
		}
		p.issuers[key] = iss
		merged := 0
		for _, c := range certs {
			if len(c.LegacySolvers) == 0 {
				continue
			}
			n, err := manifest.MergeSolvers(iss, c.LegacySolvers)
			if err != nil {
				problem(c, err)
				continue
			}
			if n > 0 {
				merged += n
				p.Notes = append(p.Notes, legacyNote(iss, c, n))
			}
		}
		if merged > 0 {
			p.StoredIssuers = append(p.StoredIssuers, iss)
		}
	}
	for _, c := range p.Certs {
		iss := p.Issuer(c.Certificate)
		if iss == nil {
			continue
		}
		if _, err := certmanager.SolversFor(iss, c.Certificate); err != nil {
			problem(c, err)
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return &PlanError{Problems: problems}
	}
	return nil
}

// IssuerOutcome is how one of a plan's issuers was made ready.
type IssuerOutcome struct {
	Issuer *certmanager.Issuer
	// Stored: a stored Issuer saved with a legacy Certificate's solvers,
	// not registered.
	Stored bool
	Err    error
}

// PrepareIssuers registers the input's Issuers, one at a time (the CA's
// terms may be asked on the terminal), each within timeout, and saves the
// stored Issuers that legacy Certificates extend. report hears of each,
// in plan order. The registering clients go to o.Accounts for the run's
// orders. It returns the issuers that failed, by IssuerKey, for Jobs.
func (p *Plan) PrepareIssuers(ctx context.Context, o Options, timeout time.Duration, agree func(tosURL string) bool, report func(IssuerOutcome)) map[string]error {
	failed := map[string]error{}
	done := func(iss *certmanager.Issuer, stored bool, err error) {
		if err != nil {
			failed[IssuerKey(iss.Kind, iss.Namespace, iss.Name)] = err
		}
		report(IssuerOutcome{Issuer: iss, Stored: stored, Err: err})
	}
	for _, obj := range p.Issuers {
		rctx, cancel := context.WithTimeout(ctx, timeout)
		err := RegisterIssuer(rctx, o, obj.Issuer, agree)
		cancel()
		done(obj.Issuer, false, err)
	}
	for _, iss := range p.StoredIssuers {
		done(iss, true, o.Store.SaveIssuer(ctx, iss))
	}
	return failed
}

// Jobs are the plan's Certificates for the Runner, each reconciled with
// its stored state (Reconciler; with reissue, issued in any case). A
// Certificate whose issuer is in failed (by IssuerKey: it could not be
// registered) fails without an order.
func (p *Plan) Jobs(st *store.Store, reissue bool, failed map[string]error) []*Job {
	jobs := make([]*Job, len(p.Certs))
	certs := make([]*certmanager.Certificate, len(p.Certs))
	for i, o := range p.Certs {
		certs[i] = o.Certificate
	}
	// The stored Certificates: one LIST per namespace.
	rec := NewReconciler(st, certs, reissue)
	for i, o := range p.Certs {
		c := o.Certificate
		reconcile := rec.Prepare(c)
		jobs[i] = &Job{Cert: c, Issuer: p.Issuer(c), Prepare: func(ctx context.Context, j *Job) (string, error) {
			if failed[CertIssuerKey(c)] != nil {
				return "", fmt.Errorf("not issued: its issuer %s failed (see above)", store.IssuerRefString(c.Spec.IssuerRef))
			}
			return reconcile(ctx, j)
		}}
	}
	return jobs
}

// shimResources are the kinds ApplyShims applies.
var shimResources = map[string]schema.GroupVersionResource{
	"Ingress":     {Group: "networking.k8s.io", Version: "v1", Resource: "ingresses"},
	"Gateway":     {Group: "gateway.networking.k8s.io", Version: "v1", Resource: "gateways"},
	"ListenerSet": {Group: "gateway.networking.k8s.io", Version: "v1", Resource: "listenersets"},
}

// ApplyShims applies the Ingresses and Gateways themselves with
// server-side apply, as `kubectl apply --server-side` would, before their
// certificates are issued (an edit-in-place solver needs the Ingress).
// Objects without a namespace go to ns.
func ApplyShims(ctx context.Context, dc dynamic.Interface, shims []*manifest.Shim, ns string) error {
	for _, sh := range shims {
		gv, err := schema.ParseGroupVersion(sh.APIVersion)
		if err != nil {
			return err
		}
		gvr, ok := shimResources[sh.Kind]
		if !ok || gvr.Group != gv.Group {
			gvr = schema.GroupVersionResource{Group: gv.Group, Version: gv.Version, Resource: strings.ToLower(sh.Kind) + "s"}
		}
		gvr.Version = gv.Version
		n := sh.Namespace
		if n == "" {
			n = ns
		}
		_, err = dc.Resource(gvr).Namespace(n).Patch(ctx, sh.Name, types.ApplyPatchType, sh.JSON, metav1.PatchOptions{FieldManager: "kubectl-acme"})
		if err != nil {
			return fmt.Errorf("apply %s %s/%s: %w", strings.ToLower(sh.Kind), n, sh.Name, err)
		}
	}
	return nil
}
