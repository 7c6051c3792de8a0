package harness

import (
	"context"
	"net/http"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	testenv "github.com/kubectl-acme/kubectl-acme/test/env"
)

// TestSimnodeNginxAdmission checks the environment's stand-in for
// ingress-nginx's admission webhook: the real API server denies an Ingress
// of class nginx whose Exact or Prefix path has a character outside
// ingress-nginx's validPathType, with the webhook's name and message, and
// admits ImplementationSpecific paths and other classes' Ingresses.
func TestSimnodeNginxAdmission(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ings := kube.NetworkingV1().Ingresses(ns)
	mk := func(name string, class *string, annotations map[string]string, typ networkingv1.PathType, path string) *networkingv1.Ingress {
		return &networkingv1.Ingress{
			ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations},
			Spec: networkingv1.IngressSpec{
				IngressClassName: class,
				Rules: []networkingv1.IngressRule{{Host: "a.example", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
					Paths: []networkingv1.HTTPIngressPath{{Path: path, PathType: &typ, Backend: networkingv1.IngressBackend{
						Service: &networkingv1.IngressServiceBackend{Name: "x", Port: networkingv1.ServiceBackendPort{Number: 80}},
					}}},
				}}}},
			},
		}
	}
	nginx := ptr.To(env.IngressClass)
	legacy := map[string]string{"kubernetes.io/ingress.class": env.IngressClass}
	exact, prefix, impl := networkingv1.PathTypeExact, networkingv1.PathTypePrefix, networkingv1.PathTypeImplementationSpecific
	tests := []struct {
		name    string
		ing     *networkingv1.Ingress
		allowed bool
	}{
		{"exact path with a dot", mk("a", nginx, nil, exact, "/.well-known/acme-challenge/tok"), false},
		{"prefix path with a dot", mk("b", nginx, nil, prefix, "/a.b"), false},
		{"exact path with a regex", mk("c", nginx, nil, exact, "/api/(.*)"), false},
		{"legacy annotation", mk("d", nil, legacy, exact, "/.well-known/acme-challenge/tok"), false},
		// The DefaultIngressClass plugin sets the default class, nginx.
		{"no class", mk("e", nil, nil, exact, "/.well-known/acme-challenge/tok"), false},
		{"exact path of letters, digits, - _ /", mk("f", nginx, nil, exact, "/Ab-9_/x"), true},
		{"ImplementationSpecific path with a dot", mk("g", nginx, nil, impl, "/.well-known/acme-challenge/tok"), true},
		{"another class", mk("h", ptr.To("traefik"), nil, exact, "/.well-known/acme-challenge/tok"), true},
	}
	for _, tt := range tests {
		_, err := ings.Create(t.Context(), tt.ing, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		switch {
		case tt.allowed && err != nil:
			t.Errorf("%s: denied: %v", tt.name, err)
		case !tt.allowed && err == nil:
			t.Errorf("%s: admitted", tt.name)
		case !tt.allowed:
			msg := err.Error()
			p := tt.ing.Spec.Rules[0].HTTP.Paths[0]
			for _, want := range []string{testenv.NginxAdmissionPolicy, "ingress contains invalid paths: path " + p.Path + " cannot be used with pathType " + string(*p.PathType)} {
				if !strings.Contains(msg, want) {
					t.Errorf("%s: denial %q lacks %q", tt.name, msg, want)
				}
			}
		}
	}

	// UPDATE is judged too: an existing Ingress cannot gain such a path,
	// which is what edit-in-place (http01.ingress.name) does.
	if _, err := ings.Create(t.Context(), mk("web", nginx, nil, prefix, "/"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// simnode writes the Ingress's status meanwhile.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		ok, err := ings.Get(t.Context(), "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		ok.Spec.Rules[0].HTTP.Paths = append(ok.Spec.Rules[0].HTTP.Paths, mk("", nil, nil, exact, "/.well-known/acme-challenge/tok").Spec.Rules[0].HTTP.Paths[0])
		_, err = ings.Update(t.Context(), ok, metav1.UpdateOptions{})
		return err
	})
	if err == nil || !strings.Contains(err.Error(), testenv.NginxAdmissionPolicy) {
		t.Errorf("update adding an Exact path with a dot: %v, want a denial by %s", err, testenv.NginxAdmissionPolicy)
	}
}

// TestSimnodeGKE checks the GKE-like class: ImplementationSpecific paths
// are URL map rules (exact, or a prefix with "/*"), and an Ingress with
// any other path type is not routed at all and gets ingress-gce's
// Translate event.
func TestSimnodeGKE(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ctx, cancel := context.WithTimeout(t.Context(), simTimeout)
	defer cancel()
	o := newSimObjects(ns)
	o.ing.Spec.IngressClassName = nil
	o.ing.Annotations = map[string]string{"kubernetes.io/ingress.class": gkeClass}
	impl := networkingv1.PathTypeImplementationSpecific
	wild := o.ing.Spec.Rules[0].HTTP.Paths[0]
	wild.Path, wild.PathType = "/.well-known/acme-challenge/sub/*", &impl
	// A Service that does not exist: a route to it answers 503.
	wild.Backend = networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "missing", Port: networkingv1.ServiceBackendPort{Number: 80}}}
	o.ing.Spec.Rules[0].HTTP.Paths = append(o.ing.Spec.Rules[0].HTTP.Paths, wild)
	o.create(ctx, t, ns)
	waitSimServed(ctx, t, o.host, simPath, o.body)
	for _, tt := range []struct {
		path string
		code int
	}{
		{simPath + "x", http.StatusNotFound}, // an exact rule, no prefix match
		{"/.well-known/acme-challenge/sub/x", http.StatusServiceUnavailable},
		{"/.well-known/acme-challenge/sub", http.StatusNotFound}, // "/sub/*" is not "/sub"
	} {
		code, _, err := simGet(ctx, o.host, tt.path)
		if err != nil || code != tt.code {
			t.Errorf("GET %s = %d, %v; want %d", tt.path, code, err, tt.code)
		}
	}

	// Exact: the whole Ingress is not translated; an event says why.
	exact := networkingv1.PathTypeExact
	bad := o.ing.DeepCopy()
	bad.ObjectMeta = metav1.ObjectMeta{Name: "exact", Annotations: bad.Annotations}
	bad.Spec.Rules[0].Host = "exact." + o.host
	bad.Spec.Rules[0].HTTP.Paths = bad.Spec.Rules[0].HTTP.Paths[:1]
	bad.Spec.Rules[0].HTTP.Paths[0].PathType = &exact
	if _, err := kube.NetworkingV1().Ingresses(ns).Create(ctx, bad, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	simWaitEvent(ctx, t, ns, "exact", "Translate")
	evs, err := kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=exact,reason=Translate"})
	if err != nil || len(evs.Items) == 0 {
		t.Fatalf("Translate events: %v", err)
	}
	ev := evs.Items[0]
	if ev.Type != "Warning" || ev.Source.Component != "loadbalancer-controller" ||
		ev.Message != `Translation failed: invalid ingress spec: only "ImplementationSpecific" path type is supported` {
		t.Errorf("event %s %s from %s: %q", ev.Type, ev.Reason, ev.Source.Component, ev.Message)
	}
	simAssertNotServed(t, "exact."+o.host, simPath, o.body, http.StatusNotFound)
}
