package solver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubectl-acme/kubectl-acme/acme"
)

func TestHTTPRoutes(t *testing.T) {
	owner := &metav1.OwnerReference{APIVersion: "v1", Kind: "Pod", Name: "acme-solver-web-x", UID: "uid"}
	parents := []gatewayv1.ParentReference{{Name: "gw", Namespace: ptr.To(gatewayv1.Namespace("infra")), SectionName: ptr.To(gatewayv1.SectionName("http"))}}
	chal := func(id, token string) acme.Challenge { return acme.Challenge{Identifier: id, Token: token} }
	many := make([]acme.Challenge, 17)
	for i := range many {
		many[i] = chal(fmt.Sprintf("n%d.example.com", i), fmt.Sprintf("t%d", i))
	}
	tests := []struct {
		name      string
		chals     []acme.Challenge
		labels    map[string]string
		wantNames []string
		wantHosts [][]string
		wantRules []int
	}{
		{"one name", []acme.Challenge{chal("a.example.com", "tokA")}, nil,
			[]string{"acme-solver-web-x"}, [][]string{{"a.example.com"}}, []int{1}},
		{"two names, issuer labels", []acme.Challenge{chal("a.example.com", "tokA"), chal("www.example.com", "tokW")}, map[string]string{"gateway": "public", LabelSolver: "spoofed"},
			[]string{"acme-solver-web-x"}, [][]string{{"a.example.com", "www.example.com"}}, []int{2}},
		{"more than 16 names split into routes", many, nil,
			[]string{"acme-solver-web-x", "acme-solver-web-x-2"}, nil, []int{16, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Config{Namespace: "ns", Name: "acme-solver-web-x", Certificate: "web", ParentRefs: parents, RouteLabels: tt.labels}
			routes := c.httpRoutes(tt.chals, owner, "2026-01-01T00:00:00Z")
			if len(routes) != len(tt.wantNames) {
				t.Fatalf("%d routes, want %d", len(routes), len(tt.wantNames))
			}
			i := 0
			for n, hr := range routes {
				if hr.Name != tt.wantNames[n] || hr.Namespace != "ns" || hr.Kind != "HTTPRoute" || hr.APIVersion != "gateway.networking.k8s.io/v1" {
					t.Errorf("route %d: %s/%s %s %s", n, hr.Namespace, hr.Name, hr.APIVersion, hr.Kind)
				}
				if len(hr.OwnerReferences) != 1 || hr.OwnerReferences[0].UID != "uid" {
					t.Errorf("route %d is not owned by the pod: %+v", n, hr.OwnerReferences)
				}
				if hr.Labels[LabelSolver] != c.Name || hr.Labels[LabelManagedBy] != ManagedByValue || hr.Annotations[AnnotationCreated] == "" {
					t.Errorf("route %d lacks the solver's labels: %v %v", n, hr.Labels, hr.Annotations)
				}
				for k, v := range tt.labels {
					if k != LabelSolver && hr.Labels[k] != v {
						t.Errorf("route %d lacks issuer label %s=%s", n, k, v)
					}
				}
				if len(hr.Spec.ParentRefs) != 1 || hr.Spec.ParentRefs[0].Name != "gw" || *hr.Spec.ParentRefs[0].SectionName != "http" {
					t.Errorf("route %d parentRefs %+v", n, hr.Spec.ParentRefs)
				}
				if tt.wantHosts != nil && fmt.Sprint(hr.Spec.Hostnames) != fmt.Sprint(tt.wantHosts[n]) {
					t.Errorf("route %d hostnames %v, want %v", n, hr.Spec.Hostnames, tt.wantHosts[n])
				}
				if len(hr.Spec.Rules) != tt.wantRules[n] || len(hr.Spec.Hostnames) > 16 {
					t.Fatalf("route %d: %d rules, %d hostnames; want %d rules", n, len(hr.Spec.Rules), len(hr.Spec.Hostnames), tt.wantRules[n])
				}
				for _, r := range hr.Spec.Rules {
					ch := tt.chals[i]
					i++
					m := r.Matches[0].Path
					if len(r.Matches) != 1 || *m.Type != gatewayv1.PathMatchExact || *m.Value != ChallengePath+ch.Token {
						t.Errorf("rule for %s: match %+v", ch.Token, r.Matches)
					}
					b := r.BackendRefs[0]
					if len(r.BackendRefs) != 1 || b.Name != gatewayv1.ObjectName(c.Name) || *b.Port != httpPort || b.Kind != nil || b.Namespace != nil {
						t.Errorf("rule for %s: backend %+v", ch.Token, r.BackendRefs)
					}
				}
			}
			if i != len(tt.chals) {
				t.Errorf("%d rules for %d challenges", i, len(tt.chals))
			}
			// The config's own parentRefs must not be shared with the routes.
			routes[0].Spec.ParentRefs[0].Name = "changed"
			if c.ParentRefs[0].Name != "gw" {
				t.Error("routes share the issuer's parentRefs")
			}
		})
	}
}

