package e2e

import (
	"strings"
	"testing"
)

// TestGatewayCreateIssuerAndIssue: `create issuer --gateway NS/NAME`
// stores a gatewayHTTPRoute solver, and `issue` solves through it.
func TestGatewayCreateIssuerAndIssue(t *testing.T) {
	requireGateway(t)
	t.Parallel()
	ns := newNamespace(t)
	mustACME(t, env.Kubeconfig, "create", "issuer", "gw", "-n", ns,
		"--server", env.ACMEServer, "--ca-bundle", env.ACMECABundle,
		"--email", "e2e@example.com", "--gateway", env.GatewayNamespace+"/"+env.GatewayName, "--agree-tos")
	host := "issue." + ns + ".example.test"
	mustACME(t, env.Kubeconfig, issueArgs(ns, "web", "gw", "--domain", host, "--secret", "web-tls", "-q")...)
	verifySecret(t, ns, "web-tls", []string{host})
	assertNoSolverObjects(t, ns)

	_, errOut, code := acmeCmd(t, env.Kubeconfig, issueArgs(ns, "ip", "gw", "--domain", "ip."+host, "--ip", "127.0.0.1")...)
	if code == 0 || !strings.Contains(errOut, "HTTPRoute hostnames cannot be IP addresses") {
		t.Errorf("issue --ip through a Gateway: exit %d, %s", code, errOut)
	}
	assertNoSolverObjects(t, ns)
}
