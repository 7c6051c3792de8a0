package e2e

import (
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// TestPathTypeIssueNginx: with ingress-nginx's admission rule active,
// `issue` through class nginx succeeds, its Ingress used
// ImplementationSpecific, and nothing is left.
func TestPathTypeIssueNginx(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createIssuer(t, env.Kubeconfig, ns, "pebble", env.IngressClass)
	pw := watchPathTypes(t, ns)
	name := "web." + ns + ".example.test"
	out, errOut, code := acmeCmd(t, env.Kubeconfig, issueArgs(ns, "web", "pebble", "--domain", name, "--domain", "www."+name)...)
	if code != 0 {
		t.Fatalf("issue failed (exit %d): %s", code, errOut)
	}
	wantAll(t, "issue", out, "certificate/web issued")
	wantAll(t, "progress", errOut, "pathType ImplementationSpecific: ingress-nginx")
	// A route a moment old is not an alarm (issue 12, item 8).
	if strings.Contains(errOut, "(retrying)") {
		t.Errorf("a normal route propagation was explained as a failure:\n%s", errOut)
	}
	verifySecret(t, ns, "web", []string{name, "www." + name})
	pw.only(t, networkingv1.PathTypeImplementationSpecific)
	assertNoSolverObjects(t, ns)
}

// TestPathTypeIssueIngressNginx: `issue --ingress` through class nginx,
// in a created solver Ingress and edited in place.
func TestPathTypeIssueIngressNginx(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createIssuer(t, env.Kubeconfig, ns, "pebble", env.IngressClass)
	host := ns + ".example.test"
	prefix := networkingv1.PathTypePrefix
	mk := func(name string, ann map[string]string) *networkingv1.Ingress {
		return &networkingv1.Ingress{
			ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: ann},
			Spec: networkingv1.IngressSpec{
				IngressClassName: ptr.To(env.IngressClass),
				TLS:              []networkingv1.IngressTLS{{Hosts: []string{name + "." + host}, SecretName: name + "-tls"}},
				Rules: []networkingv1.IngressRule{{Host: name + "." + host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
					Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: &prefix, Backend: networkingv1.IngressBackend{
						Service: &networkingv1.IngressServiceBackend{Name: "shop", Port: networkingv1.ServiceBackendPort{Number: 80}},
					}}},
				}}}},
			},
		}
	}
	for _, ing := range []*networkingv1.Ingress{
		mk("shop", map[string]string{"cert-manager.io/issuer": "pebble"}),
		mk("inplace", map[string]string{"cert-manager.io/issuer": "pebble", "acme.cert-manager.io/http01-edit-in-place": "true"}),
	} {
		if _, err := kube.NetworkingV1().Ingresses(ns).Create(t.Context(), ing, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	pw := watchPathTypes(t, ns)
	for _, name := range []string{"shop", "inplace"} {
		out := mustACME(t, env.Kubeconfig, "issue", "--ingress", name, "-n", ns, "--connect-to", env.IngressHTTP)
		wantAll(t, "issue --ingress "+name, out, "certificate/"+name+"-tls issued")
		verifySecret(t, ns, name+"-tls", []string{name + "." + host})
	}
	pw.only(t, networkingv1.PathTypeImplementationSpecific)
	assertNoLabeledSolverObjects(t, ns)
}

// TestPathTypeGKE: an issuer of the GKE-like class issues with
// ImplementationSpecific paths; overridden to Exact, the controller
// refuses the Ingress (an event, no route) and the self-check fails
// clearly, before the CA is asked to validate, leaving nothing.
func TestPathTypeGKE(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	mustACME(t, env.Kubeconfig, "create", "issuer", "gke", "-n", ns,
		"--server", env.ACMEServer, "--ca-bundle", env.ACMECABundle, "--email", "e2e@example.com",
		"--ingress-class", gkeClass, "--legacy-class-annotation", "--agree-tos")
	pw := watchPathTypes(t, ns)
	name := "gke." + ns + ".example.test"
	_, errOut, code := acmeCmd(t, env.Kubeconfig, issueArgs(ns, "web", "gke", "--domain", name)...)
	if code != 0 {
		t.Fatalf("issue through class %s failed: %s", gkeClass, errOut)
	}
	wantAll(t, "progress", errOut, "pathType ImplementationSpecific: GKE")
	verifySecret(t, ns, "web", []string{name})
	pw.only(t, networkingv1.PathTypeImplementationSpecific)
	assertNoSolverObjects(t, ns)

	pw = watchPathTypes(t, ns)
	_, errOut, code = acmeCmd(t, env.Kubeconfig, issueArgs(ns, "exact", "gke", "--domain", "exact."+name,
		"--ingress-path-type", "Exact", "--self-check-timeout", "8s")...)
	if code == 0 {
		t.Fatal("issue with Exact paths through the GKE-like class succeeded")
	}
	wantAll(t, "error", errOut, "pathType Exact: set on the issuer or with --ingress-path-type", "HTTP 404 (the ingress controller has no route for this path")
	if strings.Contains(errOut, "invalid") && strings.Contains(errOut, "authorization") {
		t.Errorf("the CA was asked to validate a route the self-check found missing:\n%s", errOut)
	}
	pw.only(t, networkingv1.PathTypeExact)
	assertNoSolverObjects(t, ns)
}
