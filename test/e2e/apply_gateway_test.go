package e2e

import (
	"os"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The HTTPRoute solver (http01.gatewayHTTPRoute) end to end: Pebble
// validates through simnode's Gateway, which routes only what the
// HTTPRoute really attaches and matches.

// TestGatewayHTTPRouteApply issues cert-manager's Gateway API solver
// example through `apply -f`: the Secret is valid, the challenge went
// through an HTTPRoute (simnode logged routing it), nothing is left, and
// export and check know the solver.
func TestGatewayHTTPRouteApply(t *testing.T) {
	requireGateway(t)
	t.Parallel()
	ns := newNamespace(t)
	v := varsFor(t, ns)
	path := renderManifest(t, "", "gateway.yaml", v)
	out, _ := mustApply(t, nil, "-n", ns, "-f", path, "--dry-run=server")
	wantAll(t, "apply --dry-run=server", out, "certificate/gateway-com valid (dry run: server)")
	mustApply(t, nil, "-n", ns, "-f", path, "--agree-tos", "--connect-to", env.IngressHTTP, "-q")

	verifySecret(t, ns, "gateway-com-tls", []string{v.Host, "www." + v.Host})
	assertNoSolverObjects(t, ns)
	log, err := os.ReadFile(env.LogFile("simnode"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "[httproute "+ns+"/acme-solver-gateway-com-") {
		t.Errorf("simnode never routed a solver HTTPRoute of %s; see %s", ns, env.LogFile("simnode"))
	}

	out = mustACME(t, env.Kubeconfig, "export", "--all", "-n", ns)
	wantAll(t, "export", out, "gatewayHTTPRoute:", "parentRefs:", "name: "+env.GatewayName, "namespace: "+env.GatewayNamespace, "sectionName: http", "gateway: public")

	role := mustACME(t, env.Kubeconfig, "check", "-n", ns, "--issuer", "gateway", "-o", "yaml")
	wantAll(t, "check -o yaml", role, "gateway.networking.k8s.io", "httproutes")
}

// TestGatewayHTTPRouteNoSuchGateway: a parentRef to a Gateway that does
// not exist fails the self-check, which says that no Gateway took the
// route, and leaves nothing behind.
func TestGatewayHTTPRouteNoSuchGateway(t *testing.T) {
	requireGateway(t)
	t.Parallel()
	ns := newNamespace(t)
	v := varsFor(t, ns)
	v.GatewayName = "no-such-gateway"
	path := renderManifest(t, "", "gateway.yaml", v)
	_, errOut, code := applyCmd(t, "", nil, "-n", ns, "-f", path, "--agree-tos", "--connect-to", env.IngressHTTP, "--self-check-timeout", "5s")
	if code == 0 {
		t.Fatal("apply succeeded through a Gateway that does not exist")
	}
	wantAll(t, "apply's error", errOut, "self-check", "404",
		"no Gateway controller has accepted httproute "+ns+"/acme-solver-gateway-com-", "parentRef "+env.GatewayNamespace+"/no-such-gateway")
	assertNoSolverObjects(t, ns)
	if _, err := kube.CoreV1().Secrets(ns).Get(t.Context(), "gateway-com-tls", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("secret after a failed issuance: %v", err)
	}
}

// TestGatewayHTTPRouteRefusesIP: an IP address that would go to a
// gatewayHTTPRoute solver is refused when the manifest is checked, before
// anything is created.
func TestGatewayHTTPRouteRefusesIP(t *testing.T) {
	requireGateway(t)
	t.Parallel()
	ns := newNamespace(t)
	path := renderManifest(t, "", "gateway.yaml", varsFor(t, ns))
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	withIP := strings.Replace(string(data), "  dnsNames:", "  ipAddresses: [127.0.0.1]\n  dnsNames:", 1)
	if err := os.WriteFile(path, []byte(withIP), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := applyCmd(t, "", nil, "-n", ns, "-f", path, "--agree-tos", "--connect-to", env.IngressHTTP)
	if code == 0 {
		t.Fatal("apply accepted an IP address for an HTTPRoute solver")
	}
	wantAll(t, "apply's error", errOut, "nothing was changed", "IP address 127.0.0.1", "gatewayHTTPRoute", "HTTPRoute hostnames cannot be IP addresses")
	cms, err := kube.CoreV1().ConfigMaps(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=kubectl-acme"})
	if err != nil {
		t.Fatal(err)
	}
	secrets, err := kube.CoreV1().Secrets(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cms.Items) > 0 || len(secrets.Items) > 0 {
		t.Errorf("apply created %d ConfigMaps and %d Secrets although it refused the manifest", len(cms.Items), len(secrets.Items))
	}
	assertNoSolverObjects(t, ns)
}
