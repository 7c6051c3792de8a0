package e2e

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// assertRenewalInfoCached: a renew before the CA's Retry-After uses the
// window stored in the Certificate and does not see the CA's new one.
func assertRenewalInfoCached(t *testing.T, ns, name string) {
	t.Helper()
	out, _, code := acmeCmd(t, env.Kubeconfig, "renew", name, "-n", ns, "--connect-to", env.IngressHTTP, "-q")
	if code != 0 || !strings.Contains(out, "not due (ARI window") || !strings.Contains(out, "asking the CA again after") {
		t.Fatalf("renew before Retry-After: exit %d, want 0 and the stored window\n%s", code, out)
	}
}

// expireRenewalInfo moves the Certificate's stored ARI next-check time into
// the past, as if the CA's Retry-After had passed.
func expireRenewalInfo(t *testing.T, ns, name string) {
	t.Helper()
	cms := kube.CoreV1().ConfigMaps(ns)
	cm, err := cms.Get(t.Context(), "acme-certificate-"+name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(cm.Data["certificate.yaml"]), &doc); err != nil {
		t.Fatal(err)
	}
	st, _ := doc["status"].(map[string]any)
	ri, _ := st["renewalInfo"].(map[string]any)
	if ri == nil {
		t.Fatalf("certificate %s/%s has no stored renewal window:\n%s", ns, name, cm.Data["certificate.yaml"])
	}
	ri["nextCheck"] = time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	b, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["certificate.yaml"] = string(b)
	if _, err := cms.Update(t.Context(), cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestRenewAfterIsInsideTheWindow: status's RENEW AFTER is the point the
// renewal will happen at, inside the CA's window and not its start, and
// the same on every run.
func TestRenewAfterIsInsideTheWindow(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createIssuer(t, env.Kubeconfig, ns, "pebble", env.IngressClass)
	mustACME(t, env.Kubeconfig, issueArgs(ns, "web", "pebble", "--domain", "web."+ns+".example.test", "--profile", "default", "-q")...)
	sec, _ := kube.CoreV1().Secrets(ns).Get(t.Context(), "web", metav1.GetOptions{})
	now := time.Now().UTC().Truncate(time.Second)
	start, end := now.Add(24*time.Hour), now.Add(72*time.Hour)
	setRenewalInfo(t, sec.Data["tls.crt"], start, end)
	expireRenewalInfo(t, ns, "web")

	renewAfter := func() time.Time {
		t.Helper()
		cm, err := kube.CoreV1().ConfigMaps(ns).Get(t.Context(), "acme-certificate-web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		at, err := time.Parse(time.RFC3339, cm.Annotations["acme.kubectl.io/renew-after"])
		if err != nil {
			t.Fatal(err)
		}
		return at
	}
	out, _, code := acmeCmd(t, env.Kubeconfig, "renew", "web", "-n", ns, "-q")
	if code != 0 || !strings.Contains(out, "ARI window "+start.Format(time.RFC3339)) {
		t.Fatalf("renew: exit %d, want 0 and the new window\n%s", code, out)
	}
	first := renewAfter()
	if !first.After(start) || !first.Before(end) {
		t.Fatalf("renew-after %v is not inside (%v, %v)", first, start, end)
	}
	// Asked again (Retry-After passed): the same point.
	expireRenewalInfo(t, ns, "web")
	mustACME(t, env.Kubeconfig, "renew", "web", "-n", ns, "-q")
	if again := renewAfter(); !again.Equal(first) {
		t.Errorf("renew-after moved from %v to %v with the same window", first, again)
	}
	if out := mustACME(t, env.Kubeconfig, "status", "-n", ns); !strings.Contains(out, first.Format(time.RFC3339)[:16]) {
		t.Errorf("status does not show RENEW AFTER %v:\n%s", first, out)
	}
}
