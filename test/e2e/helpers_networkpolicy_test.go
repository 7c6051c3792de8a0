package e2e

import (
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func createNetworkPolicy(t *testing.T, ns, name string, spec networkingv1.NetworkPolicySpec) {
	t.Helper()
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
	if _, err := kube.NetworkingV1().NetworkPolicies(ns).Create(t.Context(), np, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// defaultDeny is the policy of the Kubernetes docs' "Default deny all
// ingress traffic" example.
var defaultDeny = networkingv1.NetworkPolicySpec{
	PodSelector: metav1.LabelSelector{},
	PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
}
