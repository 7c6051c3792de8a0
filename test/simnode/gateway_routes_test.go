package simnode

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

func testGateway(ns, name string, listeners ...gatewayv1.Listener) *gatewayv1.Gateway {
	return &gatewayv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       gatewayv1.GatewaySpec{GatewayClassName: "sim", Listeners: listeners},
	}
}

func listener(name string, port gatewayv1.PortNumber, from gatewayv1.FromNamespaces, hostname string) gatewayv1.Listener {
	l := gatewayv1.Listener{
		Name: gatewayv1.SectionName(name), Port: port, Protocol: gatewayv1.HTTPProtocolType,
		AllowedRoutes: &gatewayv1.AllowedRoutes{Namespaces: &gatewayv1.RouteNamespaces{From: &from}},
	}
	if hostname != "" {
		l.Hostname = ptr.To(gatewayv1.Hostname(hostname))
	}
	return l
}

func testRoute(ns, name string, age int, parent gatewayv1.ParentReference, hosts []string, rules ...gatewayv1.HTTPRouteRule) *gatewayv1.HTTPRoute {
	hr := &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Generation: 1, CreationTimestamp: metav1.NewTime(time.Unix(int64(1000-age), 0))},
		Spec:       gatewayv1.HTTPRouteSpec{CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{parent}}, Rules: rules},
	}
	for _, h := range hosts {
		hr.Spec.Hostnames = append(hr.Spec.Hostnames, gatewayv1.Hostname(h))
	}
	return hr
}

func gwRule(typ gatewayv1.PathMatchType, path, svc string) gatewayv1.HTTPRouteRule {
	return gatewayv1.HTTPRouteRule{
		Matches: []gatewayv1.HTTPRouteMatch{{Path: &gatewayv1.HTTPPathMatch{Type: &typ, Value: ptr.To(path)}}},
		BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{
			Name: gatewayv1.ObjectName(svc), Port: ptr.To(gatewayv1.PortNumber(80)),
		}}}},
	}
}

func parentRef(ns, name string) gatewayv1.ParentReference {
	p := gatewayv1.ParentReference{Name: gatewayv1.ObjectName(name)}
	if ns != "" {
		p.Namespace = ptr.To(gatewayv1.Namespace(ns))
	}
	return p
}

func gatewayTestInputs(routes ...*gatewayv1.HTTPRoute) gatewayInputs {
	return gatewayInputs{
		class: "sim",
		classes: []*gatewayv1.GatewayClass{
			{ObjectMeta: metav1.ObjectMeta{Name: "sim"}, Spec: gatewayv1.GatewayClassSpec{ControllerName: GatewayControllerName}},
			{ObjectMeta: metav1.ObjectMeta{Name: "other"}, Spec: gatewayv1.GatewayClassSpec{ControllerName: "example.com/other"}},
		},
		gateways: []*gatewayv1.Gateway{
			testGateway("gw", "all", listener("http", 80, gatewayv1.NamespacesFromAll, "")),
			testGateway("gw", "same", listener("http", 80, gatewayv1.NamespacesFromSame, "")),
			testGateway("gw", "hosted", listener("http", 80, gatewayv1.NamespacesFromAll, "*.example.com"), listener("alt", 8080, gatewayv1.NamespacesFromAll, "")),
			{ObjectMeta: metav1.ObjectMeta{Name: "foreign", Namespace: "gw"}, Spec: gatewayv1.GatewaySpec{GatewayClassName: "other",
				Listeners: []gatewayv1.Listener{listener("http", 80, gatewayv1.NamespacesFromAll, "")}}},
		},
		routes:          routes,
		services:        map[string]bool{"app/svc": true, "app/old": true, "app/new": true, "gw/svc": true},
		namespaceLabels: map[string]labels.Set{"app": {"team": "a"}},
	}
}

