package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/store"
)

// completionPath is PATH with a directory holding only the repository's
// kubectl_complete-acme in front, as a user installs it, and the script's
// path there.
func completionPath(t *testing.T) (path, script string) {
	t.Helper()
	src, err := filepath.Abs("../../kubectl_complete-acme")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	script = filepath.Join(dir, "kubectl_complete-acme")
	if err := os.Symlink(src, script); err != nil {
		t.Fatal(err)
	}
	return dir + string(os.PathListSeparator) + os.Getenv("PATH"), script
}

// complete runs name ARGS (name is looked up in this process's PATH) with
// path as the command's PATH and the admin kubeconfig, and returns cobra's
// candidates (without descriptions), their descriptions, and the directive
// on the last line.
func complete(t *testing.T, path, name string, args ...string) (candidates []string, descs map[string]string, directive string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "PATH="+path, "KUBECONFIG="+env.Kubeconfig)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %q: %v\nstderr:\n%s", name, args, err, errOut.String())
	}
	t.Logf("$ %s %q\n%s%s", name, args, out.String(), errOut.String())
	descs = map[string]string{}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	if n := len(lines); n > 0 && strings.HasPrefix(lines[n-1], ":") {
		directive, lines = lines[n-1], lines[:n-1]
	}
	for _, l := range lines {
		if l == "" {
			continue
		}
		c, d, _ := strings.Cut(l, "\t")
		candidates = append(candidates, c)
		descs[c] = d
	}
	return candidates, descs, directive
}

func wantCandidates(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("%s: candidates %q lack %q", what, got, w)
		}
	}
}

// TestCompletion completes `kubectl acme ...` the way a shell does with
// kubectl >= 1.26: the shell asks `kubectl __complete acme ...`, and kubectl
// runs kubectl_complete-acme from PATH with the words after "acme".
func TestCompletion(t *testing.T) {
	ns := newNamespace(t)
	createIssuer(t, env.Kubeconfig, ns, "pebble-one", "nginx")
	createIssuer(t, env.Kubeconfig, ns, "pebble-two", "nginx")
	// A Certificate as kubectl acme stores it; its completion needs only
	// the labelled ConfigMap, not an issuance.
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Name:        store.CertificateConfigMapName("web"),
		Labels:      map[string]string{store.LabelManagedBy: store.ManagedBy, store.LabelKind: certmanager.KindCertificate, store.LabelName: "web"},
		Annotations: map[string]string{store.AnnotationDomains: "web.example.test,www.example.test"},
	}}
	if _, err := kube.CoreV1().ConfigMaps(ns).Create(t.Context(), cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	path, script := completionPath(t)

	t.Run("subcommands through kubectl", func(t *testing.T) {
		got, _, directive := complete(t, path, "kubectl", "__complete", "acme", "")
		wantCandidates(t, "kubectl acme <TAB>", got, "create", "get", "issue", "status", "version", "completion")
		if slices.Contains(got, "__complete") {
			t.Errorf("hidden command offered: %q", got)
		}
		if directive != ":4" {
			t.Errorf("directive %q: want :4 (no file completion)", directive)
		}
		got, _, _ = complete(t, path, "kubectl", "__complete", "acme", "st")
		if !slices.Equal(got, []string{"status"}) {
			t.Errorf("kubectl acme st<TAB>: got %q, want [status]", got)
		}
	})

	t.Run("issuer names through kubectl", func(t *testing.T) {
		got, descs, _ := complete(t, path, "kubectl", "__complete", "acme", "issue", "web", "-n", ns, "--issuer", "")
		wantCandidates(t, "kubectl acme issue web --issuer <TAB>", got, "pebble-one", "pebble-two")
		if descs["pebble-one"] != env.ACMEServer {
			t.Errorf("pebble-one described as %q, want the server %s", descs["pebble-one"], env.ACMEServer)
		}
		got, _, _ = complete(t, path, "kubectl", "__complete", "acme", "issue", "web", "-n", ns, "--issuer", "pebble-t")
		if !slices.Equal(got, []string{"pebble-two"}) {
			t.Errorf("--issuer pebble-t<TAB>: got %q, want [pebble-two]", got)
		}
	})

	// kubectl passes the words after "acme" and the word being completed.
	t.Run("certificate names as kubectl invokes the script", func(t *testing.T) {
		got, descs, _ := complete(t, path, script, "status", "-n", ns, "")
		if !slices.Equal(got, []string{"web"}) {
			t.Errorf("kubectl acme status <TAB>: got %q, want [web]", got)
		}
		if descs["web"] != "web.example.test,www.example.test" {
			t.Errorf("web described as %q, want its names", descs["web"])
		}
		got, _, _ = complete(t, path, script, "issue", "-n", ns, "w")
		wantCandidates(t, "kubectl acme issue w<TAB>", got, "web")
		got, _, _ = complete(t, path, script, "status", "web", "")
		if len(got) != 0 {
			t.Errorf("kubectl acme status web <TAB>: got %q, want nothing (one NAME only)", got)
		}
	})

	t.Run("namespaces and flag values", func(t *testing.T) {
		got, _, _ := complete(t, path, script, "status", "-n", ns[:len(ns)-2])
		wantCandidates(t, "kubectl acme status -n PREFIX<TAB>", got, ns)
		got, _, _ = complete(t, path, script, "create", "issuer", "x", "--server", "")
		wantCandidates(t, "create issuer --server <TAB>", got, "letsencrypt", "letsencrypt-staging")
		got, _, _ = complete(t, path, script, "create", "issuer", "x", "--ingress-class", "")
		wantCandidates(t, "create issuer --ingress-class <TAB>", got, env.IngressClass)
		if env.GatewayName != "" {
			got, _, _ = complete(t, path, script, "create", "issuer", "x", "--gateway", "")
			wantCandidates(t, "create issuer --gateway <TAB>", got, env.GatewayNamespace+"/"+env.GatewayName)
		}
	})

	// Without a reachable cluster the shell gets no candidates, quickly.
	t.Run("unreachable cluster", func(t *testing.T) {
		start := time.Now()
		got, _, directive := complete(t, path, script, "status", "--server", "https://127.0.0.1:1", "")
		if len(got) != 0 || directive != ":4" {
			t.Errorf("got %q %s, want no candidates and :4", got, directive)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("took %s", d)
		}
	})
}

// `kubectl acme completion SHELL` prints a script for each shell.
func TestCompletionScripts(t *testing.T) {
	for shell, want := range map[string]string{
		"bash":       "__start_kubectl-acme",
		"zsh":        "#compdef kubectl-acme",
		"fish":       "complete -c kubectl-acme",
		"powershell": "Register-ArgumentCompleter",
	} {
		out := mustACME(t, env.Kubeconfig, "completion", shell)
		if !strings.Contains(out, want) {
			t.Errorf("completion %s: output lacks %q", shell, want)
		}
	}
}

// `kubectl acme completion SHELL --no-descriptions` and a shell it does not
// know.
func TestCompletionCommandFlags(t *testing.T) {
	if out := mustACME(t, env.Kubeconfig, "completion", "zsh", "--no-descriptions"); !strings.Contains(out, "__completeNoDesc") {
		t.Errorf("completion zsh --no-descriptions: no __completeNoDesc in the script")
	}
	_, errOut, code := acmeCmd(t, env.Kubeconfig, "completion", "tcsh")
	if code == 0 || !strings.Contains(errOut, `unsupported shell "tcsh"`) {
		t.Errorf("completion tcsh: exit %d, %q", code, errOut)
	}
}
