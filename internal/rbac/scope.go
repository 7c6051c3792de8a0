package rbac

import (
	"context"
	"errors"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/store"
	"github.com/kubectl-acme/kubectl-acme/solver"
)

// AccessScope is where a user of ns, issuing through issuer, needs
// permissions. The issuer is read when allowed: for a ClusterIssuer's
// account key Secret, and for the solvers that patch existing Ingresses
// instead of creating one. With cert, only the solvers picked for its
// names count, with its override annotations; otherwise all of them. The
// issuer read is returned for the caller to use; nil if it could not be.
func AccessScope(ctx context.Context, st *store.Store, ns, issuer string, cluster bool, cert *certmanager.Certificate) (Scope, *certmanager.Issuer) {
	if issuer == "" {
		return BaseScope(st.ClusterNamespace, ns, issuer, cluster), nil
	}
	iss, err := st.GetIssuer(ctx, ns, issuer, cluster)
	if err != nil {
		return BaseScope(st.ClusterNamespace, ns, issuer, cluster), nil
	}
	return IssuerScope(st.ClusterNamespace, ns, iss, cert), iss
}

// BaseScope is the scope of issuing in ns through the named issuer, before
// the issuer is read. clusterNS is where ClusterIssuers are kept
// (store.DefaultClusterNamespace when empty).
func BaseScope(clusterNS, ns, issuer string, cluster bool) Scope {
	s := Scope{Namespace: ns}
	if cluster {
		s.ClusterIssuer, s.ClusterNamespace = issuer, clusterNS
		if s.ClusterNamespace == "" {
			s.ClusterNamespace = store.DefaultClusterNamespace
		}
	}
	return s
}

// IssuerScope is AccessScope for an issuer already read.
func IssuerScope(clusterNS, ns string, iss *certmanager.Issuer, cert *certmanager.Certificate) Scope {
	s := BaseScope(clusterNS, ns, iss.Name, iss.IsCluster())
	if iss.Spec.ACME == nil {
		return s
	}
	if iss.IsCluster() {
		s.AccountKeySecret = iss.Spec.ACME.PrivateKeySecretRef.Name
	}
	solvers := iss.Spec.ACME.Solvers
	var picked []int
	if cert != nil {
		if picks, err := certmanager.SolversFor(iss, cert); err == nil {
			for _, i := range picks {
				picked = append(picked, i)
			}
		}
	}
	if picked == nil {
		for i := range solvers {
			picked = append(picked, i)
		}
	}
	creates := len(picked) == 0
	for _, i := range picked {
		sv := solvers[i]
		if cert != nil {
			if o, err := certmanager.IngressOverrides(sv, cert.Annotations); err == nil {
				sv = o
			}
		}
		if sv.IsGatewayHTTPRoute() {
			s.HTTPRoutes = true
			continue
		}
		if h := sv.HTTP01; h != nil && h.Ingress != nil && h.Ingress.Name != "" {
			if !slices.Contains(s.PatchedIngresses, h.Ingress.Name) {
				s.PatchedIngresses = append(s.PatchedIngresses, h.Ingress.Name)
			}
			continue
		}
		creates = true
	}
	slices.Sort(s.PatchedIngresses)
	s.NoNewIngresses = !creates
	s.SolverTraffic = iss.Annotations[solver.AnnotationAllowSolverTraffic] == "true"
	return s
}

// Preflight reviews what cmds need in scope, before anything is created.
// It returns every result when a permission is missing, and none when all
// are granted or when the cluster does not let the user review their own
// access: the API calls then report what is forbidden themselves. rules
// is the rules review of scope's namespace (nil when there was none).
func Preflight(ctx context.Context, c kubernetes.Interface, scope Scope, cmds ...Command) (results []Result, rules *Rules, _ error) {
	results, reviews, err := ReviewRules(ctx, c, Needs(scope, cmds...))
	if err != nil {
		if apierrors.IsForbidden(errors.Unwrap(err)) || apierrors.IsNotFound(errors.Unwrap(err)) {
			return nil, nil, nil
		}
		return nil, nil, err
	}
	if len(Missing(results)) == 0 {
		return nil, reviews[scope.Namespace], nil
	}
	return results, reviews[scope.Namespace], nil
}

// DenyIngressClassReads tells classes which IngressClass reads rules show
// would be forbidden, so they are not sent.
func DenyIngressClassReads(classes *solver.IngressClasses, rules *Rules) {
	if classes == nil || rules == nil {
		return
	}
	classes.Deny(func(verb, name string) bool {
		return rules.Denies(verb, "networking.k8s.io", "ingressclasses", name)
	})
}

// ForbiddenError is a permission the user lacks.
type ForbiddenError struct{ Permission Permission }

func (e *ForbiddenError) Error() string {
	p := e.Permission
	return fmt.Sprintf("forbidden: you may not %s %s in namespace %q", p.Verb, p.ResourceName(), p.Namespace)
}
