package issuance

import (
	"errors"
	"testing"

	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubectl-acme/kubectl-acme/acme"
	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/store"
	"github.com/kubectl-acme/kubectl-acme/solver"
)

func TestNewSolver(t *testing.T) {
	o := &Options{Store: &store.Store{Client: fake.NewClientset()}, SolverImage: "img"}
	iss := &certmanager.Issuer{Spec: certmanager.IssuerSpec{ACME: &certmanager.ACMEIssuer{Solvers: []certmanager.ACMEChallengeSolver{
		{HTTP01: &certmanager.ACMEChallengeSolverHTTP01{Ingress: &certmanager.ACMEChallengeSolverHTTP01Ingress{IngressClassName: ptr.To("nginx")}}},
		{
			Selector: &certmanager.CertificateDNSNameSelector{DNSZones: []string{"legacy.example"}},
			HTTP01:   &certmanager.ACMEChallengeSolverHTTP01{Ingress: &certmanager.ACMEChallengeSolverHTTP01Ingress{Class: ptr.To("traefik"), ServiceType: "NodePort"}},
		},
		{
			Selector: &certmanager.CertificateDNSNameSelector{DNSNames: []string{"gce.example.com"}},
			HTTP01:   &certmanager.ACMEChallengeSolverHTTP01{Ingress: &certmanager.ACMEChallengeSolverHTTP01Ingress{Name: "web"}},
		},
	}}}}
	iss.Name = "le"
	cert := &certmanager.Certificate{Spec: certmanager.CertificateSpec{DNSNames: []string{"a.example.com"}}}
	cert.Name, cert.Namespace = "web", "ns"

	sv, err := newSolver(o, iss, cert)
	if err != nil {
		t.Fatal(err)
	}
	one, ok := sv.(*solver.Ingress)
	if !ok || one.Config.IngressClassName != "nginx" || one.Config.Image != "img" || one.Config.Namespace != "ns" {
		t.Fatalf("one solver: %#v", sv)
	}

	cert.Spec.DNSNames = []string{"a.example.com", "www.legacy.example", "gce.example.com", "b.example.com"}
	sv, err = newSolver(o, iss, cert)
	if err != nil {
		t.Fatal(err)
	}
	m, ok := sv.(*multiSolver)
	if !ok || len(m.all) != 3 {
		t.Fatalf("want three solvers, got %#v", sv)
	}
	if m.byName["a.example.com"] != m.byName["b.example.com"] || m.byName["a.example.com"] != m.all[0] {
		t.Error("names of one solver share its objects")
	}
	if c := configOf(t, m.byName["www.legacy.example"]); c.LegacyClass != "traefik" || c.ServiceType != "NodePort" {
		t.Errorf("zone solver config %+v", c)
	}
	if c := configOf(t, m.byName["gce.example.com"]); c.ExistingIngress != "web" {
		t.Errorf("name solver config %+v", c)
	}
	if configOf(t, m.all[0]).Name == configOf(t, m.all[1]).Name {
		t.Error("each solver needs its own object names")
	}

	iss.Spec.ACME.Solvers = iss.Spec.ACME.Solvers[1:]
	_, err = newSolver(o, iss, cert)
	var nse *certmanager.NoSolverError
	if !errors.As(err, &nse) || len(nse.Names) != 2 {
		t.Fatalf("names without solver: %v", err)
	}
}

func configOf(t *testing.T, s acme.Solver) solver.Config {
	t.Helper()
	switch s := s.(type) {
	case *solver.Ingress:
		return s.Config
	case *solver.HTTPRoute:
		return s.Config
	}
	t.Fatalf("unexpected solver %T", s)
	return solver.Config{}
}

func TestNewSolverHTTPRoute(t *testing.T) {
	o := &Options{Store: &store.Store{Client: fake.NewClientset()}}
	parents := []gatewayv1.ParentReference{{Name: "gw", Namespace: ptr.To(gatewayv1.Namespace("infra"))}}
	iss := &certmanager.Issuer{Spec: certmanager.IssuerSpec{ACME: &certmanager.ACMEIssuer{Solvers: []certmanager.ACMEChallengeSolver{
		{HTTP01: &certmanager.ACMEChallengeSolverHTTP01{GatewayHTTPRoute: &certmanager.ACMEChallengeSolverHTTP01GatewayHTTPRoute{
			ParentRefs: parents, Labels: map[string]string{"gw": "public"}, ServiceType: "NodePort",
		}}},
		{
			Selector: &certmanager.CertificateDNSNameSelector{DNSZones: []string{"legacy.example"}},
			HTTP01:   &certmanager.ACMEChallengeSolverHTTP01{Ingress: &certmanager.ACMEChallengeSolverHTTP01Ingress{Class: ptr.To("traefik")}},
		},
	}}}}
	iss.Name = "le"
	cert := &certmanager.Certificate{Spec: certmanager.CertificateSpec{DNSNames: []string{"a.example.com", "www.legacy.example"}}}
	cert.Name, cert.Namespace = "web", "ns"
	sv, err := newSolver(o, iss, cert)
	if err != nil {
		t.Fatal(err)
	}
	m := sv.(*multiSolver)
	rt, ok := m.byName["a.example.com"].(*solver.HTTPRoute)
	if !ok {
		t.Fatalf("a.example.com: want the HTTPRoute solver, got %T", m.byName["a.example.com"])
	}
	if c := rt.Config; len(c.ParentRefs) != 1 || c.RouteLabels["gw"] != "public" || c.ServiceType != "NodePort" || c.Namespace != "ns" {
		t.Errorf("HTTPRoute solver config %+v", c)
	}
	if _, ok := m.byName["www.legacy.example"].(*solver.Ingress); !ok {
		t.Errorf("www.legacy.example: want the Ingress solver")
	}

	// An IP address would go to the HTTPRoute solver: refused before any order.
	cert.Spec.IPAddresses = []string{"192.0.2.1"}
	_, err = newSolver(o, iss, cert)
	var ipErr *certmanager.IPViaHTTPRouteError
	if !errors.As(err, &ipErr) || len(ipErr.IPs) != 1 {
		t.Fatalf("IP address through an HTTPRoute: got %v", err)
	}
}
