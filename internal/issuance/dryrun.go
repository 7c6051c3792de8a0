package issuance

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/rbac"
	"github.com/kubectl-acme/kubectl-acme/solver"
)

// Verdict is the server dry run's answer for one object of a plan.
type Verdict struct {
	// Object is the object as kubectl names it: issuer/le, certificate/web.
	Object   string
	Problems []error
}

// dryRunConcurrency bounds the objects checked at once.
const dryRunConcurrency = 8

// ServerDryRun checks, without changing anything, what the cluster decides
// about each object of a resolved plan (apply --dry-run=server): for an
// Issuer, the Secrets it refers to, the namespace of a ClusterIssuer and
// whether the user may write its ConfigMap; for a Certificate, whether its
// Secret may be written (force: also one kubectl-acme did not create), the
// Ingresses and HTTPRoutes its solvers need, and then the admission chain's
// and NetworkPolicies' verdict on its solver objects, as Issue judges them
// before ordering. Verdicts come in plan order: Issuers, then Certificates.
func ServerDryRun(ctx context.Context, o Options, p *Plan, force bool) []Verdict {
	st := o.Store
	// One access review for the whole plan: one rules review per
	// namespace, not two access reviews per object.
	var perms []rbac.Permission
	write := func(ns, resource string) []rbac.Permission {
		ps := []rbac.Permission{
			{Verb: "create", Resource: resource, Namespace: ns},
			{Verb: "update", Resource: resource, Namespace: ns},
		}
		perms = append(perms, ps...)
		return ps
	}
	issuerPerms := make([][]rbac.Permission, len(p.Issuers))
	for i, obj := range p.Issuers {
		issuerPerms[i] = write(st.IssuerNamespace(obj.Issuer), "configmaps")
	}
	certPerms := make([][]rbac.Permission, len(p.Certs))
	for i, c := range p.Certs {
		certPerms[i] = write(c.Certificate.Namespace, "secrets")
	}
	allowed, reviewErr := review(ctx, o, perms)
	access := func(ps []rbac.Permission) error {
		if reviewErr != nil {
			return reviewErr
		}
		for _, pm := range ps {
			if !allowed[pm] {
				return &rbac.ForbiddenError{Permission: pm}
			}
		}
		return nil
	}

	out := make([]Verdict, len(p.Issuers)+len(p.Certs))
	var g errgroup.Group
	g.SetLimit(dryRunConcurrency)
	for i, obj := range p.Issuers {
		g.Go(func() error {
			out[i] = Verdict{Object: KindName(obj.Issuer), Problems: issuerDryRun(ctx, o, obj.Issuer, access(issuerPerms[i]))}
			return nil
		})
	}
	for i, c := range p.Certs {
		g.Go(func() error {
			cert := c.Certificate
			out[len(p.Issuers)+i] = Verdict{Object: "certificate/" + cert.Name, Problems: certDryRun(ctx, o, p.Issuer(cert), cert, force, access(certPerms[i]))}
			return nil
		})
	}
	_ = g.Wait()
	return out
}

// review answers ps with one rbac.Review, deduplicated.
func review(ctx context.Context, o Options, ps []rbac.Permission) (map[rbac.Permission]bool, error) {
	seen := map[rbac.Permission]bool{}
	var uniq []rbac.Permission
	for _, pm := range ps {
		if !seen[pm] {
			seen[pm] = true
			uniq = append(uniq, pm)
		}
	}
	rs, err := rbac.Review(ctx, o.Store.Client, uniq)
	if err != nil {
		return nil, err
	}
	allowed := map[rbac.Permission]bool{}
	for _, r := range rs {
		allowed[r.Permission] = r.Allowed
	}
	return allowed, nil
}

