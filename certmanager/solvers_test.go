package certmanager

import (
	"errors"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// sel builds a solver with a selector; nil fields stay empty.
func sel(names, zones []string, labels map[string]string) ACMEChallengeSolver {
	return ACMEChallengeSolver{
		Selector: &CertificateDNSNameSelector{DNSNames: names, DNSZones: zones, MatchLabels: labels},
		HTTP01:   &ACMEChallengeSolverHTTP01{Ingress: &ACMEChallengeSolverHTTP01Ingress{}},
	}
}

var catchAll = ACMEChallengeSolver{HTTP01: &ACMEChallengeSolverHTTP01{Ingress: &ACMEChallengeSolverHTTP01Ingress{}}}

// TestSelectSolver follows cert-manager's solver picker, including its
// tie-breaks (pkg/util/solverpicker): dnsNames beat dnsZones, a longer
// zone beats a shorter one, more matching labels win, and on a tie the
// earlier solver is kept.
func TestSelectSolver(t *testing.T) {
	prod := map[string]string{"env": "prod"}
	prodTeam := map[string]string{"env": "prod", "team": "web"}
	tests := []struct {
		name    string
		solvers []ACMEChallengeSolver
		labels  map[string]string
		id      string
		want    int
	}{
		{"no solvers", nil, nil, "a.example.com", -1},
		{"catch-all", []ACMEChallengeSolver{catchAll}, nil, "a.example.com", 0},
		{"first catch-all wins", []ACMEChallengeSolver{catchAll, catchAll}, nil, "a.example.com", 0},
		{"dns01-only solver skipped", []ACMEChallengeSolver{{Selector: &CertificateDNSNameSelector{}}, catchAll}, nil, "a.example.com", 1},
		{"empty selector matches like catch-all", []ACMEChallengeSolver{sel(nil, nil, nil)}, nil, "a.example.com", 0},
		{"selector beats earlier catch-all", []ACMEChallengeSolver{catchAll, sel(nil, []string{"example.com"}, nil)}, nil, "a.example.com", 1},
		{"catch-all does not beat earlier selector", []ACMEChallengeSolver{sel(nil, []string{"example.com"}, nil), catchAll}, nil, "a.example.com", 0},
		{"dnsNames miss", []ACMEChallengeSolver{sel([]string{"b.example.com"}, nil, nil)}, nil, "a.example.com", -1},
		{"dnsNames beat zone", []ACMEChallengeSolver{sel(nil, []string{"a.example.com"}, nil), sel([]string{"a.example.com"}, nil, nil)}, nil, "a.example.com", 1},
		{"dnsNames beat labels", []ACMEChallengeSolver{sel(nil, nil, prodTeam), sel([]string{"a.example.com"}, nil, nil)}, prodTeam, "a.example.com", 1},
		{"longest zone wins", []ACMEChallengeSolver{sel(nil, []string{"example.com"}, nil), sel(nil, []string{"sub.example.com"}, nil)}, nil, "a.sub.example.com", 1},
		{"longest zone wins whatever the order", []ACMEChallengeSolver{sel(nil, []string{"sub.example.com"}, nil), sel(nil, []string{"example.com"}, nil)}, nil, "a.sub.example.com", 0},
		{"zone is the name itself", []ACMEChallengeSolver{sel(nil, []string{"example.com"}, nil)}, nil, "example.com", 0},
		{"zone is a label suffix, not a string suffix", []ACMEChallengeSolver{sel(nil, []string{"ample.com"}, nil)}, nil, "example.com", -1},
		{"zone case-insensitive", []ACMEChallengeSolver{sel(nil, []string{"Example.COM."}, nil)}, nil, "a.example.com", 0},
		{"zone beats labels", []ACMEChallengeSolver{sel(nil, nil, prodTeam), sel(nil, []string{"example.com"}, nil)}, prodTeam, "a.example.com", 1},
		{"both dnsNames: longer zone wins", []ACMEChallengeSolver{
			sel([]string{"a.sub.example.com"}, []string{"example.com"}, nil),
			sel([]string{"a.sub.example.com"}, []string{"sub.example.com"}, nil),
		}, nil, "a.sub.example.com", 1},
		{"both dnsNames, same zone: more labels win", []ACMEChallengeSolver{
			sel([]string{"a.example.com"}, nil, prod),
			sel([]string{"a.example.com"}, nil, prodTeam),
		}, prodTeam, "a.example.com", 1},
		{"both dnsNames, all equal: first wins", []ACMEChallengeSolver{
			sel([]string{"a.example.com"}, nil, nil),
			sel([]string{"a.example.com", "b.example.com"}, nil, nil),
		}, nil, "a.example.com", 0},
		{"same zone: more labels win", []ACMEChallengeSolver{
			sel(nil, []string{"example.com"}, prod),
			sel(nil, []string{"example.com"}, prodTeam),
		}, prodTeam, "a.example.com", 1},
		{"same zone, same labels: first wins", []ACMEChallengeSolver{
			sel(nil, []string{"example.com"}, prod),
			sel(nil, []string{"example.com"}, prod),
		}, prod, "a.example.com", 0},
		{"labels only: more labels win", []ACMEChallengeSolver{sel(nil, nil, prod), sel(nil, nil, prodTeam)}, prodTeam, "a.example.com", 1},
		{"labels must all match", []ACMEChallengeSolver{sel(nil, nil, prodTeam)}, prod, "a.example.com", -1},
		{"label value must match", []ACMEChallengeSolver{sel(nil, nil, prod)}, map[string]string{"env": "dev"}, "a.example.com", -1},
		{"labels and zone must both match", []ACMEChallengeSolver{sel(nil, []string{"example.org"}, prod)}, prod, "a.example.com", -1},
		{"IP identifier goes to catch-all", []ACMEChallengeSolver{sel(nil, []string{"example.com"}, nil), catchAll}, nil, "192.0.2.1", 1},
		{"IP identifier by dnsNames", []ACMEChallengeSolver{catchAll, sel([]string{"192.0.2.1"}, nil, nil)}, nil, "192.0.2.1", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SelectSolver(tt.solvers, tt.labels, tt.id); got != tt.want {
				t.Errorf("SelectSolver(%s) = %d, want %d", tt.id, got, tt.want)
			}
		})
	}
}

