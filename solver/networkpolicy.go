package solver

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-acme/kubectl-acme/internal/kube"
)

// The NetworkPolicy semantics below are the API's
// (k8s.io/api/networking/v1 types.go, and
// https://kubernetes.io/docs/concepts/services-networking/network-policies/):
// a pod is isolated for ingress once any policy of its namespace selects
// it with Ingress among its policyTypes (every policy when policyTypes is
// empty); it then receives only what some ingress rule of those policies
// admits, rules being ORed, a rule admitting a connection when one of its
// ports and one of its peers match (an empty list matching all).

// Traffic is what the namespace's NetworkPolicies make of connections from
// the ingress controller to the solver pod's port.
type Traffic int

const (
	// TrafficAdmitted: no policy isolates the pod, or one admits every
	// source (or the controller's namespace, when known) to its port.
	TrafficAdmitted Traffic = iota
	// TrafficUnknown: policies isolate the pod and admit some sources to
	// its port, which may or may not include the controller.
	TrafficUnknown
	// TrafficBlocked: policies isolate the pod and admit nothing to its
	// port.
	TrafficBlocked
	// TrafficUnchecked: the policies could not be read.
	TrafficUnchecked
)

// TrafficVerdict is the outcome of reading the policies.
type TrafficVerdict struct {
	Traffic Traffic
	// Isolating are the policies selecting the solver pod for ingress;
	// Partial those of them admitting only some sources to its port.
	Isolating, Partial []string
	// Why explains TrafficUnchecked.
	Why string
}

// solverTraffic judges the policies of the pod's namespace for TCP
// connections to port (named portName) from the ingress controller, whose
// namespace is ctrlNS when known ("" if not).
func solverTraffic(pols []networkingv1.NetworkPolicy, podLabels map[string]string, port int32, portName, ctrlNS string) TrafficVerdict {
	var v TrafficVerdict
	admitted, partial := false, map[string]bool{}
	for i := range pols {
		p := &pols[i]
		if !selectsForIngress(p, podLabels) {
			continue
		}
		v.Isolating = append(v.Isolating, p.Name)
		for _, r := range p.Spec.Ingress {
			if !portsMatch(r.Ports, port, portName) {
				continue
			}
			switch peersAdmit(r.From, p.Namespace, ctrlNS) {
			case TrafficAdmitted:
				admitted = true
			case TrafficUnknown:
				partial[p.Name] = true
			}
		}
	}
	sort.Strings(v.Isolating)
	switch {
	case len(v.Isolating) == 0 || admitted:
		v.Traffic = TrafficAdmitted
	case len(partial) > 0:
		v.Traffic = TrafficUnknown
		for n := range partial {
			v.Partial = append(v.Partial, n)
		}
		sort.Strings(v.Partial)
	default:
		v.Traffic = TrafficBlocked
	}
	return v
}

// selectsForIngress: the policy's podSelector matches the pod and it
// governs ingress. "If this field is not specified, it will default based
// on the existence of ingress or egress rules; policies that contain an
// egress section are assumed to affect egress, and all policies (whether
// or not they contain an ingress section) are assumed to affect ingress"
// (NetworkPolicySpec.PolicyTypes).
func selectsForIngress(p *networkingv1.NetworkPolicy, podLabels map[string]string) bool {
	sel, err := metav1.LabelSelectorAsSelector(&p.Spec.PodSelector)
	if err != nil || !sel.Matches(labels.Set(podLabels)) {
		return false
	}
	if len(p.Spec.PolicyTypes) == 0 {
		return true
	}
	for _, t := range p.Spec.PolicyTypes {
		if t == networkingv1.PolicyTypeIngress {
			return true
		}
	}
	return false
}

