package manifest

import (
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
)

func TestFromIngress(t *testing.T) {
	ing := func(ann map[string]string, tls ...networkingv1.IngressTLS) *networkingv1.Ingress {
		return &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", Annotations: ann}, Spec: networkingv1.IngressSpec{TLS: tls}}
	}
	tls := func(secret string, hosts ...string) networkingv1.IngressTLS {
		return networkingv1.IngressTLS{SecretName: secret, Hosts: hosts}
	}
	flag := &certmanager.IssuerRef{Name: "flag", Kind: certmanager.KindClusterIssuer, Group: certmanager.Group}
	tests := []struct {
		name   string
		ing    *networkingv1.Ingress
		issuer *certmanager.IssuerRef
		check  func(t *testing.T, certs []*certmanager.Certificate)
		err    []string
	}{
		{name: "one certificate per tls entry, issuer annotation",
			ing: ing(map[string]string{AnnotationIssuer: "le"}, tls("web-tls", "a.example.com", "www.a.example.com"), tls("api-tls", "api.example.com")),
			check: func(t *testing.T, certs []*certmanager.Certificate) {
				if len(certs) != 2 || certs[0].Name != "web-tls" || certs[0].Spec.SecretName != "web-tls" || certs[0].Namespace != "ns" ||
					len(certs[0].Spec.DNSNames) != 2 || certs[1].Spec.DNSNames[0] != "api.example.com" {
					t.Errorf("certs %+v", certs)
				}
				if r := certs[1].Spec.IssuerRef; r.Name != "le" || r.Kind != certmanager.KindIssuer {
					t.Errorf("issuer %+v", r)
				}
			}},
		{name: "cluster issuer annotation",
			ing: ing(map[string]string{AnnotationClusterIssuer: "le"}, tls("web-tls", "a.example.com")),
			check: func(t *testing.T, certs []*certmanager.Certificate) {
				if r := certs[0].Spec.IssuerRef; r.Name != "le" || r.Kind != certmanager.KindClusterIssuer {
					t.Errorf("issuer %+v", r)
				}
			}},
		{name: "flag wins over annotation",
			ing: ing(map[string]string{AnnotationIssuer: "le"}, tls("web-tls", "a.example.com")), issuer: flag,
			check: func(t *testing.T, certs []*certmanager.Certificate) {
				if certs[0].Spec.IssuerRef != *flag {
					t.Errorf("issuer %+v", certs[0].Spec.IssuerRef)
				}
			}},
		{name: "settings annotations",
			ing: ing(map[string]string{
				AnnotationIssuer: "le", AnnotationCommonName: "a.example.com", AnnotationAltNames: "b.example.com, c.example.com",
				AnnotationDuration: "2160h", AnnotationRenewBeforePct: "25", AnnotationKeyAlgorithm: "ECDSA", AnnotationKeySize: "384",
				AnnotationSecretTemplate: `{"labels": {"app": "web"}}`, AnnotationEditInPlace: "true",
				"nginx.ingress.kubernetes.io/rewrite-target": "/",
			}, tls("web-tls", "a.example.com")),
			check: func(t *testing.T, certs []*certmanager.Certificate) {
				s := certs[0].Spec
				if s.CommonName != "a.example.com" || len(s.DNSNames) != 3 || s.Duration.Hours() != 2160 || *s.RenewBeforePercentage != 25 ||
					s.PrivateKey.Algorithm != "ECDSA" || s.PrivateKey.Size != 384 || s.SecretTemplate.Labels["app"] != "web" {
					t.Errorf("spec %+v", s)
				}
				if certs[0].Annotations[certmanager.AnnotationOverrideIngressName] != "web" {
					t.Errorf("edit-in-place: annotations %v", certs[0].Annotations)
				}
			}},
		{name: "no issuer", ing: ing(nil, tls("web-tls", "a.example.com")), err: []string{"no issuer: give --issuer"}},
		{name: "both issuers", ing: ing(map[string]string{AnnotationIssuer: "a", AnnotationClusterIssuer: "b"}, tls("web-tls", "a.example.com")),
			err: []string{"both cert-manager.io/issuer and cert-manager.io/cluster-issuer"}},
		{name: "external issuer", ing: ing(map[string]string{AnnotationIssuer: "a", AnnotationIssuerGroup: "awspca.cert-manager.io"}, tls("web-tls", "a.example.com")),
			err: []string{"external issuers are not supported"}},
		{name: "unsupported annotations", ing: ing(map[string]string{AnnotationIssuer: "a", "cert-manager.io/usages": "client auth", "cert-manager.io/subject-organizations": "ACME"}, tls("web-tls", "a.example.com")),
			err: []string{"metadata.annotations[cert-manager.io/subject-organizations]: not possible with an ACME CA", "metadata.annotations[cert-manager.io/usages]: \"client auth\": not possible with an ACME CA"}},
		{name: "two overrides", ing: ing(map[string]string{AnnotationIssuer: "a", AnnotationEditInPlace: "true", AnnotationHTTP01Class: "nginx"}, tls("web-tls", "a.example.com")),
			err: []string{"only one of the annotations"}},
		{name: "entries", ing: ing(map[string]string{AnnotationIssuer: "a"}, tls("", "a.example.com"), tls("Web_TLS", "a.example.com"), tls("ok", "*.example.com"), tls("dup", "b.example.com"), tls("dup", "c.example.com"), tls("nohosts")),
			err: []string{"spec.tls[0].secretName: required", "spec.tls[1].secretName: invalid certificate name", "spec.tls[2].hosts[0]: domain \"*.example.com\": wildcard", "spec.tls[4].secretName: \"dup\" is also used by spec.tls[3]", "spec.tls[5].hosts: no hosts"}},
		{name: "server usages, legacy annotations",
			ing: ing(map[string]string{"certmanager.k8s.io/cluster-issuer": "le", AnnotationUsages: "digital signature, key encipherment, server auth", "certmanager.k8s.io/acme-http01-edit-in-place": "true"}, tls("web-tls", "a.example.com")),
			check: func(t *testing.T, certs []*certmanager.Certificate) {
				c := certs[0]
				if r := c.Spec.IssuerRef; r.Name != "le" || r.Kind != certmanager.KindClusterIssuer {
					t.Errorf("issuer %+v", r)
				}
				if len(c.Spec.Usages) != 3 || c.Spec.Usages[2] != "server auth" {
					t.Errorf("usages %q", c.Spec.Usages)
				}
				if c.Annotations[certmanager.AnnotationOverrideIngressName] != "web" {
					t.Errorf("annotations %v", c.Annotations)
				}
			}},
		{name: "tls-acme without a default issuer", ing: ing(map[string]string{AnnotationTLSACME: "true"}, tls("web-tls", "a.example.com")),
			err: []string{"metadata.annotations[kubernetes.io/tls-acme]: asks for a certificate from cert-manager's default issuer"}},
		{name: "no tls", ing: ing(map[string]string{AnnotationIssuer: "a"}), err: []string{"spec.tls: no TLS entries"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certs, err := FromIngress(tt.ing, tt.issuer)
			if tt.err != nil {
				if err == nil {
					t.Fatalf("no error, certs %+v", certs)
				}
				for _, w := range tt.err {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error lacks %q:\n%v", w, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, certs)
		})
	}
}
