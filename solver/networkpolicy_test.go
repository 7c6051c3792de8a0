package solver

import (
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func TestSolverTraffic(t *testing.T) {
	pod := map[string]string{LabelSolver: "s", "app": "x"}
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	port := func(p intstr.IntOrString, proto *corev1.Protocol) []networkingv1.NetworkPolicyPort {
		return []networkingv1.NetworkPolicyPort{{Port: &p, Protocol: proto}}
	}
	nsSel := func(ns string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: ns}}
	}
	pol := func(name string, spec networkingv1.NetworkPolicySpec) networkingv1.NetworkPolicy {
		return networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "app"}, Spec: spec}
	}
	deny := pol("deny", networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}})
	rule := func(from []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort) networkingv1.NetworkPolicy {
		return pol("allow", networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{From: from, Ports: ports}}})
	}
	for _, tt := range []struct {
		name   string
		pols   []networkingv1.NetworkPolicy
		ctrlNS string
		want   Traffic
	}{
		{"no policies", nil, "", TrafficAdmitted},
		{"default deny", []networkingv1.NetworkPolicy{deny}, "", TrafficBlocked},
		{"egress only", []networkingv1.NetworkPolicy{pol("eg", networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}})}, "", TrafficAdmitted},
		{"other pods", []networkingv1.NetworkPolicy{pol("o", networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "y"}}})}, "", TrafficAdmitted},
		{"all sources, all ports", []networkingv1.NetworkPolicy{deny, rule(nil, nil)}, "", TrafficAdmitted},
		{"all sources, solver port", []networkingv1.NetworkPolicy{deny, rule(nil, port(intstr.FromInt32(httpPort), &tcp))}, "", TrafficAdmitted},
		{"all sources, named port", []networkingv1.NetworkPolicy{deny, rule(nil, port(intstr.FromString(portName), nil))}, "", TrafficAdmitted},
		{"all sources, UDP", []networkingv1.NetworkPolicy{deny, rule(nil, port(intstr.FromInt32(httpPort), &udp))}, "", TrafficBlocked},
		{"all sources, other port", []networkingv1.NetworkPolicy{deny, rule(nil, port(intstr.FromInt32(80), nil))}, "", TrafficBlocked},
		{"ipBlock everything", []networkingv1.NetworkPolicy{deny, rule([]networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0"}}}, nil)}, "", TrafficAdmitted},
		{"ipBlock some", []networkingv1.NetworkPolicy{deny, rule([]networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8"}}}, nil)}, "", TrafficUnknown},
		{"all namespaces", []networkingv1.NetworkPolicy{deny, rule([]networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{}}}, nil)}, "", TrafficAdmitted},
		{"one namespace, unknown controller", []networkingv1.NetworkPolicy{deny, rule([]networkingv1.NetworkPolicyPeer{{NamespaceSelector: nsSel("ingress-nginx")}}, nil)}, "", TrafficUnknown},
		{"the controller's namespace", []networkingv1.NetworkPolicy{deny, rule([]networkingv1.NetworkPolicyPeer{{NamespaceSelector: nsSel("ingress-nginx")}}, nil)}, "ingress-nginx", TrafficAdmitted},
		{"another namespace than the controller's", []networkingv1.NetworkPolicy{deny, rule([]networkingv1.NetworkPolicyPeer{{NamespaceSelector: nsSel("monitoring")}}, nil)}, "ingress-nginx", TrafficBlocked},
		{"own namespace's pods, controller elsewhere", []networkingv1.NetworkPolicy{deny, rule([]networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}, nil)}, "ingress-nginx", TrafficBlocked},
		{"own namespace's pods, controller unknown", []networkingv1.NetworkPolicy{deny, rule([]networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}, nil)}, "", TrafficUnknown},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := solverTraffic(tt.pols, pod, httpPort, portName, tt.ctrlNS)
			if v.Traffic != tt.want {
				t.Errorf("got %v (%+v), want %v", v.Traffic, v, tt.want)
			}
		})
	}
}

// A run lists each namespace's NetworkPolicies once; a failed list is
// asked again, a Forbidden one is not.
func TestNetworkPoliciesListOnce(t *testing.T) {
	ctx := t.Context()
	client := fake.NewClientset(&networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "deny", Namespace: "app"}})
	var lists atomic.Int32
	fail := atomic.Bool{}
	client.PrependReactor("list", "networkpolicies", func(a k8stesting.Action) (bool, runtime.Object, error) {
		lists.Add(1)
		switch {
		case a.GetNamespace() == "locked":
			return true, nil, apierrors.NewForbidden(networkingv1.Resource("networkpolicies"), "", nil)
		case fail.Load():
			return true, nil, apierrors.NewServiceUnavailable("restarting")
		}
		return false, nil, nil
	})
	p := &NetworkPolicies{}
	fail.Store(true)
	if _, err := p.list(ctx, client, "app"); err == nil {
		t.Fatal("a failed list: want its error")
	}
	fail.Store(false)
	for range 3 {
		if items, err := p.list(ctx, client, "app"); err != nil || len(items) != 1 {
			t.Fatalf("list = %v, %v", items, err)
		}
	}
	for range 2 {
		if _, err := p.list(ctx, client, "locked"); !apierrors.IsForbidden(err) {
			t.Fatalf("locked: %v, want Forbidden", err)
		}
	}
	if got := lists.Load(); got != 3 {
		t.Errorf("%d lists, want 3 (the failed one, then one per namespace)", got)
	}
}
