package issuance

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/manifest"
	"github.com/kubectl-acme/kubectl-acme/internal/rbac"
	"github.com/kubectl-acme/kubectl-acme/internal/store"
)

const legacyInput = `apiVersion: certmanager.k8s.io/v1alpha1
kind: Certificate
metadata: {name: web, namespace: ns}
spec:
  secretName: web
  issuerRef: {name: le}
  dnsNames: [a.example.com]
  acme:
    config:
    - http01: {ingressClass: nginx}
      domains: [a.example.com]
---
apiVersion: certmanager.k8s.io/v1alpha1
kind: Issuer
metadata: {name: le, namespace: ns}
spec:
  acme:
    server: https://acme.example/dir
    privateKeySecretRef: {name: le}
    http01: {}
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: other, namespace: ns}
spec:
  secretName: other
  issuerRef: {name: shared, kind: ClusterIssuer}
  dnsNames: [b.example.com]
`

func decode(t *testing.T, in string) []*manifest.Object {
	t.Helper()
	r := manifest.Decode("in.yaml", []byte(in))
	if len(r.Errors) > 0 {
		t.Fatal(r.Errors)
	}
	return r.Objects
}

// NewPlan puts Issuers first, merges a legacy Certificate's solvers into
// its Issuer from the input, and leaves the others' issuers to Resolve.
func TestNewPlan(t *testing.T) {
	p, err := NewPlan(decode(t, legacyInput))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Issuers) != 1 || len(p.Certs) != 2 || p.Certs[0].Name() != "web" {
		t.Fatalf("plan %+v", p)
	}
	if s := p.Issuers[0].Issuer.Spec.ACME.Solvers; len(s) != 2 || s[0].Selector == nil || *s[0].HTTP01.Ingress.Class != "nginx" {
		t.Errorf("issuer solvers %+v", s)
	}
	if len(p.Notes) != 1 || !strings.Contains(p.Notes[0], "issuer/le: added 1 solver(s) from certificate/web") {
		t.Errorf("notes %v", p.Notes)
	}
	if len(p.External) != 1 || len(p.External["ClusterIssuer//shared"]) != 1 {
		t.Errorf("external %v", p.External)
	}
	if iss := p.Issuer(p.Certs[0].Certificate); iss == nil || iss.Name != "le" {
		t.Errorf("issuer of web: %v", iss)
	}
}

func storedIssuer(kind, ns, name string, solvers ...certmanager.ACMEChallengeSolver) *certmanager.Issuer {
	iss := &certmanager.Issuer{}
	iss.Kind, iss.Name, iss.Namespace = kind, name, ns
	iss.Spec.ACME = &certmanager.ACMEIssuer{Server: "https://ca.example/dir", PrivateKeySecretRef: certmanager.SecretKeySelector{Name: name + "-key"}, Solvers: solvers}
	return iss
}

