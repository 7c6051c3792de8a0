package e2e

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// TestIssueIngress: `issue --ingress` issues one certificate per TLS entry
// of an Ingress, with the issuer from its cert-manager.io annotations, and
// with acme.cert-manager.io/http01-edit-in-place solves through the
// Ingress itself, leaving it as it was.
func TestIssueIngress(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createIssuer(t, env.Kubeconfig, ns, "pebble", env.IngressClass)
	host := ns + ".example.test"
	prefix := networkingv1.PathTypePrefix
	backend := networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "shop", Port: networkingv1.ServiceBackendPort{Number: 80}}}
	rule := func(h string) networkingv1.IngressRule {
		return networkingv1.IngressRule{Host: h, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
			Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: &prefix, Backend: backend}},
		}}}
	}
	ings := kube.NetworkingV1().Ingresses(ns)
	shop := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Annotations: map[string]string{
			"cert-manager.io/issuer":                "pebble",
			"cert-manager.io/private-key-algorithm": "ECDSA",
		}},
		Spec: networkingv1.IngressSpec{
			IngressClassName: ptr.To(env.IngressClass),
			TLS: []networkingv1.IngressTLS{
				{Hosts: []string{"shop." + host, "www.shop." + host}, SecretName: "shop-tls"},
				{Hosts: []string{"api." + host}, SecretName: "api-tls"},
			},
			Rules: []networkingv1.IngressRule{rule("shop." + host), rule("www.shop." + host), rule("api." + host)},
		},
	}
	if _, err := ings.Create(t.Context(), shop, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	out := mustACME(t, env.Kubeconfig, "issue", "--ingress", "shop", "-n", ns, "--connect-to", env.IngressHTTP)
	wantAll(t, "issue --ingress", out, "certificate/shop-tls issued: secret/shop-tls", "certificate/api-tls issued: secret/api-tls")
	leaf := verifySecret(t, ns, "shop-tls", []string{"shop." + host, "www.shop." + host})
	if leaf.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("cert-manager.io/private-key-algorithm ignored: %v", leaf.PublicKeyAlgorithm)
	}
	verifySecret(t, ns, "api-tls", []string{"api." + host})
	out = mustACME(t, env.Kubeconfig, "status", "-n", ns)
	wantAll(t, "status", out, "shop-tls", "api-tls", "Issuer/pebble")

	// Edit in place, issuer from the flag: the challenge goes through the
	// Ingress itself, which ends as it was.
	inplace := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "inplace", Annotations: map[string]string{"acme.cert-manager.io/http01-edit-in-place": "true"}},
		Spec: networkingv1.IngressSpec{
			IngressClassName: ptr.To(env.IngressClass),
			TLS:              []networkingv1.IngressTLS{{Hosts: []string{"inplace." + host}, SecretName: "inplace"}},
			Rules:            []networkingv1.IngressRule{rule("inplace." + host)},
		},
	}
	if _, err := ings.Create(t.Context(), inplace, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, _ := ings.Get(t.Context(), "inplace", metav1.GetOptions{})
	before, _ := json.Marshal(got.Spec)
	_, errOut, code := acmeCmd(t, env.Kubeconfig, "issue", "--ingress", "inplace", "-n", ns, "--issuer", "pebble", "--connect-to", env.IngressHTTP)
	if code != 0 {
		t.Fatalf("issue --ingress inplace: %s", errOut)
	}
	wantAll(t, "progress", errOut, "challenge path(s) to ingress "+ns+"/inplace")
	verifySecret(t, ns, "inplace", []string{"inplace." + host})
	got, _ = ings.Get(t.Context(), "inplace", metav1.GetOptions{})
	if after, _ := json.Marshal(got.Spec); !bytes.Equal(after, before) {
		t.Errorf("ingress spec changed:\nbefore %s\nafter  %s", before, after)
	}
	assertNoLabeledSolverObjects(t, ns)

	// No issuer anywhere.
	if _, err := ings.Create(t.Context(), &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "bare"},
		Spec:       networkingv1.IngressSpec{TLS: []networkingv1.IngressTLS{{Hosts: []string{"bare." + host}, SecretName: "bare"}}, Rules: []networkingv1.IngressRule{rule("bare." + host)}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = acmeCmd(t, env.Kubeconfig, "issue", "--ingress", "bare", "-n", ns)
	if code == 0 || !strings.Contains(errOut, "no issuer: give --issuer, or annotate the Ingress with cert-manager.io/issuer") {
		t.Errorf("exit %d: %s", code, errOut)
	}
}
