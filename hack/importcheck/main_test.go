package main

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	m := func(rel string) string { return module + "/" + rel }
	cases := []struct {
		name string
		pkg  Package
		want string // substring of the one violation; "" for none
	}{
		{"acme on x/crypto only", Package{ImportPath: m("acme"), Imports: []string{"golang.org/x/crypto/acme"}, Deps: []string{"golang.org/x/crypto/acme"}}, ""},
		{"acme imports client-go", Package{ImportPath: m("acme"), Imports: []string{"k8s.io/client-go/kubernetes"}, Deps: []string{"k8s.io/client-go/kubernetes"}}, "acme imports k8s.io/client-go/kubernetes (directly)"},
		{"acme test variant reaches Kubernetes through certmanager", Package{ImportPath: m("acme") + " [" + m("acme") + ".test]", Imports: []string{m("certmanager")}, Deps: []string{m("certmanager"), "k8s.io/api/core/v1"}}, "imports " + m("certmanager") + " (directly)"},
		{"solver imports the store", Package{ImportPath: m("solver"), Imports: []string{m("internal/store")}, Deps: []string{m("internal/store")}}, "solvers create HTTP-01 objects"},
		{"solver imports kube", Package{ImportPath: m("solver"), Imports: []string{m("internal/kube")}, Deps: []string{m("internal/kube")}}, ""},
		{"internal/issuance imports plugin", Package{ImportPath: m("internal/issuance"), Imports: []string{m("plugin")}, Deps: []string{m("plugin")}}, "nothing below the commands"},
		{"plugin imports everything", Package{ImportPath: m("plugin"), Imports: []string{m("internal/issuance"), m("acme")}, Deps: []string{m("internal/issuance"), m("acme"), "k8s.io/client-go/kubernetes"}}, ""},
		{"a package named like a prefix is not under it", Package{ImportPath: m("acmeish"), Deps: []string{"k8s.io/api/core/v1"}}, ""},
		{"internal/storex is not internal/store", Package{ImportPath: m("solver"), Deps: []string{m("internal/storex")}}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Check([]Package{c.pkg}, Rules)
			if c.want == "" {
				if len(got) != 0 {
					t.Fatalf("want no violation, got %q", got)
				}
				return
			}
			if len(got) == 0 || !strings.Contains(strings.Join(got, "\n"), c.want) {
				t.Fatalf("want a violation containing %q, got %q", c.want, got)
			}
		})
	}
}
