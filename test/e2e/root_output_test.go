package e2e

import (
	"encoding/json"
	"strings"
	"testing"
)

// -o through cli-runtime's printers, as kubectl's: name is KIND.GROUP/NAME
// per object; json a v1 List; get issuers' -A and -o name together.
func TestOutputName(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createIssuer(t, env.Kubeconfig, ns, "pebble", env.IngressClass)

	if out := mustACME(t, env.Kubeconfig, "get", "issuers", "-n", ns, "-o", "name"); out != "issuer.cert-manager.io/pebble\n" {
		t.Errorf("get issuers -o name: %q", out)
	}
	if out := mustACME(t, env.Kubeconfig, "get", "issuers", "-A", "-o", "name"); !strings.Contains(out, "issuer.cert-manager.io/pebble\n") {
		t.Errorf("get issuers -A -o name: %q", out)
	}
	var list struct {
		Kind  string
		Items []struct {
			Kind     string
			Metadata struct{ Name, Namespace string }
		}
	}
	if err := json.Unmarshal([]byte(mustACME(t, env.Kubeconfig, "get", "issuers", "-n", ns, "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	if list.Kind != "List" || len(list.Items) != 1 || list.Items[0].Kind != "Issuer" || list.Items[0].Metadata.Name != "pebble" || list.Items[0].Metadata.Namespace != ns {
		t.Errorf("get issuers -o json: %+v", list)
	}
	if out := mustACME(t, env.Kubeconfig, "export", "--all", "-n", ns, "-o", "name"); out != "issuer.cert-manager.io/pebble\n" {
		t.Errorf("export -o name: %q", out)
	}
	out := mustACME(t, env.Kubeconfig, "schedule", "-n", ns, "--image", fakeImage, "--dry-run=client", "-o", "name")
	if want := "serviceaccount/kubectl-acme-renew\nrole.rbac.authorization.k8s.io/kubectl-acme-renew\nrolebinding.rbac.authorization.k8s.io/kubectl-acme-renew\ncronjob.batch/kubectl-acme-renew\n"; out != want {
		t.Errorf("schedule --dry-run=client -o name:\n%s\nwant\n%s", out, want)
	}
	_, errOut, code := acmeCmd(t, env.Kubeconfig, "version", "-o", "name")
	if code == 0 || !strings.Contains(errOut, `unsupported output format "name": use one of ["" "json" "yaml"]`) {
		t.Errorf("version -o name: exit %d, %q", code, errOut)
	}
}
