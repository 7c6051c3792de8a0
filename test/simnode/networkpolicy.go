package simnode

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
)

// The ingress controller's own identity, as a NetworkPolicy sees it: the
// controller pod of ingress-nginx's Helm chart, installed the usual way
// (helm install ingress-nginx ingress-nginx/ingress-nginx -n ingress-nginx).
// Its labels are the chart's selectorLabels plus component=controller
// (charts/ingress-nginx/templates/_helpers.tpl, controller-deployment.yaml).
const (
	ControllerNamespace = "ingress-nginx"
	// ControllerPodIP is the controller pod's address, for ipBlock peers:
	// in 127.1.0.0/16 with the pods, above what allocateIP hands out
	// first.
	ControllerPodIP = "127.1.255.254"
)

// ControllerPodLabels are the labels of the ingress-nginx controller pod.
var ControllerPodLabels = map[string]string{
	"app.kubernetes.io/name":      "ingress-nginx",
	"app.kubernetes.io/instance":  "ingress-nginx",
	"app.kubernetes.io/component": "controller",
}

// connectTimeout is how long the controller waits for a connection a
// policy drops: ingress-nginx's proxy-connect-timeout, 5 seconds by
// default (docs/user-guide/nginx-configuration/configmap.md), after which
// nginx answers 504 Gateway Timeout ("upstream timed out (110: Connection
// timed out) while connecting to upstream", ngx_http_upstream.c sets
// NGX_HTTP_GATEWAY_TIME_OUT for NGX_HTTP_UPSTREAM_FT_TIMEOUT).
const connectTimeout = 5 * time.Second

// policyEngine decides, as a CNI's NetworkPolicy implementation does,
// whether the controller may open a TCP connection to a pod. The semantics
// are the API's (k8s.io/api/networking/v1 types.go) and the concept page's
// (https://kubernetes.io/docs/concepts/services-networking/network-policies/):
// only ingress isolation is modelled, since the controller is the only
// client and its own egress is not policed here.
type policyEngine struct {
	policies networkinglisters.NetworkPolicyLister
	nss      corelisters.NamespaceLister
	pods     corelisters.PodLister
}

// allows reports whether TCP from the controller to port of pod is
// admitted, and the policies isolating the pod when it is not.
func (e *policyEngine) allows(pod *corev1.Pod, port int) (bool, []string) {
	pols, err := e.policies.NetworkPolicies(pod.Namespace).List(labels.Everything())
	if err != nil {
		return true, nil
	}
	var isolating []string
	for _, p := range pols {
		// "isolated for ingress if there is any NetworkPolicy that both
		// selects the pod and has "Ingress" in its policyTypes" (concept
		// page, "The two sorts of pod isolation"); an empty policyTypes
		// means Ingress (NetworkPolicySpec.PolicyTypes).
		if !selects(&p.Spec.PodSelector, pod.Labels) || !hasIngressType(p) {
			continue
		}
		isolating = append(isolating, p.Name)
		// "traffic is allowed if it matches at least one rule across
		// all of the policies that apply" (NetworkPolicySpec.Ingress).
		for _, r := range p.Spec.Ingress {
			if e.portMatches(r.Ports, pod, port) && e.fromMatches(r.From, p.Namespace) {
				return true, nil
			}
		}
	}
	return len(isolating) == 0, isolating
}

func hasIngressType(p *networkingv1.NetworkPolicy) bool {
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

// selects applies a label selector; "An empty podSelector selects all
// pods in the namespace" (NetworkPolicySpec.PodSelector).
func selects(sel *metav1.LabelSelector, l map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	return err == nil && s.Matches(labels.Set(l))
}

// portMatches: "If this field is empty or missing, this rule matches all
// ports"; protocol defaults to TCP; a missing port matches every port; a
// named port is resolved against the destination pod's container ports;
// endPort makes port..endPort a range (NetworkPolicyPort).
func (e *policyEngine) portMatches(ports []networkingv1.NetworkPolicyPort, pod *corev1.Pod, port int) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		if p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP {
			continue
		}
		if p.Port == nil {
			return true
		}
		if p.Port.StrVal != "" {
			if named, ok := namedPort(pod, p.Port.StrVal); ok && named == port {
				return true
			}
			continue
		}
		lo, hi := int(p.Port.IntVal), int(p.Port.IntVal)
		if p.EndPort != nil {
			hi = int(*p.EndPort)
		}
		if port >= lo && port <= hi {
			return true
		}
	}
	return false
}

