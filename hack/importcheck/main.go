// Command importcheck fails when a package imports across the layers the
// README's layout section draws. make lint runs it over `go list -deps`.
//
//	plugin/                  cobra commands, options, printing        (top)
//	internal/issuance        the runner: store + acme + solver
//	internal/{manifest,status,store,rbac,kube}
//	solver/                  HTTP-01 objects and the self-check
//	acme/                    RFC 8555 + ARI: no Kubernetes, no cert-manager
//	certmanager/             cert-manager.io/v1 types             (ground)
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

const module = "github.com/kubectl-acme/kubectl-acme"

// Package is the part of `go list -json` the rules read.
type Package struct {
	ImportPath string
	Imports    []string // direct
	Deps       []string // transitive
}

// Rule forbids packages matching From (a module-relative path, "" for the
// root, a trailing "/..." for a subtree) to import, directly or through
// others, any path with one of the prefixes in Forbid. Prefixes starting
// with "./" are module-relative.
type Rule struct {
	From   string
	Forbid []string
	Why    string
}

// Rules is the layer diagram as import rules.
var Rules = []Rule{
	{From: "acme/...", Forbid: []string{"k8s.io/", "sigs.k8s.io/", "./certmanager", "./internal/", "./solver", "./plugin"},
		Why: "the ACME protocol layer knows nothing of Kubernetes or cert-manager"},
	{From: "certmanager/...", Forbid: []string{"./acme", "./internal/", "./solver", "./plugin"},
		Why: "cert-manager's resource types are the ground layer"},
	{From: "solver/...", Forbid: []string{"./internal/store", "./internal/issuance", "./internal/manifest", "./internal/rbac", "./plugin"},
		Why: "solvers create HTTP-01 objects; storage and the runner sit above them"},
	{From: "internal/kube", Forbid: []string{"./acme", "./certmanager", "./internal/", "./solver", "./plugin"},
		Why: "internal/kube is shared Kubernetes plumbing"},
	{From: "internal/manifest", Forbid: []string{"./acme", "./internal/store", "./internal/issuance", "./internal/rbac", "./solver", "./plugin"},
		Why: "reading manifests needs cert-manager's types only"},
	{From: "internal/store", Forbid: []string{"./internal/issuance", "./internal/rbac", "./internal/manifest", "./solver", "./plugin"},
		Why: "the store sits below the runner"},
	{From: "internal/status", Forbid: []string{"./internal/issuance", "./internal/rbac", "./internal/manifest", "./solver", "./plugin"},
		Why: "status reads what the store wrote; it issues nothing"},
	{From: "internal/rbac", Forbid: []string{"./internal/issuance", "./plugin"},
		Why: "rbac computes permissions; the runner and commands use it"},
	{From: "internal/...", Forbid: []string{"./plugin"},
		Why: "nothing below the commands imports them"},
	{From: "test/...", Forbid: []string{"./plugin"},
		Why: "tests drive the built binary, not the command package"},
	{From: "bench/...", Forbid: []string{"./plugin"},
		Why: "the bench drives the built binary"},
}

// Check returns one line per import that breaks a rule.
func Check(pkgs []Package, rules []Rule) []string {
	var out []string
	for _, p := range pkgs {
		rel, ok := relative(p.ImportPath)
		if !ok {
			continue
		}
		for _, r := range rules {
			if !matches(r.From, rel) {
				continue
			}
			for _, dep := range p.Deps {
				for _, f := range r.Forbid {
					if forbidden(f, dep) {
						via := "through another package"
						if contains(p.Imports, dep) {
							via = "directly"
						}
						out = append(out, fmt.Sprintf("%s imports %s (%s): %s", p.ImportPath, dep, via, r.Why))
						break
					}
				}
			}
		}
	}
	return out
}

func relative(path string) (string, bool) {
	// Test variants read "PKG [PKG.test]"; the rules are about PKG.
	path, _, _ = strings.Cut(path, " ")
	if path == module {
		return "", true
	}
	rel, ok := strings.CutPrefix(path, module+"/")
	return rel, ok
}

func matches(pattern, rel string) bool {
	if sub, ok := strings.CutSuffix(pattern, "/..."); ok {
		return rel == sub || strings.HasPrefix(rel, sub+"/")
	}
	return rel == pattern
}

func forbidden(prefix, dep string) bool {
	if local, ok := strings.CutPrefix(prefix, "./"); ok {
		rel, ok := relative(dep)
		if !ok {
			return false
		}
		if strings.HasSuffix(local, "/") {
			return strings.HasPrefix(rel, local)
		}
		return rel == local || strings.HasPrefix(rel, local+"/")
	}
	return strings.HasPrefix(dep, prefix)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func decode(r io.Reader) ([]Package, error) {
	var pkgs []Package
	dec := json.NewDecoder(r)
	for {
		var p Package
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			return pkgs, nil
		} else if err != nil {
			return nil, err
		}
		pkgs = append(pkgs, p)
	}
}

func main() {
	// -test: test files' imports count as well (a test of acme must not
	// pull in Kubernetes either).
	cmd := exec.Command("go", "list", "-test", "-deps=false", "-json=ImportPath,Imports,Deps", "./...")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "importcheck: go list:", err)
		os.Exit(2)
	}
	pkgs, err := decode(strings.NewReader(string(out)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "importcheck: reading go list:", err)
		os.Exit(2)
	}
	if bad := Check(pkgs, Rules); len(bad) > 0 {
		fmt.Fprintln(os.Stderr, "importcheck: imports across layers (see README, Layout):")
		for _, b := range bad {
			fmt.Fprintln(os.Stderr, "  "+b)
		}
		os.Exit(1)
	}
}
