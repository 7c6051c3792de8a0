package issuance

import (
	"strings"
	"testing"

	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/store"
)

func TestJobsFor(t *testing.T) {
	st := &store.Store{Client: fake.NewClientset()}
	iss := &certmanager.Issuer{}
	iss.APIVersion, iss.Kind, iss.Namespace, iss.Name = certmanager.GroupVersion, certmanager.KindIssuer, "app", "le"
	iss.Spec.ACME = &certmanager.ACMEIssuer{Server: "https://ca.example/dir", PrivateKeySecretRef: certmanager.SecretKeySelector{Name: "le"},
		Solvers: []certmanager.ACMEChallengeSolver{{HTTP01: &certmanager.ACMEChallengeSolverHTTP01{Ingress: &certmanager.ACMEChallengeSolverHTTP01Ingress{}}}}}
	if err := st.SaveIssuer(t.Context(), iss); err != nil {
		t.Fatal(err)
	}
	cert := func(name, issuer string) *certmanager.Certificate {
		c := &certmanager.Certificate{}
		c.Namespace, c.Name = "app", name
		c.Spec = certmanager.CertificateSpec{SecretName: name, DNSNames: []string{name + ".example.com"},
			IssuerRef: certmanager.IssuerRef{Name: issuer, Kind: certmanager.KindIssuer, Group: certmanager.Group}}
		return c
	}

	jobs, err := JobsFor(t.Context(), st, []*certmanager.Certificate{cert("web", "le"), cert("api", "le")}, true)
	if err != nil || len(jobs) != 2 || jobs[0].Issuer == nil || jobs[0].Issuer.Name != "le" || jobs[1].Prepare == nil {
		t.Fatalf("jobs %+v, %v", jobs, err)
	}

	_, err = JobsFor(t.Context(), st, []*certmanager.Certificate{cert("web", "le"), cert("old", "gone"), cert("other", "gone")}, true)
	if err == nil || !strings.HasPrefix(err.Error(), "nothing was issued:\n") || !strings.Contains(err.Error(), `certificate "old": `) || !strings.Contains(err.Error(), `certificate "other": `) || strings.Contains(err.Error(), `"web"`) {
		t.Errorf("missing issuer: %v", err)
	}
}
