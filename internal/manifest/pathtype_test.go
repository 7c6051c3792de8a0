package manifest

import (
	"strings"
	"testing"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
)

const pathTypeIssuer = `apiVersion: cert-manager.io/v1
kind: Issuer
metadata:
  name: pinned
  namespace: team
  annotations:
    acme.kubectl.io/http01-ingress-path-type: %s
    other.example/kept-out: "x"
spec:
  acme:
    server: https://acme.example/directory
    privateKeySecretRef: {name: pinned}
    solvers:
    - http01: {ingress: {ingressClassName: nginx}}
`

// TestIssuerPathTypeAnnotation: the override is read from an Issuer
// manifest (other annotations are not the Issuer's to keep), a bad value
// is refused at its path, and Export keeps it with a note.
func TestIssuerPathTypeAnnotation(t *testing.T) {
	objs := decodeOK(t, strings.Replace(pathTypeIssuer, "%s", "ImplementationSpecific", 1))
	iss := objs[0].Issuer
	if got := iss.IngressPathType(); got != "ImplementationSpecific" {
		t.Fatalf("path type %q", got)
	}
	if len(iss.Annotations) != 1 {
		t.Errorf("annotations %v, want only the path type", iss.Annotations)
	}
	out, notes := Export([]*certmanager.Issuer{iss}, nil, "kubectl-acme")
	if got := out[0].Metadata.Annotations[certmanager.AnnotationIngressPathType]; got != "ImplementationSpecific" {
		t.Errorf("exported annotation %q", got)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "issuer/pinned") || !strings.Contains(notes[0], "ACMEHTTP01IngressPathTypeExact=false") {
		t.Errorf("notes %q", notes)
	}

	r := Decode("in.yaml", []byte(strings.Replace(pathTypeIssuer, "%s", "exact", 1)))
	if len(r.Errors) != 1 || !strings.Contains(r.Errors[0].Error(), "metadata.annotations[acme.kubectl.io/http01-ingress-path-type]") ||
		!strings.Contains(r.Errors[0].Error(), "Exact, Prefix, ImplementationSpecific") {
		t.Errorf("errors %v", r.Errors)
	}
}
