package rbac

import (
	"context"
	"slices"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func TestNeedsAndRolesAreInverse(t *testing.T) {
	scope := Scope{Namespace: "app", ClusterIssuer: "le", ClusterNamespace: "kubectl-acme", AccountKeySecret: "le-account"}
	perms := Needs(scope, Everyday...)
	roles := Roles(RoleName, perms)
	if len(roles) != 2 || roles[0].Namespace != "app" || roles[1].Namespace != "kubectl-acme" {
		t.Fatalf("roles %+v", roles)
	}
	var granted []Permission
	for _, r := range roles {
		granted = append(granted, Granted(r, perms)...)
		for _, rule := range r.Rules {
			if len(rule.Resources) != 1 || slices.Contains(rule.Verbs, "*") {
				t.Errorf("rule not minimal: %+v", rule)
			}
		}
	}
	if !slices.Equal(granted, perms) {
		t.Errorf("the Roles grant %v,\nwant %v", granted, perms)
	}
	// The ClusterIssuer's namespace: its ConfigMap and account key only.
	cl := roles[1].Rules
	if len(cl) != 2 || cl[0].ResourceNames[0] != "acme-clusterissuer-le" || cl[1].ResourceNames[0] != "le-account" {
		t.Errorf("cluster resource namespace rules: %+v", cl)
	}
	if n := len(Needs(Scope{Namespace: "app"}, Everyday...)); n != 24 {
		t.Errorf("%d permissions in the namespace, want 24 (update docs/rbac.md when this changes)", n)
	}
}

func TestIssueNeedsLessThanEverything(t *testing.T) {
	issue := Needs(Scope{Namespace: "app"}, Issue)
	for _, p := range issue {
		if p.Verb == "list" && !p.Optional {
			t.Errorf("issue does not list anything, but needs %s", p)
		}
	}
	if !slices.Contains(issue, Permission{Verb: "watch", Resource: "pods", Namespace: "app"}) ||
		!slices.Contains(issue, Permission{Verb: "update", Group: "coordination.k8s.io", Resource: "leases", Namespace: "app"}) {
		t.Errorf("issue needs %v", issue)
	}
}

// A run of several certificates deletes its Leases in one request; a run
// of one does not need to, and the Role lists the verb last.
func TestSeveralCertificatesDeleteLeasesAtOnce(t *testing.T) {
	dc := Permission{Verb: "deletecollection", Group: "coordination.k8s.io", Resource: "leases", Namespace: "app"}
	if slices.Contains(Needs(Scope{Namespace: "app"}, Issue), dc) {
		t.Error("issue of one certificate needs deletecollection on leases")
	}
	if !slices.Contains(Needs(Scope{Namespace: "app"}, Issue, Several), dc) {
		t.Error("a run of several certificates does not need deletecollection on leases")
	}
	for _, r := range Roles(RoleName, Needs(Scope{Namespace: "app"}, Everyday...))[0].Rules {
		if r.Resources[0] == "leases" && !slices.Equal(r.Verbs, []string{"get", "list", "create", "update", "delete", "deletecollection"}) {
			t.Errorf("leases rule verbs %v", r.Verbs)
		}
	}
}

func TestReviewAndMissing(t *testing.T) {
	c := fake.NewClientset()
	c.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		r := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview)
		ra := r.Spec.ResourceAttributes
		r.Status.Allowed = !(ra.Verb == "create" && ra.Resource == "pods")
		return true, r, nil
	})
	perms := Needs(Scope{Namespace: "app"}, Issue)
	rs, err := Review(context.Background(), c, perms)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != len(perms) {
		t.Fatalf("%d results for %d permissions", len(rs), len(perms))
	}
	for i := range rs {
		if rs[i].Permission != perms[i] {
			t.Fatalf("results out of order at %d", i)
		}
	}
	if m := Missing(rs); len(m) != 1 || m[0].String() != `create pods in namespace "app"` {
		t.Errorf("missing %v", m)
	}
}

func TestPatchedIngressesNeedUpdateByName(t *testing.T) {
	perms := Needs(Scope{Namespace: "app", PatchedIngresses: []string{"web"}, NoNewIngresses: true}, Issue)
	var ing []string
	for _, p := range perms {
		if p.Resource == "ingresses" {
			ing = append(ing, p.String())
		}
	}
	want := []string{`get ingresses.networking.k8s.io web in namespace "app"`, `update ingresses.networking.k8s.io web in namespace "app"`}
	if !slices.Equal(ing, want) {
		t.Errorf("ingress permissions %q, want %q", ing, want)
	}
	roles := Roles(RoleName, perms)
	if got := Granted(roles[0], perms); !slices.Equal(got, perms) {
		t.Errorf("the Role grants %v, want %v", got, perms)
	}
}