func TestGatewayAttachment(t *testing.T) {
	exact := gatewayv1.PathMatchExact
	withSection := func(p gatewayv1.ParentReference, s string) gatewayv1.ParentReference {
		p.SectionName = ptr.To(gatewayv1.SectionName(s))
		return p
	}
	withPort := func(p gatewayv1.ParentReference, port gatewayv1.PortNumber) gatewayv1.ParentReference {
		p.Port = &port
		return p
	}
	tests := []struct {
		name   string
		route  *gatewayv1.HTTPRoute
		reason string // Accepted reason; "" for no status from simnode
		host   string // a request that must be routed when accepted
	}{
		{"attached to a Gateway admitting all namespaces", testRoute("app", "r", 1, parentRef("gw", "all"), []string{"a.test"}, gwRule(exact, "/x", "svc")), "Accepted", "a.test"},
		{"parentRef namespace defaults to the route's", testRoute("app", "r", 1, parentRef("", "all"), []string{"a.test"}, gwRule(exact, "/x", "svc")), "", ""},
		{"Gateway of another class", testRoute("app", "r", 1, parentRef("gw", "foreign"), nil, gwRule(exact, "/x", "svc")), "", ""},
		{"Gateway that does not exist", testRoute("app", "r", 1, parentRef("gw", "nope"), nil, gwRule(exact, "/x", "svc")), "", ""},
		{"listener admits the same namespace only", testRoute("app", "r", 1, parentRef("gw", "same"), nil, gwRule(exact, "/x", "svc")), "NotAllowedByListeners", ""},
		{"same namespace is admitted", testRoute("gw", "r", 1, parentRef("gw", "same"), nil, gwRule(exact, "/x", "svc")), "Accepted", "any.test"},
		{"hostname outside the listener's wildcard", testRoute("app", "r", 1, withSection(parentRef("gw", "hosted"), "http"), []string{"a.test"}, gwRule(exact, "/x", "svc")), "NoMatchingListenerHostname", ""},
		{"hostname inside the listener's wildcard", testRoute("app", "r", 1, withSection(parentRef("gw", "hosted"), "http"), []string{"a.b.example.com"}, gwRule(exact, "/x", "svc")), "Accepted", "a.b.example.com"},
		{"no route hostname takes the listener's", testRoute("app", "r", 1, withSection(parentRef("gw", "hosted"), "http"), nil, gwRule(exact, "/x", "svc")), "Accepted", "w.example.com"},
		{"sectionName names no listener", testRoute("app", "r", 1, withSection(parentRef("gw", "all"), "https"), nil, gwRule(exact, "/x", "svc")), "NoMatchingParent", ""},
		{"port selects a listener", testRoute("app", "r", 1, withPort(parentRef("gw", "hosted"), 8080), []string{"a.test"}, gwRule(exact, "/x", "svc")), "Accepted", "a.test"},
		{"port of no listener", testRoute("app", "r", 1, withPort(parentRef("gw", "all"), 8080), nil, gwRule(exact, "/x", "svc")), "NoMatchingParent", ""},
		{"RegularExpression path is not supported", testRoute("app", "r", 1, parentRef("gw", "all"), nil, gwRule(gatewayv1.PathMatchRegularExpression, "/x.*", "svc")), "UnsupportedValue", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := computeGateway(gatewayTestInputs(tt.route))
			ps := st.parents["app/r"]
			if tt.route.Namespace == "gw" {
				ps = st.parents["gw/r"]
			}
			if tt.reason == "" {
				if len(ps) != 0 {
					t.Fatalf("simnode wrote status %+v for a parent it does not own", ps)
				}
			} else {
				if len(ps) != 1 {
					t.Fatalf("parents = %+v, want one", ps)
				}
				if got := ps[0].Conditions[0].Reason; got != tt.reason {
					t.Fatalf("Accepted reason = %s (%s), want %s", got, ps[0].Conditions[0].Message, tt.reason)
				}
			}
			_, routed := st.table.match(tt.host, "/x")
			if routed != (tt.host != "") {
				t.Errorf("match(%q, /x) = %v, want %v; table %v", tt.host, routed, tt.host != "", st.table.describe())
			}
		})
	}
}

