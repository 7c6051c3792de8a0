package simnode

import (
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
)

func TestGKERouting(t *testing.T) {
	impl, exact := networkingv1.PathTypeImplementationSpecific, networkingv1.PathTypeExact
	ing := func(name, class string, paths ...networkingv1.HTTPIngressPath) *networkingv1.Ingress {
		i := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", ResourceVersion: "1"}}
		if class != "" {
			i.Annotations = map[string]string{ingressClassAnnotation: class}
		} else {
			i.Spec.IngressClassName = new(string)
			*i.Spec.IngressClassName = "nginx"
		}
		i.Spec.Rules = []networkingv1.IngressRule{{Host: "a.example", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: paths}}}}
		return i
	}
	p := func(t *networkingv1.PathType, path, svc string) networkingv1.HTTPIngressPath {
		return networkingv1.HTTPIngressPath{Path: path, PathType: t, Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: svc}}}
	}
	rec := record.NewFakeRecorder(10)
	g := newGKEController(rec)
	g.rebuild([]*networkingv1.Ingress{
		ing("gce", "gce", p(&impl, "/exact", "exact"), p(&impl, "/pre/*", "pre"), p(&impl, "/pre/deeper/*", "deeper")),
		ing("mixed", "gce-internal", p(&impl, "/mixed", "mixed"), p(&exact, "/mixed2", "mixed")),
		ing("nginx", "", p(&impl, "/nginx", "nginx")),
	})
	for _, tt := range []struct{ path, svc string }{
		{"/exact", "exact"}, {"/exact/x", ""}, {"/pre/x", "pre"}, {"/pre", ""}, {"/pre/deeper/x", "deeper"},
		{"/mixed", ""}, // the Exact path fails the whole Ingress
		{"/nginx", ""}, // another controller's
	} {
		r, ok := g.match("a.example:80", tt.path)
		got := ""
		if ok {
			got = r.backend.Service.Name
		}
		if got != tt.svc {
			t.Errorf("%s routed to %q, want %q", tt.path, got, tt.svc)
		}
	}
	if len(rec.Events) != 1 {
		t.Fatalf("%d events, want 1", len(rec.Events))
	}
	if ev := <-rec.Events; ev != `Warning Translate Translation failed: invalid ingress spec: only "ImplementationSpecific" path type is supported` {
		t.Errorf("event %q", ev)
	}
	// The same Ingress again: no second event.
	g.rebuild([]*networkingv1.Ingress{ing("mixed", "gce-internal", p(&exact, "/mixed2", "mixed"))})
	if len(rec.Events) != 0 {
		t.Errorf("event repeated for an unchanged Ingress")
	}
}
