package e2e

import (
	"testing"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/kubectl-acme/kubectl-acme/test/internal/suite"
)

func createNetworkPolicy(t *testing.T, ns, name string, spec networkingv1.NetworkPolicySpec) {
	t.Helper()
	suite.CreateNetworkPolicy(t, kube, ns, name, spec)
}

var defaultDeny = suite.DefaultDeny
