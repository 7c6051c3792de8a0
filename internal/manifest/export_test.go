package manifest

import (
	"bytes"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
)

// TestExportRoundTrip: what Export prints reads back, strictly, as the
// same Issuers and Certificates, with no status and no kubectl-acme
// bookkeeping.
func TestExportRoundTrip(t *testing.T) {
	objs := decodeOK(t, v1Docs+"---\n"+legacyDocs)
	var issuers []*certmanager.Issuer
	var certs []*certmanager.Certificate
	for _, o := range objs {
		if o.Issuer != nil {
			o.Issuer.Status.ACME = &certmanager.ACMEIssuerStatus{URI: "https://acme.example/acct/1", AccountStatus: "valid"}
			issuers = append(issuers, o.Issuer)
			continue
		}
		if o.Certificate.Namespace == "" {
			o.Certificate.Namespace = "team"
		}
		o.Certificate.Status.Serial = "AB"
		o.Certificate.Annotations = map[string]string{certmanager.AnnotationProfile: "shortlived", "acme.kubectl.io/other": "x", "team": "web"}
		certs = append(certs, o.Certificate)
	}
	out, notes := Export(issuers, certs, "kubectl-acme")
	if len(out) != 4 || out[0].Kind != "ClusterIssuer" || out[1].Kind != "Issuer" || out[2].Kind != "Certificate" {
		t.Fatalf("objects %+v", out)
	}
	if len(notes) != 3 || !strings.Contains(notes[0], "clusterissuer/letsencrypt-prod") || !strings.Contains(notes[0], "--cluster-resource-namespace=kubectl-acme") ||
		!strings.Contains(notes[1], "no per-certificate ACME profile") {
		t.Errorf("notes %q", notes)
	}
	var b bytes.Buffer
	for _, o := range out {
		y, err := yaml.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("---\n")
		b.Write(y)
	}
	text := b.String()
	for _, bad := range []string{"status", "acme.kubectl.io", "creationTimestamp"} {
		if strings.Contains(text, bad) {
			t.Errorf("export contains %q:\n%s", bad, text)
		}
	}
	if !strings.Contains(text, "enableDurationFeature: true") {
		t.Errorf("the issuer of a certificate with a duration must send it:\n%s", text)
	}
	back := decodeOK(t, text)
	if len(back) != 4 {
		t.Fatalf("%d objects read back", len(back))
	}
	for _, o := range back {
		if o.Certificate == nil {
			continue
		}
		var orig *certmanager.Certificate
		for _, c := range certs {
			if c.Name == o.Certificate.Name && c.Namespace == o.Certificate.Namespace {
				orig = c
			}
		}
		if !specEqualForTest(orig.Spec, o.Certificate.Spec) || o.Certificate.Annotations["team"] != "web" {
			t.Errorf("certificate %s changed on the round trip:\n%+v\n%+v", o.Name(), orig.Spec, o.Certificate.Spec)
		}
	}
}

func specEqualForTest(a, b certmanager.CertificateSpec) bool {
	ya, _ := yaml.Marshal(withDefaults(a))
	yb, _ := yaml.Marshal(withDefaults(b))
	return bytes.Equal(ya, yb)
}

func withDefaults(s certmanager.CertificateSpec) certmanager.CertificateSpec {
	if s.IssuerRef.Kind == "" {
		s.IssuerRef.Kind = certmanager.KindIssuer
	}
	if s.IssuerRef.Group == "" {
		s.IssuerRef.Group = certmanager.Group
	}
	if s.Duration != nil {
		s.Duration = &metav1.Duration{Duration: s.Duration.Duration}
	}
	return s
}

// TestExportGatewayHTTPRoute: a gatewayHTTPRoute solver is written back
// out as cert-manager reads it.
func TestExportGatewayHTTPRoute(t *testing.T) {
	in := `apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {name: le, namespace: team}
spec:
  acme:
    server: https://acme.example/dir
    privateKeySecretRef: {name: le}
    solvers:
    - selector: {dnsZones: [example.com]}
      http01:
        gatewayHTTPRoute:
          labels: {gateway: public}
          parentRefs: [{name: web, namespace: infra, sectionName: http}]
`
	objs := decodeOK(t, in)
	out, _ := Export([]*certmanager.Issuer{objs[0].Issuer}, nil, "kubectl-acme")
	y, err := yaml.Marshal(out[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"gatewayHTTPRoute:", "gateway: public", "name: web", "namespace: infra", "sectionName: http"} {
		if !strings.Contains(string(y), want) {
			t.Errorf("export lacks %q:\n%s", want, y)
		}
	}
	back := decodeOK(t, string(y))
	rt := back[0].Issuer.Spec.ACME.Solvers[0].HTTP01.GatewayHTTPRoute
	if rt == nil || len(rt.ParentRefs) != 1 || *rt.ParentRefs[0].SectionName != "http" || rt.Labels["gateway"] != "public" {
		t.Errorf("read back %+v", rt)
	}
}
