package rbac

import (
	"slices"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/store"
	"github.com/kubectl-acme/kubectl-acme/solver"
)

func issuerWith(kind string, solvers ...certmanager.ACMEChallengeSolver) *certmanager.Issuer {
	iss := &certmanager.Issuer{}
	iss.Kind, iss.Name, iss.Namespace = kind, "le", "app"
	iss.Spec.ACME = &certmanager.ACMEIssuer{Server: "https://ca.example/dir", PrivateKeySecretRef: certmanager.SecretKeySelector{Name: "le-account"}, Solvers: solvers}
	return iss
}

func TestIssuerScope(t *testing.T) {
	create := certmanager.ACMEChallengeSolver{HTTP01: &certmanager.ACMEChallengeSolverHTTP01{Ingress: &certmanager.ACMEChallengeSolverHTTP01Ingress{}}}
	patch := func(name string, names ...string) certmanager.ACMEChallengeSolver {
		sv := certmanager.ACMEChallengeSolver{HTTP01: &certmanager.ACMEChallengeSolverHTTP01{Ingress: &certmanager.ACMEChallengeSolverHTTP01Ingress{Name: name}}}
		if len(names) > 0 {
			sv.Selector = &certmanager.CertificateDNSNameSelector{DNSNames: names}
		}
		return sv
	}
	route := certmanager.ACMEChallengeSolver{HTTP01: &certmanager.ACMEChallengeSolverHTTP01{GatewayHTTPRoute: &certmanager.ACMEChallengeSolverHTTP01GatewayHTTPRoute{}}}
	cert := &certmanager.Certificate{}
	cert.Name, cert.Namespace = "web", "app"
	cert.Spec.DNSNames = []string{"a.example.com"}
	traffic := issuerWith(certmanager.KindIssuer, create)
	traffic.Annotations = map[string]string{solver.AnnotationAllowSolverTraffic: "true"}

	tests := []struct {
		name string
		iss  *certmanager.Issuer
		cert *certmanager.Certificate
		want Scope
	}{
		{"creates an ingress", issuerWith(certmanager.KindIssuer, create), nil, Scope{Namespace: "app"}},
		{"cluster issuer", issuerWith(certmanager.KindClusterIssuer, create), nil,
			Scope{Namespace: "app", ClusterIssuer: "le", ClusterNamespace: store.DefaultClusterNamespace, AccountKeySecret: "le-account"}},
		{"patches only", issuerWith(certmanager.KindIssuer, patch("web-b"), patch("web-a")), nil,
			Scope{Namespace: "app", PatchedIngresses: []string{"web-a", "web-b"}, NoNewIngresses: true}},
		{"the certificate's pick only", issuerWith(certmanager.KindIssuer, patch("other", "b.example.com"), patch("web", "a.example.com")), cert,
			Scope{Namespace: "app", PatchedIngresses: []string{"web"}, NoNewIngresses: true}},
		{"routes", issuerWith(certmanager.KindIssuer, route), nil, Scope{Namespace: "app", HTTPRoutes: true, NoNewIngresses: true}},
		{"solver traffic", traffic, nil, Scope{Namespace: "app", SolverTraffic: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := IssuerScope("", "app", tt.iss, tt.cert)
			if got.Namespace != tt.want.Namespace || got.ClusterIssuer != tt.want.ClusterIssuer || got.ClusterNamespace != tt.want.ClusterNamespace ||
				got.AccountKeySecret != tt.want.AccountKeySecret || !slices.Equal(got.PatchedIngresses, tt.want.PatchedIngresses) ||
				got.NoNewIngresses != tt.want.NoNewIngresses || got.HTTPRoutes != tt.want.HTTPRoutes || got.SolverTraffic != tt.want.SolverTraffic {
				t.Errorf("scope %+v, want %+v", got, tt.want)
			}
		})
	}
	if s := BaseScope("acme", "app", "le", true); s.ClusterNamespace != "acme" || s.ClusterIssuer != "le" {
		t.Errorf("BaseScope with --cluster-resource-namespace: %+v", s)
	}
}

// AccessScope reads the issuer when it can; a missing one leaves the
// scope of its name.
func TestAccessScope(t *testing.T) {
	ctx := t.Context()
	st := &store.Store{Client: fake.NewClientset()}
	if err := st.SaveIssuer(ctx, issuerWith(certmanager.KindIssuer, certmanager.ACMEChallengeSolver{HTTP01: &certmanager.ACMEChallengeSolverHTTP01{Ingress: &certmanager.ACMEChallengeSolverHTTP01Ingress{Name: "web"}}})); err != nil {
		t.Fatal(err)
	}
	s, iss := AccessScope(ctx, st, "app", "le", false, nil)
	if iss == nil || !s.NoNewIngresses || !slices.Equal(s.PatchedIngresses, []string{"web"}) {
		t.Errorf("stored issuer: %+v, %v", s, iss)
	}
	s, iss = AccessScope(ctx, st, "app", "gone", true, nil)
	if iss != nil || s.ClusterIssuer != "gone" || s.ClusterNamespace != store.DefaultClusterNamespace {
		t.Errorf("missing issuer: %+v, %v", s, iss)
	}
}

// Preflight answers nil when all is granted or the user may not review
// their access, and every result when something is missing.
func TestPreflight(t *testing.T) {
	ctx := t.Context()
	grantAll := fake.NewClientset()
	grantAll.PrependReactor("create", "selfsubjectrulesreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		r := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectRulesReview)
		r.Status.ResourceRules = []authorizationv1.ResourceRule{{Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"}}}
		return true, r, nil
	})
	if rs, rules, err := Preflight(ctx, grantAll, Scope{Namespace: "app"}, Issue); rs != nil || rules == nil || err != nil {
		t.Errorf("all granted: %v, %v", rs, err)
	}
	forbidden := fake.NewClientset()
	deny := func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "authorization.k8s.io", Resource: a.GetResource().Resource}, "", nil)
	}
	forbidden.PrependReactor("create", "selfsubjectrulesreviews", deny)
	forbidden.PrependReactor("create", "selfsubjectaccessreviews", deny)
	if rs, _, err := Preflight(ctx, forbidden, Scope{Namespace: "app"}, Issue); rs != nil || err != nil {
		t.Errorf("reviews forbidden: %v, %v", rs, err)
	}
	none := fake.NewClientset()
	none.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, a.(k8stesting.CreateAction).GetObject(), nil // not allowed
	})
	rs, _, err := Preflight(ctx, none, Scope{Namespace: "app"}, Issue)
	if err != nil || len(rs) != len(Needs(Scope{Namespace: "app"}, Issue)) || len(Missing(rs)) == 0 {
		t.Errorf("nothing granted: %d results, %v", len(rs), err)
	}
}
