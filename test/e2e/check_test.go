package e2e

import (
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

// serviceAccountKubeconfig creates ServiceAccount name in ns and returns a
// kubeconfig that authenticates as it, with ns as its namespace.
// roleUser creates role in ns and returns the kubeconfig of a new
// ServiceAccount sa bound to it (a RoleBinding named sa).
func roleUser(t *testing.T, ns string, role *rbacv1.Role, sa string) string {
	t.Helper()
	ctx := t.Context()
	if _, err := kube.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: sa},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: ns}},
	}
	if _, err := kube.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return serviceAccountKubeconfig(t, ns, sa)
}

func serviceAccountKubeconfig(t *testing.T, ns, name string) string {
	t.Helper()
	if _, err := kube.CoreV1().ServiceAccounts(ns).Create(t.Context(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	token, _, code := kubectl(t, "create", "token", name, "-n", ns, "--duration", "1h")
	if code != 0 {
		t.Fatal("create token failed")
	}
	cfg, err := clientcmd.LoadFromFile(env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Contexts[cfg.CurrentContext]
	user := cfg.AuthInfos[c.AuthInfo]
	user.Token = strings.TrimSpace(token)
	user.ClientCertificate, user.ClientKey = "", ""
	user.ClientCertificateData, user.ClientKeyData = nil, nil
	c.Namespace = ns
	path := filepath.Join(t.TempDir(), name+".kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// parseRoles reads the Roles `check -o yaml` prints.
func parseRoles(t *testing.T, out string) []*rbacv1.Role {
	t.Helper()
	var roles []*rbacv1.Role
	for _, doc := range strings.Split(out, "\n---\n") {
		r := &rbacv1.Role{}
		if err := yaml.UnmarshalStrict([]byte(doc), r); err != nil {
			t.Fatalf("check -o yaml is not a Role: %v\n%s", err, doc)
		}
		if r.Kind != "Role" || r.APIVersion != "rbac.authorization.k8s.io/v1" {
			t.Fatalf("check -o yaml printed %s %s", r.APIVersion, r.Kind)
		}
		roles = append(roles, r)
	}
	return roles
}

// missingRows parses the VERB RESOURCE NAMESPACE ALLOWED table into
// "verb resource" of the rows that say no.
func missingRows(out string) []string {
	var rows []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 4 && f[3] == "no" {
			rows = append(rows, f[0]+" "+f[1])
		}
	}
	slices.Sort(rows)
	return rows
}

// optionalPermission: issue warns and goes on without list on
// networkpolicies (NetworkPolicies go unchecked), so check does not fail.
func optionalPermission(verb string, r rbacv1.PolicyRule) bool {
	return verb == "list" && ruleResource(r) == "networkpolicies.networking.k8s.io"
}

// ruleResource is how check writes a rule's resource.
func ruleResource(r rbacv1.PolicyRule) string {
	if r.APIGroups[0] == "" {
		return r.Resources[0]
	}
	return r.Resources[0] + "." + r.APIGroups[0]
}

// TestMinimalRole: a ServiceAccount bound only to the Role `check -o yaml`
// prints does everything, and removing any one rule, or any one verb of a
// rule, makes `check` name exactly what was removed, and `issue` fail
// before it creates anything.
func TestMinimalRole(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ctx := t.Context()
	roles := parseRoles(t, mustACME(t, env.Kubeconfig, "check", "-n", ns, "-o", "yaml"))
	if len(roles) != 1 || roles[0].Namespace != ns || roles[0].Name != "kubectl-acme" {
		t.Fatalf("want one Role kubectl-acme in %s, got %+v", ns, roles)
	}
	role := roles[0]
	for _, r := range role.Rules {
		if slices.Contains(r.Verbs, "*") || slices.Contains(r.Resources, "*") || len(r.Resources) != 1 {
			t.Errorf("rule is not minimal: %+v", r)
		}
	}
	bob := roleUser(t, ns, role, "bob")

	// Everything works with exactly this Role.
	if out := mustACME(t, bob, "check"); !strings.Contains(out, "All 24 permissions") {
		t.Errorf("check as bob:\n%s", out)
	}
	createIssuer(t, bob, ns, "pebble", env.IngressClass)
	name := "bob." + ns + ".example.test"
	mustACME(t, bob, issueArgs(ns, "web", "pebble", "--domain", name)...)
	verifySecret(t, ns, "web", []string{name})
	if out := mustACME(t, bob, "status"); !strings.Contains(out, "Ready") {
		t.Errorf("status as bob:\n%s", out)
	}
	mustACME(t, bob, "status", "web")
	if _, errOut, code := acmeCmd(t, bob, "renew", "--all", "--force", "--connect-to", env.IngressHTTP); code != 10 {
		t.Errorf("renew --all --force as bob: exit %d, want 10:\n%s", code, errOut)
	}
	mustACME(t, bob, "cleanup", "--older-than", "0s")
	assertNoSolverObjects(t, ns)
	assertNoLease(t, ns, "web")

	setRules := func(rules []rbacv1.PolicyRule) {
		t.Helper()
		r, err := kube.RbacV1().Roles(ns).Get(ctx, role.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		r.Rules = rules
		if _, err := kube.RbacV1().Roles(ns).Update(ctx, r, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// checkNames waits for the authorizer to see the change, then wants
	// check to name exactly want.
	checkNames := func(what string, want []string) {
		t.Helper()
		slices.Sort(want)
		var got []string
		var out, errOut string
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			var code int
			out, errOut, code = acmeCmd(t, bob, "check")
			got = missingRows(out)
			if slices.Equal(got, want) {
				if len(want) == 0 {
					if code != 0 {
						t.Errorf("%s: check exit %d: %s", what, code, errOut)
					}
					return
				}
				if code == 0 || !strings.HasPrefix(errOut, "error: ") || !strings.Contains(errOut, "-o yaml") {
					t.Errorf("%s: check exit %d, stderr %q: want a failure that points at -o yaml", what, code, errOut)
				}
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Errorf("without %s: check names %v, want exactly %v\n%s%s", what, got, want, out, errOut)
	}

	// Each whole rule.
	for i, r := range role.Rules {
		rules := slices.Delete(slices.Clone(role.Rules), i, i+1)
		setRules(rules)
		var want []string
		for _, v := range r.Verbs {
			if !optionalPermission(v, r) {
				want = append(want, v+" "+ruleResource(r))
			}
		}
		checkNames("rule "+ruleResource(r), want)
	}
	// Each single verb.
	for i, r := range role.Rules {
		for j, v := range r.Verbs {
			rules := slices.Clone(role.Rules)
			rules[i].Verbs = slices.Delete(slices.Clone(r.Verbs), j, j+1)
			if len(rules[i].Verbs) == 0 {
				rules = slices.Delete(rules, i, i+1)
			}
			setRules(rules)
			if optionalPermission(v, r) {
				// check warns and passes: issue goes on without it.
				checkNames(v+" "+ruleResource(r), nil)
				continue
			}
			checkNames(v+" "+ruleResource(r), []string{v + " " + ruleResource(r)})

			if v == "create" && r.Resources[0] == "pods" {
				// issue fails fast, with the table, and orders nothing.
				_, errOut, code := acmeCmd(t, bob, issueArgs(ns, "web", "pebble", "--domain", name)...)
				if code == 0 || !strings.HasPrefix(errOut, "error: ") || !slices.Equal(missingRows(errOut), []string{"create pods"}) || strings.Contains(errOut, "order") {
					t.Errorf("issue without create pods: exit %d, want a fast failure naming it:\n%s", code, errOut)
				}
				assertNoSolverObjects(t, ns)
				assertNoLease(t, ns, "web")
			}
		}
	}
	setRules(role.Rules)
	checkNames("nothing", nil)
}

// TestMinimalRoleForExistingIngress: for an issuer whose solver adds its
// paths to an existing Ingress (http01.ingress.name), the Role from
// `check --issuer` grants get and update on that Ingress by name and no
// creating of Ingresses, and is enough to issue.
func TestMinimalRoleForExistingIngress(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ctx := t.Context()
	v := varsFor(t, ns)
	prefix := networkingv1.PathTypePrefix
	ing := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: networkingv1.IngressSpec{
			IngressClassName: ptr.To(v.Class),
			Rules: []networkingv1.IngressRule{{
				Host: v.Host,
				IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
					Path: "/", PathType: &prefix,
					Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}},
				}}}},
			}},
		},
	}
	if _, err := kube.NetworkingV1().Ingresses(ns).Create(ctx, ing, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The admin registers the issuer and issues once.
	mustApply(t, nil, "-n", ns, "-f", renderManifest(t, "", "existing-ingress.yaml", v), "--agree-tos", "--connect-to", env.IngressHTTP)

	roles := parseRoles(t, mustACME(t, env.Kubeconfig, "check", "-n", ns, "--issuer", "by-name", "-o", "yaml"))
	if len(roles) != 1 {
		t.Fatalf("want one Role, got %d", len(roles))
	}
	role := roles[0]
	var byName, general *rbacv1.PolicyRule
	for i, r := range role.Rules {
		if r.Resources[0] != "ingresses" {
			continue
		}
		if len(r.ResourceNames) > 0 {
			byName = &role.Rules[i]
		} else {
			general = &role.Rules[i]
		}
	}
	if byName == nil || !slices.Equal(byName.ResourceNames, []string{"web"}) || !slices.Equal(byName.Verbs, []string{"get", "update"}) {
		t.Errorf("want get, update on ingress web by name: %+v", byName)
	}
	if general != nil && slices.Contains(general.Verbs, "create") {
		t.Errorf("the issuer creates no Ingress, yet the Role grants create: %+v", general)
	}
	if _, err := kube.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "carol"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "carol", Namespace: ns}},
	}
	if _, err := kube.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	carol := serviceAccountKubeconfig(t, ns, "carol")
	waitFor(t, 15*time.Second, "carol's Role to take effect", func() bool {
		_, _, code := acmeCmd(t, carol, "check", "--issuer", "by-name")
		return code == 0
	})
	before, _ := kube.NetworkingV1().Ingresses(ns).Get(ctx, "web", metav1.GetOptions{})
	mustACME(t, carol, "issue", "web", "--connect-to", env.IngressHTTP)
	verifySecret(t, ns, "web-tls", []string{v.Host, "www." + v.Host})
	after, _ := kube.NetworkingV1().Ingresses(ns).Get(ctx, "web", metav1.GetOptions{})
	if !reflect.DeepEqual(before.Spec, after.Spec) {
		t.Errorf("the user's Ingress changed:\nbefore %+v\nafter  %+v", before.Spec, after.Spec)
	}
	assertNoLease(t, ns, "web")
}