func TestSolversFor(t *testing.T) {
	iss := &Issuer{Spec: IssuerSpec{ACME: &ACMEIssuer{Solvers: []ACMEChallengeSolver{
		sel(nil, []string{"example.com"}, nil),
		sel([]string{"www.example.org"}, nil, nil),
	}}}}
	iss.Name = "le"
	cert := &Certificate{Spec: CertificateSpec{DNSNames: []string{"a.example.com", "www.example.org"}}}
	got, err := SolversFor(iss, cert)
	if err != nil || got["a.example.com"] != 0 || got["www.example.org"] != 1 {
		t.Fatalf("SolversFor = %v, %v", got, err)
	}
	cert.Spec.DNSNames = append(cert.Spec.DNSNames, "example.net", "b.example.net")
	_, err = SolversFor(iss, cert)
	var nse *NoSolverError
	if !errors.As(err, &nse) || len(nse.Names) != 2 || nse.Names[0] != "b.example.net" {
		t.Fatalf("SolversFor with unselected names: %v", err)
	}
}

func TestRenewBeforeFor(t *testing.T) {
	nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	na := nb.Add(90 * 24 * time.Hour)
	pct := int32(25)
	tests := []struct {
		spec CertificateSpec
		want time.Duration
	}{
		{CertificateSpec{}, 0},
		{CertificateSpec{RenewBefore: &metav1.Duration{Duration: 48 * time.Hour}}, 48 * time.Hour},
		{CertificateSpec{RenewBeforePercentage: &pct}, 90 * 24 * time.Hour / 4},
	}
	for _, tt := range tests {
		if got := tt.spec.RenewBeforeFor(nb, na); got != tt.want {
			t.Errorf("RenewBeforeFor(%+v) = %s, want %s", tt.spec, got, tt.want)
		}
	}
}

func TestIngressOverrides(t *testing.T) {
	class := "nginx"
	sv := ACMEChallengeSolver{HTTP01: &ACMEChallengeSolverHTTP01{Ingress: &ACMEChallengeSolverHTTP01Ingress{IngressClassName: &class, ServiceType: "NodePort"}}}
	got, err := IngressOverrides(sv, map[string]string{AnnotationOverrideIngressName: "web"})
	in := got.HTTP01.Ingress
	if err != nil || in.Name != "web" || in.IngressClassName != nil || in.ServiceType != "NodePort" {
		t.Errorf("name override: %+v, %v", in, err)
	}
	if sv.HTTP01.Ingress.Name != "" {
		t.Error("the issuer's solver was changed")
	}
	got, _ = IngressOverrides(sv, map[string]string{AnnotationOverrideIngressClass: "traefik"})
	if in := got.HTTP01.Ingress; *in.Class != "traefik" || in.IngressClassName != nil {
		t.Errorf("class override: %+v", in)
	}
	if got, _ := IngressOverrides(sv, nil); got.HTTP01 != sv.HTTP01 {
		t.Error("no annotations must leave the solver as it is")
	}
	if _, err := IngressOverrides(sv, map[string]string{AnnotationOverrideIngressName: "a", AnnotationOverrideIngressClassName: "b"}); err == nil {
		t.Error("two overrides accepted")
	}
}
