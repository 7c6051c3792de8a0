// Package harness checks the test environment itself, not the product:
// that simnode's kubelet and ingress-controller imitation fail as the real
// components do (each behaviour naming its source), that a real node runs
// and leaves nothing behind, and that Pebble solves HTTP-01 through the
// cluster by hand. test/e2e takes all of that for granted. Like test/e2e,
// the package starts one environment of its own (test/internal/suite); set
// TESTENV_DIR to use one already started by `hack/testenv up`.
package harness

import (
	"context"
	"crypto/x509"
	"os"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	testenv "github.com/kubectl-acme/kubectl-acme/test/env"
	"github.com/kubectl-acme/kubectl-acme/test/internal/suite"
)

// Shared by every test of the package; set once by TestMain.
var (
	env  *testenv.Env
	kube kubernetes.Interface
)

func TestMain(m *testing.M) {
	os.Exit(suite.Main(m, suite.Config{
		Name: "harness",
		Options: func(o *testenv.Options, tmp string) error {
			// simnode's HTTPRoute fidelity needs a Gateway.
			o.GatewayAPI = true
			return nil
		},
		Ready: func(e *testenv.Env, k kubernetes.Interface) { env, kube = e, k },
	}))
}

// The helpers below are test/internal/suite's, on the package's env.

func kubectl(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return suite.Kubectl(t, env.Kubeconfig, args...)
}

func newNamespace(t *testing.T) string {
	t.Helper()
	return suite.NewNamespace(t, kube, nil)
}

func startOwnEnv(t *testing.T, o testenv.Options) (*testenv.Env, kubernetes.Interface) {
	t.Helper()
	return suite.StartOwnEnv(t, env.BinDir, o)
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	suite.WaitFor(t, timeout, what, cond)
}

func certPool(t *testing.T, file string) *x509.CertPool {
	t.Helper()
	return suite.CertPool(t, file)
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

// simRoute is the HTTPRoute equivalent of simObjects.ing.
func simRoute(host, backend string, path string) *gatewayv1.HTTPRoute {
	return suite.SimRoute(env, host, backend, path)
}

func createRoute(ctx context.Context, t *testing.T, ns string, hr *gatewayv1.HTTPRoute) {
	t.Helper()
	suite.CreateRoute(ctx, t, env.Kubeconfig, ns, hr)
}

func createNetworkPolicy(t *testing.T, ns, name string, spec networkingv1.NetworkPolicySpec) {
	t.Helper()
	suite.CreateNetworkPolicy(t, kube, ns, name, spec)
}

var defaultDeny = suite.DefaultDeny

const gkeClass = suite.GKEClass
