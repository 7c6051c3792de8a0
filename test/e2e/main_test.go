// Package e2e runs kubectl-acme through the real kubectl against a real
// kube-apiserver and Pebble (see test/env), one file per command
// (issue_*_test.go, apply_*_test.go, renew_*_test.go, ...; shared helpers in
// helpers_*_test.go). One environment serves the whole package
// (test/internal/suite); set TESTENV_DIR to use one already started by
// `hack/testenv up`. The environment's own checks are test/harness's.
package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/client-go/kubernetes"

	testenv "github.com/kubectl-acme/kubectl-acme/test/env"
	"github.com/kubectl-acme/kubectl-acme/test/internal/suite"
)

// Shared by every test of the package; set once by TestMain.
var (
	env  *testenv.Env
	kube kubernetes.Interface
	// auditLog records the requests of budgetNamespace's ServiceAccounts
	// (TestAPIRequestBudget); empty when attached to an environment
	// started without it.
	auditLog string
)

func TestMain(m *testing.M) {
	os.Exit(suite.Main(m, suite.Config{
		Name: "e2e",
		Options: func(o *testenv.Options, tmp string) error {
			auditArgs, err := writeAuditPolicy(tmp)
			if err != nil {
				return err
			}
			o.APIServerArgs = auditArgs
			// The HTTPRoute solver's tests need a Gateway.
			o.GatewayAPI = true
			// The second ACME server (issue_stepca_test.go).
			o.StepCA = true
			return nil
		},
		Ready:  func(e *testenv.Env, k kubernetes.Interface) { env, kube = e, k },
		Checks: []func() error{checkSecretsStayedSecret, checkNoDataRace, checkNoRecoveryRecords},
	}))
}

// kubectl runs the environment's kubectl as the cluster admin and returns
// its output and exit code; a kubectl that cannot run at all fails the test.
func kubectl(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return suite.Kubectl(t, env.Kubeconfig, args...)
}

// newNamespace creates a namespace named after the test, waits until pods
// can be created in it, and deletes it when the test ends; the leak check
// then reads its Secrets one last time (rememberNamespace).
func newNamespace(t *testing.T) string {
	t.Helper()
	return suite.NewNamespace(t, kube, rememberNamespace)
}

// recoveryRecords lists the recovery records kubectl-acme keeps for
// certificates in namespace ns ("" for all).
func recoveryRecords(ns string) []string {
	pattern := "*.pem"
	if ns != "" {
		pattern = ns + "_*.pem"
	}
	files, _ := filepath.Glob(filepath.Join(os.Getenv("KUBECTL_ACME_STATE_DIR"), "pending", pattern))
	return files
}

// checkNoRecoveryRecords: every key kept before a finalize ended up in a
// Secret, or a test collected it.
func checkNoRecoveryRecords() error {
	if left := recoveryRecords(""); len(left) > 0 {
		return fmt.Errorf("recovery records left behind: %v", left)
	}
	return nil
}

// startOwnEnv starts an environment of the test's own, configured by o,
// for faults that would break the tests running beside it in the shared
// one, or a CA configured otherwise.
func startOwnEnv(t *testing.T, o testenv.Options) (*testenv.Env, kubernetes.Interface) {
	t.Helper()
	return suite.StartOwnEnv(t, env.BinDir, o)
}
