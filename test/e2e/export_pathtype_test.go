package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestPathTypeOverrideExport: --ingress-path-type on create issuer is
// stored as the Issuer's annotation, export keeps it with a note on
// cert-manager's feature gate, and applying the export back keeps it.
func TestPathTypeOverrideExport(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	mustACME(t, env.Kubeconfig, "create", "issuer", "pinned", "-n", ns,
		"--server", env.ACMEServer, "--ca-bundle", env.ACMECABundle,
		"--email", "e2e@example.com", "--ingress-class", env.IngressClass, "--agree-tos", "--ingress-path-type", "Exact")
	cm, err := kube.CoreV1().ConfigMaps(ns).Get(t.Context(), "acme-issuer-pinned", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantAll(t, "stored issuer", cm.Data["issuer.yaml"], "acme.kubectl.io/http01-ingress-path-type: Exact")

	out, errOut, code := acmeCmd(t, env.Kubeconfig, "export", "--all", "-n", ns)
	if code != 0 {
		t.Fatalf("export: %s", errOut)
	}
	wantAll(t, "export", out, "acme.kubectl.io/http01-ingress-path-type: Exact")
	wantAll(t, "export notes", out+errOut, "ACMEHTTP01IngressPathTypeExact")

	// The export, applied back to a fresh namespace, keeps the override.
	ns2 := newNamespace(t)
	file := filepath.Join(t.TempDir(), "export.yaml")
	if err := os.WriteFile(file, []byte(strings.ReplaceAll(out, "namespace: "+ns, "namespace: "+ns2)), 0o644); err != nil {
		t.Fatal(err)
	}
	mustApply(t, nil, "-n", ns2, "-f", file, "--agree-tos", "--dry-run=client")
	mustApply(t, nil, "-n", ns2, "-f", file, "--agree-tos")
	cm, err = kube.CoreV1().ConfigMaps(ns2).Get(t.Context(), "acme-issuer-pinned", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantAll(t, "re-applied issuer", cm.Data["issuer.yaml"], "acme.kubectl.io/http01-ingress-path-type: Exact")

	// A bad value is refused with the choices, before anything is done.
	_, errOut, code = acmeCmd(t, env.Kubeconfig, issueArgs(ns, "x", "pinned", "--domain", "x."+ns+".example.test", "--ingress-path-type", "exact")...)
	if code == 0 {
		t.Fatal("issue --ingress-path-type exact succeeded")
	}
	wantAll(t, "error", errOut, `--ingress-path-type "exact"`, "Exact, Prefix, ImplementationSpecific")
}