// TestReviewUsesOneRulesReview: when the rules review grants everything,
// no per-permission access review is made; what it does not grant is
// asked one by one.
func TestReviewUsesOneRulesReview(t *testing.T) {
	scope := Scope{Namespace: "app"}
	perms := Needs(scope, Issue)
	c := fake.NewClientset()
	var rulesReviews, accessReviews int
	c.PrependReactor("create", "selfsubjectrulesreviews", func(k8stesting.Action) (bool, runtime.Object, error) {
		rulesReviews++
		return true, &authorizationv1.SelfSubjectRulesReview{Status: authorizationv1.SubjectRulesReviewStatus{
			ResourceRules: []authorizationv1.ResourceRule{
				{Verbs: []string{"*"}, APIGroups: []string{""}, Resources: []string{"*"}},
				{Verbs: []string{"*"}, APIGroups: []string{"networking.k8s.io"}, Resources: []string{"ingresses"}},
			},
		}}, nil
	})
	c.PrependReactor("create", "selfsubjectaccessreviews", func(k8stesting.Action) (bool, runtime.Object, error) {
		accessReviews++
		return true, &authorizationv1.SelfSubjectAccessReview{Status: authorizationv1.SubjectAccessReviewStatus{Allowed: false}}, nil
	})
	rs, err := Review(context.Background(), c, perms)
	if err != nil {
		t.Fatal(err)
	}
	if rulesReviews != 1 {
		t.Errorf("%d rules reviews, want 1", rulesReviews)
	}
	var leases int
	for _, p := range perms {
		if p.Group == "coordination.k8s.io" {
			leases++
		}
	}
	if accessReviews != leases {
		t.Errorf("%d access reviews, want one per lease permission (%d), which the rules do not grant", accessReviews, leases)
	}
	missing := Missing(rs)
	if len(missing) != leases {
		t.Errorf("missing %v", missing)
	}
}

func TestHTTPRouteSolverNeedsHTTPRoutes(t *testing.T) {
	route := func(verb string) Permission {
		return Permission{Verb: verb, Group: "gateway.networking.k8s.io", Resource: "httproutes", Namespace: "app"}
	}
	if slices.ContainsFunc(Needs(Scope{Namespace: "app"}, Everyday...), func(p Permission) bool { return p.Resource == "httproutes" }) {
		t.Error("ingress solvers need no httproutes permission")
	}
	issue := Needs(Scope{Namespace: "app", HTTPRoutes: true, NoNewIngresses: true}, Issue)
	if !slices.Contains(issue, route("create")) || !slices.Contains(issue, route("delete")) || slices.Contains(issue, route("list")) {
		t.Errorf("issue through an HTTPRoute needs %v", issue)
	}
	if slices.ContainsFunc(issue, func(p Permission) bool { return p.Resource == "ingresses" }) {
		t.Errorf("issue through an HTTPRoute only needs no ingresses: %v", issue)
	}
	cleanup := Needs(Scope{Namespace: "app", HTTPRoutes: true}, Cleanup)
	if !slices.Contains(cleanup, route("list")) || !slices.Contains(cleanup, route("delete")) {
		t.Errorf("cleanup after an HTTPRoute solver needs %v", cleanup)
	}
	roles := Roles(RoleName, Needs(Scope{Namespace: "app", HTTPRoutes: true}, Everyday...))
	found := false
	for _, r := range roles[0].Rules {
		if r.Resources[0] == "httproutes" && r.APIGroups[0] == "gateway.networking.k8s.io" && slices.Equal(r.Verbs, []string{"list", "create", "delete"}) {
			found = true
		}
	}
	if !found {
		t.Errorf("the Role has no httproutes rule: %+v", roles[0].Rules)
	}
}

// TestRulesDenies: a request is skipped only when an exhaustive rules
// review grants it by no rule: a webhook authorizer's incomplete review,
// a failed review, and a rule naming the object all keep it.
func TestRulesDenies(t *testing.T) {
	review := func(incomplete bool, rules ...authorizationv1.ResourceRule) *Rules {
		c := fake.NewClientset()
		c.PrependReactor("create", "selfsubjectrulesreviews", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, &authorizationv1.SelfSubjectRulesReview{Status: authorizationv1.SubjectRulesReviewStatus{ResourceRules: rules, Incomplete: incomplete}}, nil
		})
		c.PrependReactor("create", "selfsubjectaccessreviews", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, &authorizationv1.SelfSubjectAccessReview{Status: authorizationv1.SubjectAccessReviewStatus{Allowed: true}}, nil
		})
		_, reviews, err := ReviewRules(context.Background(), c, Needs(Scope{Namespace: "app"}, Issue))
		if err != nil {
			t.Fatal(err)
		}
		return reviews["app"]
	}
	const net = "networking.k8s.io"
	namespaced := authorizationv1.ResourceRule{Verbs: []string{"*"}, APIGroups: []string{""}, Resources: []string{"*"}}
	if r := review(false, namespaced); !r.Denies("get", net, "ingressclasses", "nginx") || !r.Denies("list", net, "ingressclasses", "") {
		t.Error("no rule on ingressclasses: want denied")
	}
	if r := review(true, namespaced); r.Denies("get", net, "ingressclasses", "nginx") {
		t.Error("incomplete review (a webhook authorizer may allow it): want not denied")
	}
	reader := authorizationv1.ResourceRule{Verbs: []string{"get", "list"}, APIGroups: []string{net}, Resources: []string{"ingressclasses"}}
	if r := review(false, namespaced, reader); r.Denies("get", net, "ingressclasses", "nginx") || r.Denies("list", net, "ingressclasses", "") {
		t.Error("granted: want not denied")
	}
	byName := authorizationv1.ResourceRule{Verbs: []string{"get"}, APIGroups: []string{net}, Resources: []string{"ingressclasses"}, ResourceNames: []string{"nginx"}}
	r := review(false, byName)
	if r.Denies("get", net, "ingressclasses", "nginx") {
		t.Error("get granted by name: want not denied")
	}
	if !r.Denies("get", net, "ingressclasses", "gce") || !r.Denies("list", net, "ingressclasses", "") {
		t.Error("another name, or a list, under a rule by name: want denied")
	}
	if (*Rules)(nil).Denies("get", net, "ingressclasses", "nginx") {
		t.Error("no review: want not denied")
	}
}
