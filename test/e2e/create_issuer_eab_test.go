package e2e

import (
	"strings"
	"testing"

	testenv "github.com/kubectl-acme/kubectl-acme/test/env"
)

// TestExternalAccountBinding runs a second environment whose Pebble
// requires EAB.
func TestExternalAccountBinding(t *testing.T) {
	t.Parallel()
	const kid, hmac = "kid-1", "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"
	sensitive("the EAB HMAC of TestExternalAccountBinding", hmac)
	eabEnv, _ := startOwnEnv(t, testenv.Options{EABKeys: map[string]string{kid: hmac}})
	kubectlIn := func(args ...string) {
		t.Helper()
		if _, _, code := acmeCmdEnv(t, eabEnv, args...); code != 0 {
			t.Fatalf("kubectl acme %v failed", args)
		}
	}
	base := []string{"create", "issuer", "eab", "-n", "default", "--server", eabEnv.ACMEServer, "--ca-bundle", eabEnv.ACMECABundle,
		"--email", "eab@example.com", "--ingress-class", "nginx", "--agree-tos"}
	_, errOut, code := acmeCmdEnv(t, eabEnv, base...)
	if code == 0 || !strings.Contains(errOut, "External Account Binding") || !strings.Contains(errOut, "--eab-kid") {
		t.Errorf("without EAB: exit %d, %s", code, errOut)
	}
	kubectlIn(append(base, "--eab-kid", kid, "--eab-hmac-key", hmac)...)
	out, _, _ := acmeCmdEnv(t, eabEnv, "get", "issuers", "-n", "default")
	if !strings.Contains(out, "valid") {
		t.Errorf("issuer not registered:\n%s", out)
	}
}

// acmeCmdEnv runs kubectl acme against another environment.
func acmeCmdEnv(t *testing.T, e *testenv.Env, args ...string) (string, string, int) {
	t.Helper()
	return acmeCmd(t, e.Kubeconfig, args...)
}
