package e2e

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-acme/kubectl-acme/bench"
)

// budgetNamespace is fixed because the API server's audit policy, written
// before any test runs, names it.
const budgetNamespace = "e2e-api-budget"

// apiRequestBudget is Kubernetes API requests per certificate, a watch
// counting once: issue 8's 15, plus what issue 12 adds before the order:
// the server-side dry runs of the solver's Pod, Service and Ingress, and
// the list of the namespace's NetworkPolicies. The run deletes the Pod,
// Service and Ingress itself, at once, rather than wait for the garbage
// collector (a foreground deletion: two requests fewer, 0.1 s more). The
// IngressClass that decides the challenge paths' type is not read: the
// minimal Role grants no get on IngressClasses, and the preflight's
// SelfSubjectRulesReview already says so, so the class name decides
// without a request that could only be Forbidden.
const apiRequestBudget = 15 + 3 + 1

// budgetRequests are the requests of one issue, by "verb resource": the
// Certificate and Issuer (one list), the permission review, the Lease,
// the target and account key Secrets, the NetworkPolicies, the dry runs
// and creates of the solver objects, the pod's watch, their deletes, the
// issued Secret, the Certificate's status and the Lease's release.
var budgetRequests = map[string]float64{
	"list configmaps":                1,
	"create selfsubjectrulesreviews": 1,
	"create leases":                  1,
	"get secrets":                    2,
	"list networkpolicies":           1,
	"create pods":                    2,
	"create services":                2,
	"create ingresses":               2,
	"watch pods":                     1,
	"delete pods":                    1,
	"delete services":                1,
	"delete ingresses":               1,
	"create secrets":                 1,
	"create configmaps":              1,
	"delete leases":                  1,
}

// writeAuditPolicy makes the API server log only the requests of
// the ServiceAccounts of budgetNamespace and applyBudgetNamespace, so the log stays small; it returns
// the API server flags.
func writeAuditPolicy(dir string) ([]string, error) {
	policy := filepath.Join(dir, "audit-policy.yaml")
	auditLog = filepath.Join(dir, "audit.log")
	body := fmt.Sprintf(`apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
  userGroups: ["system:serviceaccounts:%s", "system:serviceaccounts:%s"]
- level: None
`, budgetNamespace, applyBudgetNamespace)
	if err := os.WriteFile(policy, []byte(body), 0o644); err != nil {
		return nil, err
	}
	return []string{"--audit-policy-file=" + policy, "--audit-log-path=" + auditLog}, nil
}

// TestAPIRequestBudget issues one certificate as a user bound to the
// minimal Role and counts its requests in the API server's audit log: at
// most apiRequestBudget, with one watch and no object read twice (a poll
// loop would read one again and again).
func TestAPIRequestBudget(t *testing.T) {
	if auditLog == "" {
		t.Skip("the environment was started by hack/testenv, without the audit log this test reads")
	}
	t.Parallel()
	ns := budgetNamespace
	user := budgetUser(t, ns)

	start := time.Now()
	name := "budget." + ns + ".example.test"
	mustACME(t, user, issueArgs(ns, "web", "pebble", "--domain", name)...)
	end := time.Now()
	verifySecret(t, ns, "web", []string{name})

	f, err := os.Open(auditLog)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	all, err := bench.ReadAudit(f)
	if err != nil {
		t.Fatal(err)
	}
	events := auditOf(all, ns, "budget")
	cost := bench.CountAPI(events, []bench.Window{{Start: start.Add(-time.Second), End: end.Add(time.Second)}}, 1)
	var lines []string
	for k, v := range cost.ByVerbResource {
		lines = append(lines, fmt.Sprintf("%s %g", k, v))
	}
	sort.Strings(lines)
	t.Logf("%g requests: %s", cost.PerCert, strings.Join(lines, ", "))
	if !maps.Equal(cost.ByVerbResource, budgetRequests) {
		for _, e := range events {
			if strings.HasPrefix(e.UserAgent, bench.PluginUserAgent) && !e.Received.Before(start.Add(-time.Second)) && !e.Received.After(end.Add(time.Second)) {
				t.Logf("%s %s", e.Verb, e.RequestURI)
			}
		}
		t.Errorf("the requests differ from budgetRequests (update it with the reason, and apiRequestBudget)")
	}
	if cost.PerCert > apiRequestBudget {
		t.Errorf("issuing one certificate took %g Kubernetes API requests, more than the budget of %d", cost.PerCert, apiRequestBudget)
	}
	if cost.Watches != 1 {
		t.Errorf("%g watches, want 1 (the solver pod's)", cost.Watches)
	}
	if cost.MaxReadsOneObject > 1 {
		t.Errorf("%s was read %d times", cost.MostReadObject, cost.MaxReadsOneObject)
	}
}

// auditOf are the events of ServiceAccount sa of ns: the budget tests run
// in parallel, and each counts its own.
func auditOf(events []bench.AuditEvent, ns, sa string) []bench.AuditEvent {
	var out []bench.AuditEvent
	for _, e := range events {
		if e.User.Username == "system:serviceaccount:"+ns+":"+sa {
			out = append(out, e)
		}
	}
	return out
}

// budgetUser makes namespace ns (deleted after the test) with an issuer
// "pebble", and returns the kubeconfig of ServiceAccount "budget" bound to
// the minimal Role `check` prints for ns: the user whose requests the
// budget tests count.
func budgetUser(t *testing.T, ns string) string {
	t.Helper()
	ctx := t.Context()
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		rememberNamespace(ns)
		if err := kube.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete namespace %s: %v", ns, err)
		}
	})
	waitFor(t, time.Minute, "the default ServiceAccount", func() bool {
		_, err := kube.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil
	})
	role := parseRoles(t, mustACME(t, env.Kubeconfig, "check", "-n", ns, "-o", "yaml"))[0]
	user := roleUser(t, ns, role, "budget")
	createIssuer(t, env.Kubeconfig, ns, "pebble", env.IngressClass)
	return user
}
