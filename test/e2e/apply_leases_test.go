package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// TestApplyLeasesWithoutDeleteCollection: a run of several certificates
// deletes its Leases with one deletecollection; a Role without that verb
// (one made before it was needed) still leaves no Lease behind, each
// deleted by itself, and nothing alarming is said. issue --ingress of
// several certificates, which has a preflight, names the missing verb
// before it orders anything.
func TestApplyLeasesWithoutDeleteCollection(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ctx := t.Context()
	role := parseRoles(t, mustACME(t, env.Kubeconfig, "check", "-n", ns, "-o", "yaml"))[0]
	found := false
	for i, r := range role.Rules {
		if r.Resources[0] == "leases" {
			found = slices.Contains(r.Verbs, "deletecollection")
			role.Rules[i].Verbs = slices.DeleteFunc(slices.Clone(r.Verbs), func(v string) bool { return v == "deletecollection" })
		}
	}
	if !found {
		t.Fatalf("the minimal Role grants no deletecollection on leases: %+v", role.Rules)
	}
	// issue --ingress reads its Ingress.
	role.Rules = append(role.Rules, rbacv1.PolicyRule{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"ingresses"}, Verbs: []string{"get"}})
	user := roleUser(t, ns, role, "old")
	createIssuer(t, user, ns, "pebble", env.IngressClass)

	path, names := certificatesManifest(t, ns, "pebble", "l", 3)
	_, errOut := mustACMEErr(t, user, "apply", "-n", ns, "-f", path, "--connect-to", env.IngressHTTP)
	for _, n := range names {
		verifySecret(t, ns, n, []string{n + "." + ns + ".example.test"})
		assertNoLease(t, ns, n)
	}
	// (The namespace's name has "deletecollection" in it.)
	for _, word := range []string{"orbidden", "warning", "coordination.k8s.io", "lease/"} {
		if strings.Contains(errOut, word) {
			t.Errorf("apply without deletecollection says %q:\n%s", word, errOut)
		}
	}

	host := ns + ".example.test"
	ing := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Annotations: map[string]string{"cert-manager.io/issuer": "pebble"}},
		Spec: networkingv1.IngressSpec{
			IngressClassName: ptr.To(env.IngressClass),
			TLS: []networkingv1.IngressTLS{
				{Hosts: []string{"shop." + host}, SecretName: "shop-tls"},
				{Hosts: []string{"api." + host}, SecretName: "api-tls"},
			},
			DefaultBackend: &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "shop", Port: networkingv1.ServiceBackendPort{Number: 80}}},
		},
	}
	if _, err := kube.NetworkingV1().Ingresses(ns).Create(ctx, ing, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var got []string
	var errOut2 string
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		var code int
		_, errOut2, code = acmeCmd(t, user, "issue", "--ingress", "shop", "-n", ns, "--connect-to", env.IngressHTTP)
		got = missingRows(errOut2)
		if code != 0 && slices.Equal(got, []string{"deletecollection leases.coordination.k8s.io"}) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !slices.Equal(got, []string{"deletecollection leases.coordination.k8s.io"}) || strings.Contains(errOut2, "order") {
		t.Errorf("issue --ingress of 2 certificates without deletecollection: want a fast failure naming it, got:\n%s", errOut2)
	}
	// Nothing was created but the user's own Ingress.
	if err := kube.NetworkingV1().Ingresses(ns).Delete(ctx, "shop", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	assertNoSolverObjects(t, ns)
	for _, n := range []string{"shop-tls", "api-tls"} {
		assertNoLease(t, ns, n)
	}
}