// portsMatch: "If this field is empty or missing, this rule matches all
// ports"; a port's protocol defaults to TCP, a missing port means every
// port of the protocol, a named port is the pod's container port of that
// name, and endPort makes a range (NetworkPolicyPort).
func portsMatch(ports []networkingv1.NetworkPolicyPort, port int32, portName string) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		if p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP {
			continue
		}
		switch {
		case p.Port == nil:
			return true
		case p.Port.Type == intstr.String:
			if p.Port.StrVal == portName {
				return true
			}
		case p.EndPort != nil:
			if port >= p.Port.IntVal && port <= *p.EndPort {
				return true
			}
		case p.Port.IntVal == port:
			return true
		}
	}
	return false
}

// peersAdmit says whether a rule's from list admits the ingress
// controller: "If this field is empty or missing, this rule matches all
// sources"; an empty namespaceSelector selects all namespaces and an empty
// (or absent, with a namespaceSelector) podSelector all their pods; a
// podSelector alone selects pods of the policy's namespace; an ipBlock of
// 0.0.0.0/0 or ::/0 without exceptions matches every address
// (NetworkPolicyPeer). What selects only some namespaces, pods or
// addresses may include the controller or not: unknown, unless ctrlNS says
// where it runs and the selector is by namespace name.
func peersAdmit(from []networkingv1.NetworkPolicyPeer, policyNS, ctrlNS string) Traffic {
	if len(from) == 0 {
		return TrafficAdmitted
	}
	out := TrafficBlocked
	for _, peer := range from {
		t := peerAdmits(peer, policyNS, ctrlNS)
		if t == TrafficAdmitted {
			return t
		}
		if t == TrafficUnknown {
			out = t
		}
	}
	return out
}

func peerAdmits(peer networkingv1.NetworkPolicyPeer, policyNS, ctrlNS string) Traffic {
	if b := peer.IPBlock; b != nil {
		if (b.CIDR == "0.0.0.0/0" || b.CIDR == "::/0") && len(b.Except) == 0 {
			return TrafficAdmitted
		}
		return TrafficUnknown
	}
	allPods := peer.PodSelector == nil || isEmptySelector(peer.PodSelector)
	if peer.NamespaceSelector == nil {
		// Pods of the policy's own namespace.
		if ctrlNS != "" && ctrlNS != policyNS {
			return TrafficBlocked
		}
		if ctrlNS == policyNS && allPods {
			return TrafficAdmitted
		}
		return TrafficUnknown
	}
	nsAll := isEmptySelector(peer.NamespaceSelector)
	if !nsAll && ctrlNS != "" {
		sel, err := metav1.LabelSelectorAsSelector(peer.NamespaceSelector)
		if err != nil {
			return TrafficUnknown
		}
		// Every namespace carries kubernetes.io/metadata.name (the
		// NamespaceDefaultLabelName feature, GA in 1.22); other labels
		// of the controller's namespace are not known here.
		known := labels.Set{corev1.LabelMetadataName: ctrlNS}
		if sel.Matches(known) {
			nsAll = true
		} else if onlyNameKeys(peer.NamespaceSelector) {
			return TrafficBlocked
		}
	}
	if nsAll && allPods {
		return TrafficAdmitted
	}
	return TrafficUnknown
}

func isEmptySelector(s *metav1.LabelSelector) bool {
	return len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 0
}

// onlyNameKeys: the selector looks at namespace names only, so a namespace
// it does not match by name is surely not selected.
func onlyNameKeys(s *metav1.LabelSelector) bool {
	for k := range s.MatchLabels {
		if k != corev1.LabelMetadataName {
			return false
		}
	}
	for _, e := range s.MatchExpressions {
		if e.Key != corev1.LabelMetadataName {
			return false
		}
	}
	return true
}

// checkTraffic lists the namespace's NetworkPolicies and judges them for
// the solver pod. A user who may not list them is not stopped: the
// policies then go unchecked, with a warning.
func (w *Workload) checkTraffic(ctx context.Context, podLabels map[string]string) (TrafficVerdict, error) {
	ns := w.Config.Namespace
	items, err := w.Policies.list(ctx, w.Client, ns)
	if apierrors.IsForbidden(err) || apierrors.IsNotFound(err) {
		return TrafficVerdict{Traffic: TrafficUnchecked, Why: fmt.Sprintf("you may not list networkpolicies in namespace %q", ns)}, nil
	}
	if err != nil {
		return TrafficVerdict{}, kube.Describe(err, "list", "networkpolicies.networking.k8s.io", ns)
	}
	return solverTraffic(items, podLabels, httpPort, portName, w.Config.IngressControllerNamespace), nil
}

