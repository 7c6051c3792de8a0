package e2e

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestStatus: `status` lists the namespace's certificates as a table,
// -A adds the namespace, -o wide the reason column, -o json the stored
// objects, and `status NAME` describes one with its last order; a
// certificate that does not exist is an error.
func TestStatus(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createIssuer(t, env.Kubeconfig, ns, "pebble", env.IngressClass)
	name := "st." + ns + ".example.test"
	mustACME(t, env.Kubeconfig, issueArgs(ns, "web", "pebble", "--domain", name, "-q")...)

	out := mustACME(t, env.Kubeconfig, "status", "-n", ns)
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.Contains(lines[1], "web") || !strings.Contains(lines[1], "Ready") {
		t.Errorf("status table, want a header and one Ready row:\n%s", out)
	}
	if out := mustACME(t, env.Kubeconfig, "status", "-A"); !strings.Contains(out, ns) {
		t.Errorf("status -A has no row of namespace %s:\n%s", ns, out)
	}
	if out := mustACME(t, env.Kubeconfig, "status", "-n", ns, "-o", "wide"); !strings.Contains(out, name) {
		t.Errorf("status -o wide has no DNS name:\n%s", out)
	}
	var list struct {
		Items []struct {
			Metadata struct{ Name string }
		}
	}
	out = mustACME(t, env.Kubeconfig, "status", "-n", ns, "-o", "json")
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list.Items) != 1 || list.Items[0].Metadata.Name != "web" {
		t.Errorf("status -o json: %v\n%s", err, out)
	}
	out = mustACME(t, env.Kubeconfig, "status", "web", "-n", ns)
	for _, want := range []string{"Ready", "Last Order:", "(issued,", name, "valid"} {
		if !strings.Contains(out, want) {
			t.Errorf("status web lacks %q:\n%s", want, out)
		}
	}
	if _, errOut, code := acmeCmd(t, env.Kubeconfig, "status", "nosuch", "-n", ns); code == 0 || !strings.Contains(errOut, "nosuch") {
		t.Errorf("status of a missing certificate: exit %d, %q", code, errOut)
	}
}
