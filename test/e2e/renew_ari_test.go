package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestRenewFollowsARI: renew --all renews exactly the certificates whose
// ARI window has started, sends "replaces", and leaves the others.
func TestRenewFollowsARI(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createIssuer(t, env.Kubeconfig, ns, "pebble", env.IngressClass)
	for _, n := range []string{"due", "fresh"} {
		mustACME(t, env.Kubeconfig, issueArgs(ns, n, "pebble", "--domain", n+"."+ns+".example.test", "--profile", "default", "-q")...)
	}
	out, _, code := acmeCmd(t, env.Kubeconfig, "renew", "--all", "-n", ns, "--connect-to", env.IngressHTTP, "-q")
	if code != 0 || !strings.Contains(out, "not due (ARI window") {
		t.Fatalf("fresh certificates: exit %d, want 0 (nothing due)\n%s", code, out)
	}

	// Move "due"'s window into the past.
	dueSecret, _ := kube.CoreV1().Secrets(ns).Get(t.Context(), "due", metav1.GetOptions{})
	oldLeaf := leafOf(t, dueSecret.Data["tls.crt"])
	now := time.Now().UTC()
	// The whole window in the past: the point picked inside it has passed.
	setRenewalInfo(t, dueSecret.Data["tls.crt"], now.Add(-2*time.Hour), now.Add(-time.Minute))
	freshBefore, _ := kube.CoreV1().Secrets(ns).Get(t.Context(), "fresh", metav1.GetOptions{})
	// The window stored at issue holds until Pebble's Retry-After (6h): the
	// move is not seen yet (renew_timing_test.go); pass that time.
	assertRenewalInfoCached(t, ns, "due")
	expireRenewalInfo(t, ns, "due")

	out, _, code = acmeCmd(t, env.Kubeconfig, "renew", "--all", "-n", ns, "--connect-to", env.IngressHTTP, "-q")
	if code != 10 {
		t.Fatalf("renew exit %d, want 10 (renewed)\n%s", code, out)
	}
	if !strings.Contains(out, "certificate/"+ns+"/due renewed") || !strings.Contains(out, "certificate/"+ns+"/fresh not due") {
		t.Errorf("renew output:\n%s", out)
	}
	dueAfter, _ := kube.CoreV1().Secrets(ns).Get(t.Context(), "due", metav1.GetOptions{})
	if newLeaf := leafOf(t, dueAfter.Data["tls.crt"]); newLeaf.SerialNumber.Cmp(oldLeaf.SerialNumber) == 0 {
		t.Error("due certificate was not replaced")
	}
	freshAfter, _ := kube.CoreV1().Secrets(ns).Get(t.Context(), "fresh", metav1.GetOptions{})
	if !bytes.Equal(freshBefore.Data["tls.crt"], freshAfter.Data["tls.crt"]) {
		t.Error("a certificate outside its window was renewed")
	}

	// The renewal order named the certificate it replaces: Pebble logs it.
	out = mustACME(t, env.Kubeconfig, "status", "due", "-n", ns, "-o", "json")
	var cert struct {
		Status struct {
			LastOrder struct{ URL string } `json:"lastOrder"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(out), &cert); err != nil {
		t.Fatal(err)
	}
	orderID := path.Base(cert.Status.LastOrder.URL)
	pebbleLog, _ := os.ReadFile(filepath.Join(env.Dir, "logs", "pebble.log"))
	if !bytes.Contains(pebbleLog, []byte("ARI: order \""+orderID+"\" is a replacement")) {
		t.Errorf("Pebble did not see order %s as a replacement", orderID)
	}
	assertNoSolverObjects(t, ns)
}
