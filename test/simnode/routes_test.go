package simnode

import (
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestPathMatches(t *testing.T) {
	// The Prefix and Exact rows are the examples table of the Ingress
	// documentation.
	tests := []struct {
		typ        networkingv1.PathType
		rule, req  string
		wantsMatch bool
	}{
		{networkingv1.PathTypePrefix, "/", "/", true},
		{networkingv1.PathTypePrefix, "/", "/anything/at/all", true},
		{networkingv1.PathTypeExact, "/foo", "/foo", true},
		{networkingv1.PathTypeExact, "/foo", "/bar", false},
		{networkingv1.PathTypeExact, "/foo", "/foo/", false},
		{networkingv1.PathTypeExact, "/foo/", "/foo", false},
		{networkingv1.PathTypePrefix, "/foo", "/foo", true},
		{networkingv1.PathTypePrefix, "/foo", "/foo/", true},
		{networkingv1.PathTypePrefix, "/foo/", "/foo", true},
		{networkingv1.PathTypePrefix, "/foo/", "/foo/", true},
		{networkingv1.PathTypePrefix, "/aaa/bb", "/aaa/bbb", false},
		{networkingv1.PathTypePrefix, "/aaa/bbb", "/aaa/bbb", true},
		{networkingv1.PathTypePrefix, "/aaa/bbb/", "/aaa/bbb", true},
		{networkingv1.PathTypePrefix, "/aaa/bbb", "/aaa/bbb/", true},
		{networkingv1.PathTypePrefix, "/aaa/bbb", "/aaa/bbb/ccc", true},
		{networkingv1.PathTypePrefix, "/aaa/bbb", "/aaa/bbbxyz", false},
		// ingress-nginx's ImplementationSpecific is a plain string prefix.
		{networkingv1.PathTypeImplementationSpecific, "/aaa/bbb", "/aaa/bbbxyz", true},
		{networkingv1.PathTypeImplementationSpecific, "/aaa/bbb", "/aaa/bb", false},
	}
	for _, tt := range tests {
		if got := pathMatches(tt.typ, tt.rule, tt.req); got != tt.wantsMatch {
			t.Errorf("pathMatches(%s, %q, %q) = %v, want %v", tt.typ, tt.rule, tt.req, got, tt.wantsMatch)
		}
	}
}

func ingress(name string, age int, class *string, rules ...networkingv1.IngressRule) *networkingv1.Ingress {
	return &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: "ns",
			CreationTimestamp: metav1.NewTime(time.Unix(int64(1000-age), 0)),
		},
		Spec: networkingv1.IngressSpec{IngressClassName: class, Rules: rules},
	}
}

func rule(host string, paths ...networkingv1.HTTPIngressPath) networkingv1.IngressRule {
	return networkingv1.IngressRule{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: paths}}}
}

func httpPath(typ networkingv1.PathType, p, svc string) networkingv1.HTTPIngressPath {
	return networkingv1.HTTPIngressPath{
		Path: p, PathType: &typ,
		Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: svc, Port: networkingv1.ServiceBackendPort{Number: 80}}},
	}
}