func issuerDryRun(ctx context.Context, o Options, iss *certmanager.Issuer, accessErr error) []error {
	st := o.Store
	var problems []error
	a := iss.Spec.ACME
	if a.DisableAccountKeyGeneration {
		if _, err := st.ExistingAccountKey(ctx, iss); err != nil {
			problems = append(problems, fmt.Errorf("disableAccountKeyGeneration is set, so the account key must exist: %w", err))
		}
	}
	if a.ExternalAccountBinding != nil {
		if _, err := st.ExternalAccountBinding(ctx, iss); err != nil {
			problems = append(problems, err)
		}
	}
	ns := st.IssuerNamespace(iss)
	if iss.IsCluster() {
		if _, err := st.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			problems = append(problems, fmt.Errorf("namespace %q, where ClusterIssuers and their account keys are kept (--cluster-resource-namespace), does not exist: create it", ns))
		}
	}
	if accessErr != nil {
		problems = append(problems, accessErr)
	}
	return problems
}

func certDryRun(ctx context.Context, o Options, iss *certmanager.Issuer, cert *certmanager.Certificate, force bool, accessErr error) []error {
	st := o.Store
	var problems []error
	if err := st.CheckSecretWritable(ctx, cert, force); err != nil {
		problems = append(problems, err)
	}
	if accessErr != nil {
		problems = append(problems, accessErr)
	}
	for _, sv := range iss.Spec.ACME.Solvers {
		if sv.IsGatewayHTTPRoute() {
			if err := solver.HTTPRoutesServed(ctx, st.Dynamic, cert.Namespace); err != nil {
				problems = append(problems, err)
			}
			continue
		}
		if sv.HTTP01 == nil || sv.HTTP01.Ingress == nil || sv.HTTP01.Ingress.Name == "" {
			continue
		}
		name := sv.HTTP01.Ingress.Name
		if _, err := st.Client.NetworkingV1().Ingresses(cert.Namespace).Get(ctx, name, metav1.GetOptions{}); err != nil {
			if apierrors.IsNotFound(err) {
				err = fmt.Errorf("ingress %s/%s (http01.ingress.name of %s) does not exist", cert.Namespace, name, KindName(iss))
			}
			problems = append(problems, err)
		}
	}
	// The admission chain and the NetworkPolicies judge the solver
	// objects, as Issue does before ordering; only when nothing else is
	// wrong, since their verdict would repeat it.
	if len(problems) == 0 {
		if err := Admit(ctx, o, iss, cert); err != nil {
			problems = append(problems, err)
		}
	}
	return problems
}

// AdmitSolvers runs Admit for each of iss's solvers on its own, in
// namespace ns, for a name it would be picked for (check --issuer): every
// solver the issuer may pick is judged, not only the one a name picks.
func AdmitSolvers(ctx context.Context, o Options, iss *certmanager.Issuer, ns string) error {
	if iss.Spec.ACME == nil {
		return nil
	}
	var errs []error
	for _, sv := range iss.Spec.ACME.Solvers {
		cert := &certmanager.Certificate{}
		cert.Name, cert.Namespace = "check", ns
		cert.Spec.DNSNames = []string{exampleName(sv)}
		// This solver alone, for any name.
		one, a := *iss, *iss.Spec.ACME
		sv.Selector = nil
		a.Solvers = []certmanager.ACMEChallengeSolver{sv}
		one.Spec.ACME = &a
		if err := Admit(ctx, o, &one, cert); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("issuing through %s would fail before any order: %w", KindName(iss), errors.Join(errs...))
	}
	return nil
}

// exampleName is a DNS name the solver is picked for: from its selector,
// else one under the reserved example.com.
func exampleName(sv certmanager.ACMEChallengeSolver) string {
	if sel := sv.Selector; sel != nil {
		if len(sel.DNSNames) > 0 {
			return strings.TrimPrefix(sel.DNSNames[0], "*.")
		}
		if len(sel.DNSZones) > 0 {
			return "check." + sel.DNSZones[0]
		}
	}
	return "check.example.com"
}
