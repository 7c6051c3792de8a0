package e2e

import (
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// TestPathTypeApplyNginx: `apply -f` through class nginx, with a created
// solver Ingress and with the paths added to the user's Ingress
// (http01.ingress.name), both ImplementationSpecific, nothing left.
func TestPathTypeApplyNginx(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	v := varsFor(t, ns)
	prefix := networkingv1.PathTypePrefix
	web := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: networkingv1.IngressSpec{
			IngressClassName: ptr.To(v.Class),
			Rules: []networkingv1.IngressRule{{Host: v.Host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
				Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: &prefix, Backend: networkingv1.IngressBackend{
					Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}},
				}}},
			}}}},
		},
	}
	if _, err := kube.NetworkingV1().Ingresses(ns).Create(t.Context(), web, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	docs := renderManifest(t, dir, "v1-docs.yaml", v)
	existing := renderManifest(t, dir, "existing-ingress.yaml", v)
	pw := watchPathTypes(t, ns)
	_, errOut := mustApply(t, nil, "-n", ns, "-f", docs, "-f", existing, "--agree-tos", "--connect-to", env.IngressHTTP)
	wantAll(t, "progress", errOut, "pathType ImplementationSpecific")
	verifySecret(t, ns, "example-com-tls", []string{v.Host, "www." + v.Host})
	verifySecret(t, ns, "web-tls", []string{v.Host, "www." + v.Host})
	pw.only(t, networkingv1.PathTypeImplementationSpecific)
	assertNoLabeledSolverObjects(t, ns)
	got, err := kube.NetworkingV1().Ingresses(ns).Get(t.Context(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(got.Spec.Rules[0].HTTP.Paths); n != 1 {
		t.Errorf("ingress web has %d paths after apply, want its own 1", n)
	}
}
