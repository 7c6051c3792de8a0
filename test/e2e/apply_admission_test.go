package e2e

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestApplyAdmissionDeniesOneHost: in an apply of several certificates,
// the run's one dry run of the shared workload is refused by a
// ValidatingAdmissionPolicy that forbids one certificate's host in an
// Ingress; each certificate is then judged on its own, so that one fails
// before ordering (no newOrder for its name reaches the CA), naming the
// policy, and the others are issued through one shared workload.
func TestApplyAdmissionDeniesOneHost(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	p := startCAProxy(t)
	createIssuerVia(t, p, ns, "pebble")
	denied := "c-1." + ns + ".example.test"
	policy := "no-host-" + ns
	denyIngressHost(t, ns, policy, denied)

	var mu sync.Mutex
	var ordered []string
	p.answerNewOrder(func(w http.ResponseWriter, r *http.Request, _ int) bool {
		if payload := jwsPayload(r); payload != nil {
			mu.Lock()
			ordered = append(ordered, string(payload))
			mu.Unlock()
		}
		return false
	})

	const n = 3
	path, names := certificatesManifest(t, ns, "pebble", "c", n)
	created := watchCreates(t, ns)
	out, errOut, code := applyCmd(t, "", nil, "-n", ns, "-f", path, "--concurrency", "20", "--connect-to", env.IngressHTTP)
	if code == 0 {
		t.Fatalf("apply exited 0 with a certificate the policy denies:\n%s", errOut)
	}
	wantAll(t, "apply's errors", errOut, `certificate "c-1"`, `ValidatingAdmissionPolicy "`+policy+`"`, "host "+denied+" is not allowed", "no order was placed")
	if got := strings.Count(out, " issued: secret/"); got != n-1 {
		t.Errorf("%d certificates issued, want %d:\n%s", got, n-1, out)
	}
	for _, name := range names {
		if name == "c-1" {
			continue
		}
		verifySecret(t, ns, name, []string{name + "." + ns + ".example.test"})
	}
	if _, err := kube.CoreV1().Secrets(ns).Get(t.Context(), "c-1", metav1.GetOptions{}); err == nil {
		t.Error("secret c-1 exists")
	}
	mu.Lock()
	if len(ordered) != n-1 {
		t.Errorf("%d newOrder requests reached the CA, want %d", len(ordered), n-1)
	}
	for _, o := range ordered {
		if strings.Contains(o, `"`+denied+`"`) {
			t.Errorf("a newOrder for the denied host reached the CA: %s", o)
		}
	}
	mu.Unlock()
	waitFor(t, 10*time.Second, "the watch to see every create", func() bool { return created.count("ingress") >= 1 })
	if created.count("pod") != 1 || created.count("ingress") != 1 {
		t.Errorf("created %s, want one shared pod and ingress", created)
	}
	assertNoSolverObjects(t, ns)
}

// denyIngressHost creates a ValidatingAdmissionPolicy, bound to ns,
// refusing Ingresses with a rule for host, and waits until the API server
// enforces it.
func denyIngressHost(t *testing.T, ns, name, host string) {
	t.Helper()
	ctx := t.Context()
	createDenyingPolicy(t, ns, name, solverRule("networking.k8s.io", "ingresses"),
		`!has(object.spec.rules) || !object.spec.rules.exists(r, has(r.host) && r.host == '`+host+`')`, "host "+host+" is not allowed")
	// The API server compiles policies from an informer.
	pt := networkingv1.PathTypePrefix
	probe := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "probe"},
		Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
			Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: &pt, Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "x", Port: networkingv1.ServiceBackendPort{Number: 80}}}}},
		}}}}},
	}
	waitFor(t, 30*time.Second, "policy "+name+" to be enforced", func() bool {
		_, err := kube.NetworkingV1().Ingresses(ns).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err != nil && strings.Contains(err.Error(), name)
	})
}
