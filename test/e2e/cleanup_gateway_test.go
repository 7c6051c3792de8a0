package e2e

import (
	"testing"
)

// TestGatewayHTTPRouteCleanup: `cleanup` removes an HTTPRoute a killed
// run left, and leaves the user's own routes alone.
func TestGatewayHTTPRouteCleanup(t *testing.T) {
	requireGateway(t)
	t.Parallel()
	ns := newNamespace(t)
	ctx := t.Context()
	left := simRoute("a."+ns+".example", "acme-solver-web-abc123", "/.well-known/acme-challenge/tok")
	left.Name = "acme-solver-web-abc123"
	left.Labels = map[string]string{
		"app.kubernetes.io/managed-by": "kubectl-acme", "app.kubernetes.io/component": "http01-solver",
		"acme.kubectl.io/solver": left.Name, "acme.kubectl.io/certificate": "web",
	}
	left.Annotations = map[string]string{"acme.kubectl.io/created": "2026-01-01T00:00:00Z"}
	createRoute(ctx, t, ns, left)
	mine := simRoute("a."+ns+".example", "app", "/")
	mine.Name = "app"
	createRoute(ctx, t, ns, mine)

	out := mustACME(t, env.Kubeconfig, "cleanup", "-n", ns)
	wantAll(t, "cleanup", out, "httproute", left.Name, "deleted")
	if got := solverHTTPRoutes(t, ns, ""); len(got) != 1 || got[0] != "httproute/app" {
		t.Errorf("httproutes after cleanup: %v, want only the user's", got)
	}
}
