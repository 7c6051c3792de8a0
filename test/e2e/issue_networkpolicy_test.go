package e2e

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-acme/kubectl-acme/test/simnode"
)

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
