package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestExportToCertManager: what export prints for issued certificates is
// accepted by an API server with cert-manager's CRDs, names the same
// Secrets, and carries no status.
func TestExportToCertManager(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	v := varsFor(t, ns)
	path := renderManifest(t, "", "v1-docs.yaml", v)
	mustApply(t, nil, "-n", ns, "-f", path, "--agree-tos", "--connect-to", env.IngressHTTP, "-q")
	createIssuer(t, env.Kubeconfig, ns, "pebble", env.IngressClass)
	mustACME(t, env.Kubeconfig, issueArgs(ns, "plain", "pebble", "--domain", "plain."+v.Host, "--ip", "127.0.0.1", "-q")...)

	out := mustACME(t, env.Kubeconfig, "export", "--all", "-n", ns)
	wantAll(t, "export", out, "kind: Issuer", "name: letsencrypt-staging", "name: pebble", "kind: Certificate",
		"secretName: example-com-tls", "enableDurationFeature: true", "privateKeySecretRef:", "127.0.0.1")
	if strings.Contains(out, "status:") {
		t.Errorf("export carries status:\n%s", out)
	}
	one := mustACME(t, env.Kubeconfig, "export", "plain", "-n", ns, "-o", "json")
	wantAll(t, "export plain -o json", one, `"kind": "List"`, `"name": "pebble"`, `"name": "plain"`)
	if strings.Contains(one, "letsencrypt-staging") {
		t.Errorf("export of one certificate printed other issuers:\n%s", one)
	}

	installCertManagerCRDs(t)
	file := filepath.Join(t.TempDir(), "export.yaml")
	if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, errOut, code := kubectl(t, "apply", "--dry-run=server", "-f", file)
	if code != 0 {
		t.Fatalf("cert-manager's CRDs refuse the export: %s", errOut)
	}
	wantAll(t, "kubectl apply --dry-run=server", stdout, "issuer.cert-manager.io/letsencrypt-staging created (server dry run)",
		"certificate.cert-manager.io/example-com created (server dry run)", "certificate.cert-manager.io/plain created (server dry run)")
	cmd := exec.Command("kubectl", "apply", "--dry-run=server", "-f", "-")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+env.Kubeconfig)
	cmd.Stdin = strings.NewReader(one)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("cert-manager's CRDs refuse the JSON export: %v: %s", err, b)
	}
}

// installCertManagerCRDs installs cert-manager's Issuer, ClusterIssuer and
// Certificate CRDs from the module source of the release hack/certmanager
// pins, and removes them when the test ends if it installed them. A source
// that cannot be had fails the test: skipping would let export drift from
// cert-manager's schema unseen.
func installCertManagerCRDs(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	dir := certManagerSource(ctx, t)
	names := []string{"issuers.cert-manager.io", "clusterissuers.cert-manager.io", "certificates.cert-manager.io"}
	_, _, existed := kubectl(t, "get", "crd", names[0])
	args := []string{"apply"}
	for _, n := range names {
		args = append(args, "-f", filepath.Join(dir, "deploy", "crds", "cert-manager.io_"+strings.TrimSuffix(n, ".cert-manager.io")+".yaml"))
	}
	if _, errOut, code := kubectl(t, args...); code != 0 {
		t.Fatalf("install cert-manager CRDs: %s", errOut)
	}
	if existed != 0 {
		t.Cleanup(func() {
			cmd := exec.Command("kubectl", append([]string{"delete", "crd", "--wait=false"}, names...)...)
			cmd.Env = append(os.Environ(), "KUBECONFIG="+env.Kubeconfig)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("delete cert-manager CRDs: %v: %s", err, out)
			}
		})
	}
	if _, errOut, code := kubectl(t, append([]string{"wait", "--for", "condition=Established", "--timeout", "60s"}, prefixEach("crd/", names)...)...); code != 0 {
		t.Fatalf("cert-manager CRDs not established: %s", errOut)
	}
}

func prefixEach(p string, list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = p + s
	}
	return out
}

// certManagerSource returns the directory of cert-manager's module source in
// the module cache, as `go list -m -json` in hack/certmanager resolves the
// version pinned there; when the cache lacks it (make tools downloads it),
// go mod download fetches it first. A source that cannot be had fails the
// test.
func certManagerSource(ctx context.Context, t *testing.T) string {
	t.Helper()
	const mod = "github.com/cert-manager/cert-manager"
	modDir, err := filepath.Abs("../../hack/certmanager")
	if err != nil {
		t.Fatal(err)
	}
	list := func() (string, error) {
		cmd := exec.CommandContext(ctx, "go", "list", "-m", "-json", mod)
		cmd.Dir = modDir
		var errOut strings.Builder
		cmd.Stderr = &errOut
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("go list -m -json %s: %w: %s", mod, err, strings.TrimSpace(errOut.String()))
		}
		var m struct{ Dir, Version string }
		if err := json.Unmarshal(out, &m); err != nil {
			return "", fmt.Errorf("go list -m -json %s printed %q: %w", mod, out, err)
		}
		if m.Dir == "" {
			return "", fmt.Errorf("go list -m -json: %s@%s is not in the module cache", mod, m.Version)
		}
		return m.Dir, nil
	}
	dir, err := list()
	if err == nil {
		return dir
	}
	t.Logf("%v; downloading it", err)
	cmd := exec.CommandContext(ctx, "go", "mod", "download", mod)
	cmd.Dir = modDir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cert-manager's module source holds the CRDs this test checks export against, and it cannot be had: go mod download %s in %s (make tools downloads it): %v: %s", mod, modDir, err, strings.TrimSpace(string(out)))
	}
	if dir, err = list(); err != nil {
		t.Fatalf("cert-manager's module source holds the CRDs this test checks export against, and %s does not resolve it after go mod download: %v", modDir, err)
	}
	return dir
}