// NetworkPolicies lists each namespace's NetworkPolicies once for the
// solvers of one run (apply judges every certificate's solver pod, all
// with the same labels, against the same policies before ordering). A
// policy added during the run is not seen by the later checks; the
// self-check still finds a route it blocks before the CA validates. A
// failed list is not kept: the next check lists again. A nil
// *NetworkPolicies lists per call.
type NetworkPolicies struct {
	mu   sync.Mutex
	byNS map[string]*policyList
}

type policyList struct {
	mu    sync.Mutex
	done  bool
	items []networkingv1.NetworkPolicy
	err   error // Forbidden or NotFound, kept: asking again would say the same
}

func (p *NetworkPolicies) list(ctx context.Context, client kubernetes.Interface, ns string) ([]networkingv1.NetworkPolicy, error) {
	read := func() ([]networkingv1.NetworkPolicy, error) {
		list, err := client.NetworkingV1().NetworkPolicies(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		return list.Items, nil
	}
	if p == nil {
		return read()
	}
	p.mu.Lock()
	if p.byNS == nil {
		p.byNS = map[string]*policyList{}
	}
	l := p.byNS[ns]
	if l == nil {
		l = &policyList{}
		p.byNS[ns] = l
	}
	p.mu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		items, err := read()
		if err != nil && !apierrors.IsForbidden(err) && !apierrors.IsNotFound(err) {
			return nil, err
		}
		l.items, l.err, l.done = items, err, true
	}
	return l.items, l.err
}

// TrafficError: NetworkPolicies would drop the CA's validation requests
// on their way from the ingress controller to the solver pod.
type TrafficError struct {
	Namespace string
	Policies  []string
}

func (e *TrafficError) Error() string {
	return fmt.Sprintf("NetworkPolicies %s in namespace %q select the solver pod for ingress and none admits TCP to its port %d: "+
		"the ingress controller could not reach it and the CA's validation would time out; "+
		"fix: rerun with --allow-solver-traffic (or annotate the issuer %s=true) to have kubectl acme add a temporary NetworkPolicy "+
		"admitting TCP to the solver port of the solver pod only, removed with it, or have a policy admit the ingress controller's namespace to pods labelled %s=http01-solver",
		strings.Join(e.Policies, ", "), e.Namespace, httpPort, AnnotationAllowSolverTraffic, LabelComponent)
}

// AnnotationAllowSolverTraffic on an Issuer makes its solvers add a
// temporary NetworkPolicy admitting traffic to the solver pod when the
// namespace's policies would drop it; AnnotationIngressControllerNamespace
// says where the ingress controller runs, to judge policies that admit
// some namespaces only.
const (
	AnnotationAllowSolverTraffic         = "acme.kubectl.io/allow-solver-traffic"
	AnnotationIngressControllerNamespace = "acme.kubectl.io/ingress-controller-namespace"
)

// networkPolicy admits TCP to the solver port of this solver's pod only:
// from the ingress controller's namespace when known, else from anywhere
// (the port serves public tokens only). The pod owns it.
func (c *Config) networkPolicy(owner *metav1.OwnerReference, created string) *networkingv1.NetworkPolicy {
	tcp := corev1.ProtocolTCP
	port := intstr.FromInt32(httpPort)
	rule := networkingv1.NetworkPolicyIngressRule{Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &port}}}
	if ns := c.IngressControllerNamespace; ns != "" {
		rule.From = []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{
			MatchLabels: map[string]string{corev1.LabelMetadataName: ns},
		}}}
	}
	return &networkingv1.NetworkPolicy{
		ObjectMeta: c.meta(created, owner),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{LabelSolver: c.Name}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress:     []networkingv1.NetworkPolicyIngressRule{rule},
		},
	}
}
