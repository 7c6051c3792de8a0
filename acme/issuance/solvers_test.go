package issuance

import (
	"errors"
	"testing"

	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/kubectl-acme/kubectl-acme/acme/api"
	"github.com/kubectl-acme/kubectl-acme/acme/store"
	"github.com/kubectl-acme/kubectl-acme/solver"
)

func TestNewSolver(t *testing.T) {
	o := &Options{Store: &store.Store{Client: fake.NewClientset()}, SolverImage: "img"}
	iss := &api.Issuer{Spec: api.IssuerSpec{ACME: &api.ACMEIssuer{Solvers: []api.ACMEChallengeSolver{
		{HTTP01: &api.ACMEChallengeSolverHTTP01{Ingress: &api.ACMEChallengeSolverHTTP01Ingress{IngressClassName: ptr.To("nginx")}}},
		{
			Selector: &api.CertificateDNSNameSelector{DNSZones: []string{"legacy.example"}},
			HTTP01:   &api.ACMEChallengeSolverHTTP01{Ingress: &api.ACMEChallengeSolverHTTP01Ingress{Class: ptr.To("traefik"), ServiceType: "NodePort"}},
		},
		{
			Selector: &api.CertificateDNSNameSelector{DNSNames: []string{"gce.example.com"}},
			HTTP01:   &api.ACMEChallengeSolverHTTP01{Ingress: &api.ACMEChallengeSolverHTTP01Ingress{Name: "web"}},
		},
	}}}}
	iss.Name = "le"
	cert := &api.Certificate{Spec: api.CertificateSpec{DNSNames: []string{"a.example.com"}}}
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
	if c := m.byName["www.legacy.example"].Config; c.LegacyClass != "traefik" || c.ServiceType != "NodePort" {
		t.Errorf("zone solver config %+v", c)
	}
	if c := m.byName["gce.example.com"].Config; c.ExistingIngress != "web" {
		t.Errorf("name solver config %+v", c)
	}
	if m.all[0].Config.Name == m.all[1].Config.Name {
		t.Error("each solver needs its own object names")
	}

	iss.Spec.ACME.Solvers = iss.Spec.ACME.Solvers[1:]
	_, err = newSolver(o, iss, cert)
	var nse *api.NoSolverError
	if !errors.As(err, &nse) || len(nse.Names) != 2 {
		t.Fatalf("names without solver: %v", err)
	}
}
