package e2e

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-acme/kubectl-acme/bench"
)

// applyBudgetNamespace is fixed because the API server's audit policy,
// written before any test runs, names it (writeAuditPolicy).
const applyBudgetNamespace = "e2e-apply-budget"

// applyBudgetCerts is how many Certificates the measured apply issues.
const applyBudgetCerts = 20

// applyRequestBudget is Kubernetes API requests per certificate of an
// apply of applyBudgetCerts Certificates in one namespace, a watch
// counting once. Measured 4.8 (5.75 when each Lease had its own delete,
// 8.6 when each certificate had its own server dry run): per certificate
// its Lease (create), its Secret (read, create), its status; once per run
// the stored Certificates (one list), the Issuer, its account key, the
// IngressClass, the NetworkPolicies, the one server dry run of the shared
// solver workload (Pod, Service, Ingress), that workload, and one
// deletecollection of the run's Leases. The run takes about 3.5 s; one
// slower than issuance.LeaseRenewInterval (15 s) adds up to one Lease
// renewal per certificate and fails this bound. Issue 15's target.
const applyRequestBudget = 5

// TestApplyAPIRequestBudget applies applyBudgetCerts Certificates of one
// issuer in one namespace as a user bound to the minimal Role and counts
// the requests per certificate in the API server's audit log.
func TestApplyAPIRequestBudget(t *testing.T) {
	if auditLog == "" {
		t.Skip("the environment was started by hack/testenv, without the audit log this test reads")
	}
	t.Parallel()
	ns := applyBudgetNamespace
	user := budgetUser(t, ns)

	var b strings.Builder
	var names []string
	for i := range applyBudgetCerts {
		name := fmt.Sprintf("c%02d.%s.example.test", i, ns)
		names = append(names, name)
		fmt.Fprintf(&b, "---\napiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata:\n  name: c%02d\nspec:\n  secretName: c%02d\n  dnsNames: [%s]\n  issuerRef:\n    name: pebble\n", i, i, name)
	}
	path := filepath.Join(t.TempDir(), "certificates.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	mustACME(t, user, "apply", "-n", ns, "-f", path, "--connect-to", env.IngressHTTP, "--concurrency", "20")
	end := time.Now()
	for i, name := range names {
		verifySecret(t, ns, fmt.Sprintf("c%02d", i), []string{name})
	}
	assertNoSolverObjects(t, ns)

	f, err := os.Open(auditLog)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	events, err := bench.ReadAudit(f)
	if err != nil {
		t.Fatal(err)
	}
	cost := bench.CountAPI(auditOf(events, ns, "budget"), []bench.Window{{Start: start.Add(-time.Second), End: end.Add(time.Second)}}, applyBudgetCerts)
	var lines []string
	for k, v := range cost.ByVerbResource {
		lines = append(lines, fmt.Sprintf("%s %g", k, v))
	}
	sort.Strings(lines)
	t.Logf("%g requests per certificate: %s", cost.PerCert, strings.Join(lines, ", "))
	if cost.PerCert > applyRequestBudget {
		t.Errorf("applying %d certificates took %g Kubernetes API requests per certificate, more than the budget of %d (the run took %s; from 15 s on, Lease renewals count too)", applyBudgetCerts, cost.PerCert, applyRequestBudget, end.Sub(start).Round(100*time.Millisecond))
	}
	// The run deletes what it created once each and never polls the pod.
	for _, k := range []string{"delete pods", "delete services", "delete ingresses"} {
		if n := math.Round(cost.ByVerbResource[k] * applyBudgetCerts); n != 1 {
			t.Errorf("%s: %g in the run, want 1: one shared workload, deleted once", k, n)
		}
	}
	for _, k := range []string{"get pods", "list pods"} {
		if cost.ByVerbResource[k] > 0 {
			t.Errorf("%s %g: the run read the pod instead of watching it", k, cost.ByVerbResource[k])
		}
	}
}
