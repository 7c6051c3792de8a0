package solver

import (
	"fmt"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
