package e2e

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/kubectl-acme/kubectl-acme/test/simnode"
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

// TestIssueNetworkPolicyDefaultDeny: in a namespace whose default-deny
// NetworkPolicy would drop the ingress controller's traffic to the solver
// pod, issue stops before ordering and says why and what to do; with
// --allow-solver-traffic it adds a temporary NetworkPolicy, the
// certificate is issued through simnode (which enforces the policies),
// and the temporary policy is gone after.
func TestIssueNetworkPolicyDefaultDeny(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createNetworkPolicy(t, ns, "default-deny", defaultDeny)
	p := startCAProxy(t)
	createIssuerVia(t, p, ns, "pebble")
	host := "np." + ns + ".example.test"

	_, errOut, code := acmeCmd(t, env.Kubeconfig, issueArgs(ns, "web", "pebble", "--domain", host)...)
	if code == 0 {
		t.Fatal("issue succeeded although a default-deny policy drops the solver's traffic")
	}
	wantAll(t, "issue's error", errOut, "NetworkPolicies default-deny", "--allow-solver-traffic", "no order was placed")
	if n := p.NewOrders(); n != 0 {
		t.Errorf("%d newOrder requests reached the CA, want none", n)
	}
	assertNoSolverObjects(t, ns)

	_, errOut = mustACMEErr(t, env.Kubeconfig, issueArgs(ns, "web", "pebble", "--domain", host, "--allow-solver-traffic")...)
	wantAll(t, "progress", errOut, "created networkpolicy")
	verifySecret(t, ns, "web", []string{host})
	assertNoSolverObjects(t, ns)
	nps, err := kube.NetworkingV1().NetworkPolicies(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(nps.Items) != 1 || nps.Items[0].Name != "default-deny" {
		var names []string
		for _, np := range nps.Items {
			names = append(names, np.Name)
		}
		t.Errorf("NetworkPolicies after the issue: %v, want only default-deny", names)
	}
}

// TestIssueNetworkPolicyAdmitsController: a policy admitting the ingress
// controller's namespace (given with --ingress-controller-namespace) to
// the solver port needs no temporary policy.
func TestIssueNetworkPolicyAdmitsController(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createNetworkPolicy(t, ns, "default-deny", defaultDeny)
	createNetworkPolicy(t, ns, "from-ingress-nginx", networkingv1.NetworkPolicySpec{
		PodSelector: metav1.LabelSelector{},
		Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: simnode.ControllerNamespace}},
		}}}},
	})
	createIssuer(t, env.Kubeconfig, ns, "pebble", env.IngressClass)
	host := "npok." + ns + ".example.test"
	_, errOut := mustACMEErr(t, env.Kubeconfig, issueArgs(ns, "web", "pebble", "--domain", host, "--ingress-controller-namespace", simnode.ControllerNamespace)...)
	if strings.Contains(errOut, "created networkpolicy") || strings.Contains(errOut, "warning") {
		t.Errorf("a policy admitting the controller's namespace led to a temporary policy or a warning:\n%s", errOut)
	}
	verifySecret(t, ns, "web", []string{host})
	assertNoSolverObjects(t, ns)
}

// mustACMEErr is mustACME that also returns stderr.
func mustACMEErr(t *testing.T, kubeconfig string, args ...string) (string, string) {
	t.Helper()
	out, errOut, code := acmeCmd(t, kubeconfig, args...)
	if code != 0 {
		t.Fatalf("kubectl acme %s failed (exit %d):\n%s", strings.Join(args, " "), code, errOut)
	}
	return out, errOut
}

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
