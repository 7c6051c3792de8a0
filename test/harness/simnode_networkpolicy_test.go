package harness

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/kubectl-acme/kubectl-acme/test/simnode"
)

// TestSimnodeNetworkPolicy: simnode's ingress controller, a pod of
// namespace ingress-nginx with the Helm chart's labels, reaches a pod only
// when its NetworkPolicies admit it, as a CNI enforces them; a dropped
// connection times out and the controller answers 504, as ingress-nginx
// does after proxy-connect-timeout.
func TestSimnodeNetworkPolicy(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	o := newSimObjects(ns)
	ctx, cancel := context.WithTimeout(t.Context(), 3*simTimeout)
	defer cancel()
	o.create(ctx, t, ns)
	waitSimServed(ctx, t, o.host, simPath, o.body)

	tcp := corev1.ProtocolTCP
	steps := []struct {
		what   string
		name   string
		spec   *networkingv1.NetworkPolicySpec // nil deletes the previous step's policy
		remove string
		want   int
	}{
		{what: "default deny", name: "deny", spec: &defaultDeny, want: http.StatusGatewayTimeout},
		{what: "egress-only policy does not isolate for ingress", name: "egress", spec: &networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "other"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
		}, want: http.StatusGatewayTimeout},
		{what: "podSelector alone: pods of the policy's namespace only", name: "same-ns", spec: &networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{},
			Ingress:     []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}}},
		}, want: http.StatusGatewayTimeout},
		{what: "the controller's namespace, on another port", name: "wrong-port", spec: &networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: simnode.ControllerNamespace}}}},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: ptr.To(intstr.FromInt32(9999))}},
			}},
		}, want: http.StatusGatewayTimeout},
		{what: "the controller's namespace and pod labels, named port", name: "controller", spec: &networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "solver"}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{{
					NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: simnode.ControllerNamespace}},
					PodSelector:       &metav1.LabelSelector{MatchLabels: simnode.ControllerPodLabels},
				}},
				Ports: []networkingv1.NetworkPolicyPort{{Port: ptr.To(intstr.FromString("http"))}},
			}},
		}, want: http.StatusOK},
		{what: "without it again", remove: "controller", want: http.StatusGatewayTimeout},
		{what: "ipBlock excepting the controller's address", name: "except", spec: &networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{
				IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0", Except: []string{simnode.ControllerPodIP + "/32"}},
			}}}},
		}, want: http.StatusGatewayTimeout},
		{what: "ipBlock 0.0.0.0/0", name: "anywhere", spec: &networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{
				IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0"},
			}}}},
		}, want: http.StatusOK},
	}
	for _, s := range steps {
		if s.remove != "" {
			if err := kube.NetworkingV1().NetworkPolicies(ns).Delete(ctx, s.remove, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		} else {
			createNetworkPolicy(t, ns, s.name, *s.spec)
		}
		simWaitCodeSlow(ctx, t, o.host, simPath, s.want, s.what)
	}
}

// simWaitCodeSlow is simWaitCode with room for the controller's connect
// timeout in each request.
func simWaitCodeSlow(ctx context.Context, t *testing.T, host, path string, want int, what string) {
	t.Helper()
	var last int
	for {
		rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		req, _ := http.NewRequestWithContext(rctx, http.MethodGet, "http://"+env.IngressHTTP+path, nil)
		req.Host = host
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			last = resp.StatusCode
		}
		cancel()
		if err == nil && last == want {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: never answered %d (last %d, %v)", what, want, last, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
