package manifest

import (
	"strings"
	"testing"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
)

func TestDecodeShimsAndOldVersions(t *testing.T) {
	t.Run("v1alpha2 certificate", func(t *testing.T) {
		r := Decode("in.yaml", []byte("apiVersion: cert-manager.io/v1alpha2\nkind: Certificate\nmetadata: {name: web}\nspec:\n  secretName: web\n  issuerRef: {name: le}\n  dnsNames: [a.example.com]\n  keyAlgorithm: ecdsa\n  keySize: 384\n  keyEncoding: pkcs8\n"))
		if len(r.Errors) > 0 || len(r.Objects) != 1 {
			t.Fatalf("errors %v objects %v", r.Errors, r.Objects)
		}
		pk := r.Objects[0].Certificate.Spec.PrivateKey
		if pk == nil || pk.Algorithm != "ECDSA" || pk.Size != 384 || pk.Encoding != "PKCS8" {
			t.Errorf("private key %+v", pk)
		}
		if len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "converted from cert-manager.io/v1alpha2 to cert-manager.io/v1 as cmctl convert does") {
			t.Errorf("notes %q", r.Notes)
		}
	})
	t.Run("v1alpha3 organization is judged as subject", func(t *testing.T) {
		r := Decode("in.yaml", []byte("apiVersion: cert-manager.io/v1alpha3\nkind: Certificate\nmetadata: {name: web}\nspec:\n  secretName: web\n  issuerRef: {name: le}\n  dnsNames: [a.example.com]\n  organization: [ACME]\n"))
		if len(r.Errors) != 1 || !strings.Contains(r.Errors[0].Error(), "spec.subject: not possible with an ACME CA") {
			t.Errorf("errors %v", r.Errors)
		}
	})
	t.Run("gateway", func(t *testing.T) {
		r := Decode("gw.yaml", []byte(`apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: gw
  namespace: web
  annotations: {cert-manager.io/cluster-issuer: le}
spec:
  gatewayClassName: x
  listeners:
  - {name: http, protocol: HTTP, port: 80, hostname: a.example.com}
  - {name: a, protocol: HTTPS, port: 443, hostname: a.example.com, tls: {certificateRefs: [{name: web-tls}]}}
  - {name: b, protocol: HTTPS, port: 443, hostname: b.example.com, tls: {certificateRefs: [{name: web-tls}]}}
  - {name: p, protocol: TLS, port: 443, hostname: p.example.com, tls: {mode: Passthrough}}
`))
		if len(r.Errors) > 0 || len(r.Objects) != 1 || len(r.Shims) != 1 {
			t.Fatalf("errors %v objects %v", r.Errors, r.Objects)
		}
		c := r.Objects[0].Certificate
		if c.Name != "web-tls" || len(c.Spec.DNSNames) != 2 || c.Spec.IssuerRef.Kind != certmanager.KindClusterIssuer {
			t.Errorf("certificate %+v", c)
		}
		if c.Annotations[certmanager.AnnotationParentRefKind] != "Gateway" || c.Annotations[certmanager.AnnotationParentRefName] != "gw" {
			t.Errorf("annotations %v", c.Annotations)
		}
	})
	t.Run("legacy ingress, tls-acme with a default issuer", func(t *testing.T) {
		in := "apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata:\n  name: web\n  annotations: {kubernetes.io/tls-acme: \"true\"}\nspec:\n  tls:\n  - {hosts: [a.example.com], secretName: a.example.com}\n"
		if r := Decode("in.yaml", []byte(in)); len(r.Errors) != 1 || !strings.Contains(r.Errors[0].Error(), "--default-issuer-name") {
			t.Fatalf("without a default issuer: %v", r.Errors)
		}
		r := DecodeWith("in.yaml", []byte(in), Options{Shim: ShimOptions{DefaultIssuer: &certmanager.IssuerRef{Name: "le", Kind: certmanager.KindClusterIssuer}}})
		if len(r.Errors) > 0 || len(r.Objects) != 1 {
			t.Fatalf("errors %v", r.Errors)
		}
		if c := r.Objects[0].Certificate; c.Name != "a-example-com" || c.Spec.SecretName != "a.example.com" || c.Spec.IssuerRef.Name != "le" {
			t.Errorf("certificate %+v", c)
		}
		if r.Shims[0].Unserved == "" || !strings.Contains(strings.Join(r.Notes, "\n"), "not served by Kubernetes 1.22") {
			t.Errorf("no warning: %q", r.Notes)
		}
	})
}