func namedPort(pod *corev1.Pod, name string) (int, bool) {
	for _, c := range pod.Spec.Containers {
		for _, cp := range c.Ports {
			if cp.Name == name && (cp.Protocol == "" || cp.Protocol == corev1.ProtocolTCP) {
				return int(cp.ContainerPort), true
			}
		}
	}
	return 0, false
}

// fromMatches: "If this field is empty or missing, this rule matches all
// sources"; otherwise one peer must match the controller
// (NetworkPolicyIngressRule.From).
func (e *policyEngine) fromMatches(from []networkingv1.NetworkPolicyPeer, policyNS string) bool {
	if len(from) == 0 {
		return true
	}
	for _, peer := range from {
		if e.peerMatches(peer, policyNS) {
			return true
		}
	}
	return false
}

// peerMatches applies NetworkPolicyPeer to the controller pod: podSelector
// alone selects pods of the policy's namespace; namespaceSelector alone
// all pods of the selected namespaces; both, the selected pods of the
// selected namespaces; ipBlock a CIDR, minus its excepts.
func (e *policyEngine) peerMatches(peer networkingv1.NetworkPolicyPeer, policyNS string) bool {
	if b := peer.IPBlock; b != nil {
		return inBlock(b, ControllerPodIP)
	}
	if peer.NamespaceSelector == nil {
		return policyNS == ControllerNamespace && (peer.PodSelector == nil || selects(peer.PodSelector, ControllerPodLabels))
	}
	if !selects(peer.NamespaceSelector, e.controllerNamespaceLabels()) {
		return false
	}
	return peer.PodSelector == nil || selects(peer.PodSelector, ControllerPodLabels)
}

// controllerNamespaceLabels are the labels of namespace ingress-nginx:
// the real object's when it exists, else the one label every namespace
// carries, kubernetes.io/metadata.name (set by the API server since 1.21).
func (e *policyEngine) controllerNamespaceLabels() map[string]string {
	if e.nss != nil {
		if ns, err := e.nss.Get(ControllerNamespace); err == nil {
			return ns.Labels
		}
	}
	return map[string]string{corev1.LabelMetadataName: ControllerNamespace}
}

func inBlock(b *networkingv1.IPBlock, ip string) bool {
	addr := net.ParseIP(ip)
	_, cidr, err := net.ParseCIDR(b.CIDR)
	if err != nil || addr == nil || !cidr.Contains(addr) {
		return false
	}
	for _, ex := range b.Except {
		if _, n, err := net.ParseCIDR(ex); err == nil && n.Contains(addr) {
			return false
		}
	}
	return true
}

// dialer wraps the controller's dial to pods: a connection the policies
// drop is never answered, so the dial fails after connectTimeout with a
// deadline error, which the proxy turns into 504 as nginx does.
func (e *policyEngine) dialer(dial func(ctx context.Context, addr string) (net.Conn, error)) func(ctx context.Context, addr string) (net.Conn, error) {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		host, portStr, err := net.SplitHostPort(addr)
		if err != nil {
			return dial(ctx, addr)
		}
		port, _ := strconv.Atoi(portStr)
		if pod := e.podByIP(host); pod != nil {
			if ok, pols := e.allows(pod, port); !ok {
				t := time.NewTimer(connectTimeout)
				defer t.Stop()
				select {
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-t.C:
				}
				return nil, fmt.Errorf("connect to %s (pod %s/%s): dropped by NetworkPolicies %v: %w", addr, pod.Namespace, pod.Name, pols, context.DeadlineExceeded)
			}
		}
		return dial(ctx, addr)
	}
}

func (e *policyEngine) podByIP(ip string) *corev1.Pod {
	pods, err := e.pods.List(labels.Everything())
	if err != nil {
		return nil
	}
	for _, p := range pods {
		if p.Status.PodIP == ip && p.DeletionTimestamp == nil {
			return p
		}
	}
	return nil
}