// Resolve reads the issuers not in the input, extends a stored Issuer with
// a legacy Certificate's solvers (to be saved), and reports every
// Certificate without an issuer or a solver, sorted, before anything
// changes.
func TestResolve(t *testing.T) {
	ctx := t.Context()
	st := &store.Store{Client: fake.NewClientset()}
	http01 := certmanager.ACMEChallengeSolver{HTTP01: &certmanager.ACMEChallengeSolverHTTP01{Ingress: &certmanager.ACMEChallengeSolverHTTP01Ingress{}}}
	picky := http01
	picky.Selector = &certmanager.CertificateDNSNameSelector{DNSNames: []string{"only.example.com"}}
	for _, iss := range []*certmanager.Issuer{
		storedIssuer(certmanager.KindIssuer, "ns", "stored", http01),
		storedIssuer(certmanager.KindIssuer, "ns", "picky", picky),
	} {
		if err := st.SaveIssuer(ctx, iss); err != nil {
			t.Fatal(err)
		}
	}
	in := `apiVersion: certmanager.k8s.io/v1alpha1
kind: Certificate
metadata: {name: legacy, namespace: ns}
spec:
  secretName: legacy
  issuerRef: {name: stored}
  dnsNames: [a.example.com]
  acme:
    config:
    - http01: {ingressClass: nginx}
      domains: [a.example.com]
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: web, namespace: ns}
spec:
  secretName: web
  issuerRef: {name: stored}
  dnsNames: [b.example.com]
`
	p, err := NewPlan(decode(t, in))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Resolve(ctx, st); err != nil {
		t.Fatal(err)
	}
	if len(p.StoredIssuers) != 1 || len(p.StoredIssuers[0].Spec.ACME.Solvers) != 2 {
		t.Errorf("stored issuers to save: %+v", p.StoredIssuers)
	}
	if len(p.Notes) != 1 || !strings.Contains(p.Notes[0], "issuer/stored: added 1 solver(s) from certificate/legacy") {
		t.Errorf("notes %v", p.Notes)
	}
	if iss := p.Issuer(p.Certs[1].Certificate); iss == nil || iss.Name != "stored" {
		t.Errorf("issuer of web: %v", iss)
	}

	bad := `apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: orphan, namespace: ns}
spec:
  secretName: orphan
  issuerRef: {name: missing}
  dnsNames: [c.example.com]
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: unsolved, namespace: ns}
spec:
  secretName: unsolved
  issuerRef: {name: picky}
  dnsNames: [d.example.com]
`
	p, err = NewPlan(decode(t, bad))
	if err != nil {
		t.Fatal(err)
	}
	err = p.Resolve(ctx, st)
	var pe *PlanError
	if !errors.As(err, &pe) || len(pe.Problems) != 2 {
		t.Fatalf("Resolve = %v, want a PlanError with two problems", err)
	}
	if !strings.Contains(pe.Problems[0], "orphan") || !strings.Contains(pe.Problems[0], "not found") ||
		!strings.Contains(pe.Problems[1], "unsolved") || !strings.HasPrefix(err.Error(), "nothing was changed:\n") {
		t.Errorf("problems %q", pe.Problems)
	}
}

// A Certificate whose issuer failed to register fails without being read
// or ordered; the others are reconciled.
func TestJobsOfFailedIssuer(t *testing.T) {
	p, err := NewPlan(decode(t, legacyInput))
	if err != nil {
		t.Fatal(err)
	}
	st := &store.Store{Client: fake.NewClientset()}
	jobs := p.Jobs(st, false, map[string]error{"Issuer/ns/le": errors.New("refused")})
	if len(jobs) != 2 || jobs[0].Issuer == nil || jobs[1].Issuer != nil {
		t.Fatalf("jobs %+v", jobs)
	}
	if _, err := jobs[0].Prepare(t.Context(), jobs[0]); err == nil || !strings.Contains(err.Error(), "its issuer Issuer/le failed") {
		t.Errorf("Prepare of web = %v", err)
	}
	if skip, err := jobs[1].Prepare(t.Context(), jobs[1]); err != nil || skip != "" {
		t.Errorf("Prepare of other = %q, %v; want a new certificate to issue", skip, err)
	}
}

// grant answers rules reviews with rules for verbs on resource in every
// namespace, and access reviews by the same rules.
func grant(c *fake.Clientset, allowed func(ns, verb, resource string) bool) {
	c.PrependReactor("create", "selfsubjectrulesreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		r := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectRulesReview)
		var rules []authorizationv1.ResourceRule
		for _, res := range []string{"configmaps", "secrets"} {
			for _, v := range []string{"create", "update"} {
				if allowed(r.Spec.Namespace, v, res) {
					rules = append(rules, authorizationv1.ResourceRule{Verbs: []string{v}, APIGroups: []string{""}, Resources: []string{res}})
				}
			}
		}
		r.Status.ResourceRules = rules
		return true, r, nil
	})
	c.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		r := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview)
		ra := r.Spec.ResourceAttributes
		r.Status.Allowed = allowed(ra.Namespace, ra.Verb, ra.Resource)
		return true, r, nil
	})
}