func TestGatewayRouteMatch(t *testing.T) {
	exact, prefix := gatewayv1.PathMatchExact, gatewayv1.PathMatchPathPrefix
	all := parentRef("gw", "all")
	routes := []*gatewayv1.HTTPRoute{
		testRoute("app", "old", 10, all, []string{"foo.example"},
			gwRule(prefix, "/", "old"), gwRule(prefix, "/app", "old"), gwRule(exact, "/app/x", "svc")),
		testRoute("app", "new", 1, all, []string{"foo.example", "*.wild.example"},
			gwRule(prefix, "/app", "new"), gwRule(exact, "/exact", "new")),
		testRoute("app", "any", 5, all, nil, gwRule(prefix, "/.well-known", "svc")),
		testRoute("app", "broken", 5, all, []string{"broken.example"}, gwRule(exact, "/x", "missing")),
	}
	st := computeGateway(gatewayTestInputs(routes...))
	tests := []struct {
		name, host, path string
		want             string // backend service; "500" for an invalid backend, "" for no match
	}{
		{"exact path", "foo.example", "/app/x", "svc"},
		{"older route wins a tie", "foo.example", "/app/y", "old"},
		{"longest prefix", "foo.example", "/app/y/z", "old"},
		{"prefix is element-wise", "foo.example", "/apple", "old"},
		{"wildcard spans labels", "a.b.wild.example", "/exact", "new"},
		{"wildcard needs a label", "wild.example", "/exact", ""},
		{"host is case-insensitive, port ignored", "FOO.example:80", "/exact", "new"},
		{"route without hostnames takes any host", "other.example", "/.well-known/acme-challenge/t", "svc"},
		{"a matching hostname beats a route without one", "foo.example", "/.well-known/x", "old"},
		{"IP literal only matches routes without hostnames", "127.0.0.1", "/.well-known/x", "svc"},
		{"missing Service answers 500", "broken.example", "/x", "500"},
		{"no match", "other.example", "/nothing", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ok := st.table.match(tt.host, tt.path)
			got := ""
			switch {
			case ok && r.invalid != "":
				got = "500"
			case ok:
				got = r.backends[0].service
			}
			if got != tt.want {
				t.Errorf("match(%q, %q) = %q (%s), want %q", tt.host, tt.path, got, r, tt.want)
			}
		})
	}
	if n := st.attached["gw/all"]["http"]; n != int32(len(routes)) {
		t.Errorf("attachedRoutes = %d, want %d", n, len(routes))
	}
}

func TestIntersectHostnames(t *testing.T) {
	tests := []struct {
		listener string
		route    []gatewayv1.Hostname
		want     []string
		ok       bool
	}{
		{"", nil, nil, true},
		{"", []gatewayv1.Hostname{"A.test"}, []string{"a.test"}, true},
		{"a.test", nil, []string{"a.test"}, true},
		{"*.test", []gatewayv1.Hostname{"a.test", "b.other"}, []string{"a.test"}, true},
		{"a.b.test", []gatewayv1.Hostname{"*.test"}, []string{"a.b.test"}, true},
		{"*.test", []gatewayv1.Hostname{"test"}, nil, false},
		{"a.test", []gatewayv1.Hostname{"b.test"}, nil, false},
	}
	for _, tt := range tests {
		var l *gatewayv1.Hostname
		if tt.listener != "" {
			l = ptr.To(gatewayv1.Hostname(tt.listener))
		}
		got, ok := intersectHostnames(l, tt.route)
		if ok != tt.ok || len(got) != len(tt.want) || (len(got) > 0 && got[0] != tt.want[0]) {
			t.Errorf("intersectHostnames(%q, %v) = %v %v, want %v %v", tt.listener, tt.route, got, ok, tt.want, tt.ok)
		}
	}
}