// A run's challenges in as few routes as the Gateway API's limits allow:
// 16 hostnames a route, one rule a hostname with all its tokens' paths
// (up to 64), 128 matches a route.
func TestHTTPRoutesFewest(t *testing.T) {
	c := &Config{Namespace: "ns", Name: "acme-solver-run-x"}
	var chals []acme.Challenge
	for i := range 40 {
		chals = append(chals, acme.Challenge{Identifier: fmt.Sprintf("n%d.example.com", i), Token: fmt.Sprintf("t%d", i)})
	}
	// Two orders of the run share a name: one rule, two matches.
	chals = append(chals, acme.Challenge{Identifier: "n0.example.com", Token: "again"})
	// A name with more tokens than one rule holds.
	for i := range 70 {
		chals = append(chals, acme.Challenge{Identifier: "busy.example.com", Token: fmt.Sprintf("b%d", i)})
	}
	routes := c.httpRoutes(chals, nil, "")
	served := map[string]bool{}
	for n, hr := range routes {
		total := 0
		if len(hr.Spec.Hostnames) > 16 || len(hr.Spec.Rules) > 16 {
			t.Errorf("route %d: %d hostnames, %d rules", n, len(hr.Spec.Hostnames), len(hr.Spec.Rules))
		}
		for _, r := range hr.Spec.Rules {
			if len(r.Matches) > 64 {
				t.Errorf("route %d: a rule of %d matches", n, len(r.Matches))
			}
			for _, m := range r.Matches {
				served[*m.Path.Value] = true
			}
			total += len(r.Matches)
		}
		if total > 128 {
			t.Errorf("route %d: %d matches", n, total)
		}
	}
	if len(served) != len(chals) {
		t.Errorf("%d of %d paths routed", len(served), len(chals))
	}
	// 41 hostnames: 3 routes; busy's 70 tokens fit the third's room.
	if len(routes) != 3 || len(routes[0].Spec.Rules) != 16 || len(routes[0].Spec.Rules[0].Matches) != 2 {
		t.Errorf("%d routes; first: %d rules, %d matches in its first", len(routes), len(routes[0].Spec.Rules), len(routes[0].Spec.Rules[0].Matches))
	}
}

// TestHTTPRouteWithoutCRD: a cluster without the Gateway API fails the
// solver with a plain message, and CleanUp removes the pod and Service
// already created.
func TestHTTPRouteWithoutCRD(t *testing.T) {
	ctx := context.Background()
	c := fake.NewClientset()
	dc := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{HTTPRoutes: "HTTPRouteList"})
	notServed := &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: 404, Reason: metav1.StatusReasonNotFound, Message: "the server could not find the requested resource"}}
	dc.PrependReactor("*", "httproutes", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, notServed })
	served := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{HTTPRoutes: "HTTPRouteList"})
	if err := HTTPRoutesServed(ctx, served, "ns"); err != nil {
		t.Errorf("HTTPRoutesServed with the CRD: %v", err)
	}
	if err := HTTPRoutesServed(ctx, dc, "ns"); !errors.Is(err, ErrHTTPRouteNotServed) {
		t.Errorf("HTTPRoutesServed without the CRD: %v", err)
	}
	s := &HTTPRoute{Workload: Workload{Client: c, Dynamic: dc, Config: Config{Namespace: "ns", Name: "acme-solver-web-x", Certificate: "web",
		ParentRefs: []gatewayv1.ParentReference{{Name: "gw"}}}}}
	err := s.Present(ctx, []acme.Challenge{{Identifier: "a.example.com", Token: "tok", KeyAuthorization: "tok.k"}})
	if !errors.Is(err, ErrHTTPRouteNotServed) || !strings.Contains(err.Error(), "install the Gateway API CRDs or use an http01.ingress solver") {
		t.Fatalf("Present without the CRD: %v", err)
	}
	if err := s.CleanUp(ctx); err != nil {
		t.Fatalf("CleanUp: %v", err)
	}
	pods, _ := c.CoreV1().Pods("ns").List(ctx, metav1.ListOptions{})
	svcs, _ := c.CoreV1().Services("ns").List(ctx, metav1.ListOptions{})
	if len(pods.Items)+len(svcs.Items) != 0 {
		t.Errorf("left %d pods, %d services", len(pods.Items), len(svcs.Items))
	}
	// An IP address never reaches the cluster.
	if err := s.Present(ctx, []acme.Challenge{{Identifier: "192.0.2.1", IsIP: true, Token: "tok"}}); err == nil || !strings.Contains(err.Error(), "IP address 192.0.2.1") {
		t.Errorf("Present with an IP address: %v", err)
	}
}

func TestDescribeRouteStatus(t *testing.T) {
	ns := gatewayv1.Namespace("infra")
	route := func(parents ...gatewayv1.RouteParentStatus) *gatewayv1.HTTPRoute {
		hr := &gatewayv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "acme-solver-web-x"}}
		hr.Spec.ParentRefs = []gatewayv1.ParentReference{{Name: "gw", Namespace: &ns}}
		hr.Status.Parents = parents
		return hr
	}
	cond := func(typ, status, reason string) metav1.Condition {
		return metav1.Condition{Type: typ, Status: metav1.ConditionStatus(status), Reason: reason, Message: "msg"}
	}
	parent := func(conds ...metav1.Condition) gatewayv1.RouteParentStatus {
		return gatewayv1.RouteParentStatus{ParentRef: gatewayv1.ParentReference{Name: "gw", Namespace: &ns}, ControllerName: "example.com/gw", Conditions: conds}
	}
	tests := []struct {
		name string
		hr   *gatewayv1.HTTPRoute
		want string
	}{
		{"no controller wrote status", route(), "no Gateway controller has accepted httproute app/acme-solver-web-x for parentRef infra/gw"},
		{"accepted and resolved", route(parent(cond("Accepted", "True", "Accepted"), cond("ResolvedRefs", "True", "ResolvedRefs"))), ""},
		{"not allowed by the listener", route(parent(cond("Accepted", "False", "NotAllowedByListeners"))), "on Gateway infra/gw (example.com/gw): Accepted NotAllowedByListeners: msg"},
		{"backend not found", route(parent(cond("Accepted", "True", "Accepted"), cond("ResolvedRefs", "False", "BackendNotFound"))), "ResolvedRefs BackendNotFound"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := describeRouteStatus(tt.hr)
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Errorf("describeRouteStatus = %q, want %q", got, tt.want)
			}
		})
	}
}
