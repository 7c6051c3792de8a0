package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestRevoke: revocation reaches the CA and shows in status.
func TestRevoke(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createIssuer(t, env.Kubeconfig, ns, "pebble", env.IngressClass)
	mustACME(t, env.Kubeconfig, issueArgs(ns, "web", "pebble", "--domain", "revoke."+ns+".example.test", "-q")...)
	sec, _ := kube.CoreV1().Secrets(ns).Get(t.Context(), "web", metav1.GetOptions{})
	leaf := leafOf(t, sec.Data["tls.crt"])
	mustACME(t, env.Kubeconfig, "revoke", "web", "-n", ns, "--reason", "keyCompromise")
	res, err := managementClient(t).Get(env.PebbleManagement + "/cert-status-by-serial/" + leaf.SerialNumber.Text(16))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var st struct{ Status string }
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil || st.Status != "Revoked" {
		t.Errorf("Pebble says %q (%v), want Revoked", st.Status, err)
	}
	if out := mustACME(t, env.Kubeconfig, "status", "-n", ns); !strings.Contains(out, "Revoked") {
		t.Errorf("status does not show the revocation:\n%s", out)
	}
	if _, errOut, code := acmeCmd(t, env.Kubeconfig, "revoke", "web", "-n", ns, "--reason", "because"); code == 0 || !strings.Contains(errOut, "keyCompromise") {
		t.Errorf("bad reason: exit %d, %s", code, errOut)
	}
}