func TestRouteMatch(t *testing.T) {
	exact, prefix := networkingv1.PathTypeExact, networkingv1.PathTypePrefix
	ings := []*networkingv1.Ingress{
		ingress("old", 10, nil,
			rule("foo.example", httpPath(prefix, "/", "foo-root"), httpPath(prefix, "/app", "foo-app"), httpPath(exact, "/app/x", "foo-exact")),
			rule("*.wild.example", httpPath(prefix, "/", "wild")),
			rule("", httpPath(prefix, "/.well-known", "any-prefix"))),
		ingress("new", 1, nil,
			rule("foo.example", httpPath(exact, "/app", "foo-app-exact"), httpPath(prefix, "/app", "foo-app-newer")),
			rule("", httpPath(exact, "/.well-known/acme-challenge/tok", "any-exact"))),
	}
	table := buildRoutes(ings)
	tests := []struct {
		name, host, path string
		want             string // backend service, "" for no match
	}{
		{"exact host, prefix root", "foo.example", "/other", "foo-root"},
		{"host is case-insensitive and port is ignored", "FOO.example:8080", "/other", "foo-root"},
		{"longest prefix wins", "foo.example", "/app/y", "foo-app"},
		{"exact beats prefix of equal length", "foo.example", "/app", "foo-app-exact"},
		{"exact path", "foo.example", "/app/x", "foo-exact"},
		{"prefix is element-wise", "foo.example", "/apple", "foo-root"},
		{"older ingress wins a tie", "foo.example", "/app/", "foo-app"},
		{"wildcard matches one label", "a.wild.example", "/", "wild"},
		{"wildcard does not match two labels", "a.b.wild.example", "/", ""},
		{"wildcard does not match the bare domain", "wild.example", "/", ""},
		{"unknown host uses rules without host", "other.example", "/.well-known/x", "any-prefix"},
		{"exact beats prefix across ingresses", "other.example", "/.well-known/acme-challenge/tok", "any-exact"},
		{"IP literal uses rules without host", "127.0.0.1:5002", "/.well-known/acme-challenge/tok", "any-exact"},
		{"IPv6 literal uses rules without host", "[::1]:80", "/.well-known/y", "any-prefix"},
		{"known host does not fall back to rules without host", "foo.example", "/.well-known/acme-challenge/tok", "foo-root"},
		{"no rule", "other.example", "/nothing", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ok := table.match(tt.host, tt.path)
			got := ""
			if ok {
				got = r.backend.Service.Name
			}
			if got != tt.want {
				t.Errorf("match(%q, %q) = %q, want %q", tt.host, tt.path, got, tt.want)
			}
		})
	}
}

func TestDefaultBackend(t *testing.T) {
	prefix := networkingv1.PathTypePrefix
	ing := ingress("d", 1, nil, rule("foo.example", httpPath(prefix, "/app", "app")))
	ing.Spec.DefaultBackend = &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "fallback"}}
	table := buildRoutes([]*networkingv1.Ingress{ing})
	for host, want := range map[string]string{"foo.example": "fallback", "bar.example": "fallback"} {
		r, ok := table.match(host, "/x")
		if !ok || r.backend.Service.Name != want {
			t.Errorf("match(%q, /x) = %v %v, want %s", host, r, ok, want)
		}
	}
	if r, _ := table.match("foo.example", "/app/1"); r.backend.Service.Name != "app" {
		t.Errorf("a path rule must beat the default backend, got %s", r.backend.Service.Name)
	}
}

func TestServesIngress(t *testing.T) {
	defaultClass := func(name, controller string) *networkingv1.IngressClass {
		return &networkingv1.IngressClass{
			ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{defaultClassAnnotation: "true"}},
			Spec:       networkingv1.IngressClassSpec{Controller: controller},
		}
	}
	annotated := func(v string) *networkingv1.Ingress {
		ing := ingress("a", 1, nil)
		ing.Annotations = map[string]string{ingressClassAnnotation: v}
		return ing
	}
	tests := []struct {
		name    string
		ing     *networkingv1.Ingress
		classes []*networkingv1.IngressClass
		want    bool
	}{
		{"class name matches", ingress("a", 1, ptr.To("nginx")), nil, true},
		{"class name differs", ingress("a", 1, ptr.To("traefik")), nil, false},
		{"legacy annotation matches", annotated("nginx"), nil, true},
		{"legacy annotation differs", annotated("other"), nil, false},
		{"no class, no default", ingress("a", 1, nil), nil, false},
		{"no class, our class is default", ingress("a", 1, nil), []*networkingv1.IngressClass{defaultClass("nginx", nginxController)}, true},
		{"no class, default of another controller", ingress("a", 1, nil), []*networkingv1.IngressClass{defaultClass("nginx", "example.com/other")}, false},
		{"no class, another default class", ingress("a", 1, nil), []*networkingv1.IngressClass{defaultClass("public", nginxController)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := servesIngress(tt.ing, "nginx", tt.classes); got != tt.want {
				t.Errorf("servesIngress = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestLoopbackHost(t *testing.T) {
	for addr, want := range map[string]string{"127.0.0.1:80": "127.0.0.1", "localhost:80": "127.0.0.1", "127.0.0.5:0": "127.0.0.5"} {
		if got, err := loopbackHost(addr); err != nil || got != want {
			t.Errorf("loopbackHost(%q) = %q, %v; want %q", addr, got, err, want)
		}
	}
	for _, addr := range []string{":80", "0.0.0.0:80", "192.0.2.1:80", "nonsense"} {
		if _, err := loopbackHost(addr); err == nil {
			t.Errorf("loopbackHost(%q): want an error", addr)
		}
	}
}
