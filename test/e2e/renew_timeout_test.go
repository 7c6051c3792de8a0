package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestRenewTimeoutPerCertificate: `renew --all --timeout 30s` gives each
// certificate its own 30 s. Three renewals, one at a time, each held 12 s
// at finalize by the proxy in front of Pebble, take over 36 s together,
// more than one --timeout, and all succeed; with one deadline over the
// whole loop the third would time out.
func TestRenewTimeoutPerCertificate(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	p := startCAProxy(t)
	createIssuerVia(t, p, ns, "pebble")
	names := []string{"a", "b", "c"}
	serials := map[string]string{}
	for _, n := range names {
		mustACME(t, env.Kubeconfig, issueArgs(ns, n, "pebble", "--domain", n+"."+ns+".example.test", "-q")...)
		sec, err := kube.CoreV1().Secrets(ns).Get(t.Context(), n, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		serials[n] = string(sec.Data["tls.crt"])
	}

	const hold = 12 * time.Second
	finalize := postTo(finalizePath)
	// A gate that matches nothing, but first holds each finalize request.
	p.holdBefore(newGate(func(r *http.Request) bool {
		if finalize(r) {
			time.Sleep(hold)
		}
		return false
	}))
	start := time.Now()
	out, errOut, code := acmeCmd(t, env.Kubeconfig, "renew", "--all", "-n", ns, "--force", "--timeout", "30s", "--concurrency", "1", "-q",
		"--connect-to", env.IngressHTTP)
	took := time.Since(start)
	if code != 10 {
		t.Fatalf("renew: exit %d, want 10 (renewed, none failed):\n%s%s", code, out, errOut)
	}
	if n := strings.Count(out, " renewed: serial "); n != len(names) {
		t.Errorf("%d renewals reported, want %d:\n%s", n, len(names), out)
	}
	if took < time.Duration(len(names))*hold || took < 30*time.Second {
		t.Errorf("renew took %s; the test needs more than one --timeout (30s) over all", took)
	}
	t.Logf("three renewals, each held %s, took %s under --timeout 30s", hold, took)
	for _, n := range names {
		sec, err := kube.CoreV1().Secrets(ns).Get(t.Context(), n, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if string(sec.Data["tls.crt"]) == serials[n] {
			t.Errorf("secret %s still holds the old certificate", n)
		}
	}
	assertNoSolverObjects(t, ns)
}
