package e2e

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestDeleteCertificateAndIssuer: deleting keeps the TLS Secret and the
// account key unless asked, and never deletes a Secret someone else owns.
func TestDeleteCertificateAndIssuer(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createIssuer(t, env.Kubeconfig, ns, "pebble", env.IngressClass)
	for _, n := range []string{"keep", "drop"} {
		mustACME(t, env.Kubeconfig, issueArgs(ns, n, "pebble", "--domain", n+"."+ns+".example.test", "-q")...)
	}
	mustACME(t, env.Kubeconfig, "delete", "certificate", "keep", "-n", ns)
	if _, err := kube.CoreV1().Secrets(ns).Get(t.Context(), "keep", metav1.GetOptions{}); err != nil {
		t.Errorf("delete certificate removed the Secret: %v", err)
	}
	mustACME(t, env.Kubeconfig, "delete", "certificate", "drop", "-n", ns, "--delete-secret")
	if _, err := kube.CoreV1().Secrets(ns).Get(t.Context(), "drop", metav1.GetOptions{}); err == nil {
		t.Error("--delete-secret left the Secret")
	}
	if out := mustACME(t, env.Kubeconfig, "status", "-n", ns); strings.Contains(out, "keep") || strings.Contains(out, "drop") {
		t.Errorf("deleted certificates still listed:\n%s", out)
	}
	mustACME(t, env.Kubeconfig, "delete", "issuer", "pebble", "-n", ns)
	if _, err := kube.CoreV1().Secrets(ns).Get(t.Context(), "pebble", metav1.GetOptions{}); err != nil {
		t.Errorf("delete issuer removed the account key: %v", err)
	}
	if _, errOut, code := acmeCmd(t, env.Kubeconfig, "delete", "issuer", "pebble", "-n", ns); code == 0 || !strings.Contains(errOut, "not found") {
		t.Errorf("deleting a missing issuer: exit %d, %s", code, errOut)
	}
}