// The server dry run reviews access once per namespace for the whole plan
// and names the permission a Certificate's Secret lacks; a Certificate
// whose solver patches a missing Ingress is refused with its name.
func TestServerDryRun(t *testing.T) {
	ctx := t.Context()
	c := fake.NewClientset()
	grant(c, func(ns, verb, resource string) bool { return !(resource == "secrets" && verb == "update") })
	st := &store.Store{Client: c}
	named := certmanager.ACMEChallengeSolver{HTTP01: &certmanager.ACMEChallengeSolverHTTP01{Ingress: &certmanager.ACMEChallengeSolverHTTP01Ingress{Name: "web-ingress"}}}
	if err := st.SaveIssuer(ctx, storedIssuer(certmanager.KindIssuer, "ns", "stored", named)); err != nil {
		t.Fatal(err)
	}
	in := `apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {name: le, namespace: ns}
spec:
  acme:
    server: https://acme.example/dir
    privateKeySecretRef: {name: le}
    solvers: [{http01: {ingress: {}}}]
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: web, namespace: ns}
spec:
  secretName: web
  issuerRef: {name: stored}
  dnsNames: [a.example.com]
`
	p, err := NewPlan(decode(t, in))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Resolve(ctx, st); err != nil {
		t.Fatal(err)
	}
	before := len(c.Actions())
	vs := ServerDryRun(ctx, Options{Store: st}, p, false)
	if len(vs) != 2 || vs[0].Object != "issuer/le" || len(vs[0].Problems) != 0 || vs[1].Object != "certificate/web" {
		t.Fatalf("verdicts %+v", vs)
	}
	var fe *rbac.ForbiddenError
	if len(vs[1].Problems) != 2 || !errors.As(vs[1].Problems[0], &fe) ||
		vs[1].Problems[0].Error() != `forbidden: you may not update secrets in namespace "ns"` ||
		!strings.Contains(vs[1].Problems[1].Error(), "ingress ns/web-ingress (http01.ingress.name of issuer/stored) does not exist") {
		t.Errorf("problems of web: %v", vs[1].Problems)
	}
	reviews := 0
	for _, a := range c.Actions()[before:] {
		if a.GetVerb() == "create" && strings.HasPrefix(a.GetResource().Resource, "selfsubject") {
			reviews++
		}
	}
	// One rules review of ns, one access review of what its rules refuse.
	if reviews != 2 {
		t.Errorf("%d access reviews, want 2", reviews)
	}
}

// PrepareIssuers registers the input's Issuers and saves the stored ones
// legacy Certificates extend, reporting each in plan order; a failed one
// is returned for Jobs.
func TestPrepareIssuers(t *testing.T) {
	ctx := t.Context()
	st := &store.Store{Client: fake.NewClientset()}
	p, err := NewPlan(decode(t, `apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {name: down, namespace: ns}
spec:
  acme:
    server: https://127.0.0.1:1/dir
    privateKeySecretRef: {name: down}
    solvers: [{http01: {ingress: {}}}]
`))
	if err != nil {
		t.Fatal(err)
	}
	p.StoredIssuers = []*certmanager.Issuer{storedIssuer(certmanager.KindIssuer, "ns", "stored")}
	var got []string
	failed := p.PrepareIssuers(ctx, Options{Store: st}, 5*time.Second, func(string) bool { return true }, func(out IssuerOutcome) {
		got = append(got, fmt.Sprintf("%s stored=%v failed=%v", KindName(out.Issuer), out.Stored, out.Err != nil))
	})
	if want := "issuer/down stored=false failed=true, issuer/stored stored=true failed=false"; strings.Join(got, ", ") != want {
		t.Errorf("reported %q, want %q", strings.Join(got, ", "), want)
	}
	if len(failed) != 1 || failed["Issuer/ns/down"] == nil {
		t.Errorf("failed %v", failed)
	}
	if _, err := st.GetIssuer(ctx, "ns", "stored", false); err != nil {
		t.Errorf("the stored issuer was not saved: %v", err)
	}
}
