package e2e

import (
	"context"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubectl-acme/kubectl-acme/test/internal/suite"
)

// solverHTTPRoutes lists the HTTPRoutes in ns matching selector ("" for
// all), as "httproute/NAME"; none when the cluster has no Gateway API.
func solverHTTPRoutes(t *testing.T, ns, selector string) []string {
	t.Helper()
	list, err := dynamicClient(t).Resource(httpRoutesGVR).Namespace(ns).List(t.Context(), metav1.ListOptions{LabelSelector: selector})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatalf("list httproutes in %s: %v", ns, err)
	}
	var out []string
	for _, o := range list.Items {
		out = append(out, "httproute/"+o.GetName())
	}
	return out
}

var httpRoutesGVR = suite.HTTPRoutesGVR

func dynamicClient(t *testing.T) dynamic.Interface {
	t.Helper()
	return suite.DynamicClient(t, env.Kubeconfig)
}

func requireGateway(t *testing.T) {
	t.Helper()
	suite.RequireGateway(t, env)
}

// simRoute is an HTTPRoute on the environment's Gateway sending host's
// exact path to port 80 of Service backend.
func simRoute(host, backend string, path string) *gatewayv1.HTTPRoute {
	return suite.SimRoute(env, host, backend, path)
}

func createRoute(ctx context.Context, t *testing.T, ns string, hr *gatewayv1.HTTPRoute) {
	t.Helper()
	suite.CreateRoute(ctx, t, env.Kubeconfig, ns, hr)
}
