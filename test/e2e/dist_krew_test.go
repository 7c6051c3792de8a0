package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestKrew installs the plugin the way users get it: Krew itself, built
// from the pinned module in hack/krew, installs a release archive made by
// hack/release.sh with a manifest rendered from krew/acme.yaml.tmpl, and the
// real kubectl runs it from Krew's bin directory. Nothing is downloaded:
// --manifest and --archive keep Krew away from its index and the URIs.
func TestKrew(t *testing.T) {
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	tools := filepath.Join(tmp, "tools")
	dist := filepath.Join(tmp, "dist")
	krewRoot := filepath.Join(tmp, "krew")
	home := filepath.Join(tmp, "home")
	for _, d := range []string{tools, home} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	// PATH holds Krew's bin directory, Krew, and kubectl; no other
	// kubectl-acme (TestMain's is left out), so kubectl can only run the
	// one Krew installed.
	kubectlPath, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(kubectlPath, filepath.Join(tools, "kubectl")); err != nil {
		t.Fatal(err)
	}
	krewEnv := []string{
		"PATH=" + strings.Join([]string{filepath.Join(krewRoot, "bin"), tools, "/usr/bin", "/bin"}, string(os.PathListSeparator)),
		"KREW_ROOT=" + krewRoot,
		"KREW_NO_UPGRADE_CHECK=1",
		"HOME=" + home,
		"KUBECONFIG=" + env.Kubeconfig,
	}
	// run runs a command in the repository with extra environment.
	run := func(t *testing.T, extraEnv []string, name string, args ...string) (string, string, int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), extraEnv...)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		start := time.Now()
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok && ctx.Err() == nil {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, errOut.String())
		}
		t.Logf("$ %s %s  # exit %d, %s\n%s%s", name, strings.Join(args, " "), code, time.Since(start).Round(time.Millisecond), out.String(), errOut.String())
		return out.String(), errOut.String(), code
	}
	must := func(t *testing.T, extraEnv []string, name string, args ...string) string {
		t.Helper()
		out, errOut, code := run(t, extraEnv, name, args...)
		if code != 0 {
			t.Fatalf("%s %s: exit %d\n%s", name, strings.Join(args, " "), code, errOut)
		}
		return out
	}

	// Krew, through the module proxy the first time, from the build cache
	// afterwards.
	must(t, nil, "go", "-C", "hack/krew", "build", "-o", filepath.Join(tools, "kubectl-krew"), "sigs.k8s.io/krew/cmd/krew")

	// A release for this platform, as `make release` builds it.
	version := strings.TrimSpace(must(t, nil, "hack/release.sh", "--version"))
	platform := runtime.GOOS + "/" + runtime.GOARCH
	must(t, []string{"VERSION=" + version}, "hack/release.sh", "--out", dist, "--platforms", platform)
	archive := filepath.Join(dist, "kubectl-acme_"+version+"_"+runtime.GOOS+"_"+runtime.GOARCH+".tar.gz")
	sums, err := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(sums), "  "+filepath.Base(archive)+"\n") {
		t.Errorf("SHA256SUMS lacks %s:\n%s", filepath.Base(archive), sums)
	}
	// The manifest, as `make krew-manifest` renders it; the other
	// platforms' archives were not built and get placeholder digests.
	manifest := filepath.Join(tmp, "acme.yaml")
	must(t, nil, "go", "run", "./hack/krewmanifest", "-partial", "-tag", version, "-dist", dist, "-o", manifest, "krew/acme.yaml.tmpl")

	// Krew checks the archive against the manifest's sha256.
	t.Run("wrong sha256 is refused", func(t *testing.T) {
		data, err := os.ReadFile(manifest)
		if err != nil {
			t.Fatal(err)
		}
		wrong := filepath.Join(tmp, "wrong.yaml")
		sum := strings.Fields(string(sums))[0]
		if err := os.WriteFile(wrong, bytes.ReplaceAll(data, []byte(sum), []byte(strings.Repeat("0123456789abcdef", 4))), 0o644); err != nil {
			t.Fatal(err)
		}
		_, errOut, code := run(t, krewEnv, "kubectl", "krew", "install", "--manifest="+wrong, "--archive="+archive)
		if code == 0 || !strings.Contains(errOut, "checksum does not match") {
			t.Errorf("install with a wrong sha256: exit %d, want a checksum error:\n%s", code, errOut)
		}
	})

	out, errOut, code := run(t, krewEnv, "kubectl", "krew", "install", "--manifest="+manifest, "--archive="+archive)
	if code != 0 {
		t.Fatalf("kubectl krew install: exit %d\n%s", code, errOut)
	}
	if !strings.Contains(out+errOut, "kubectl_complete-acme") {
		t.Errorf("install did not show the completion caveats:\n%s%s", out, errOut)
	}
	// list and uninstall insist on a plugin index (a git clone of
	// krew-index); an empty local repository satisfies them offline.
	must(t, nil, "git", "init", "--quiet", filepath.Join(krewRoot, "index", "default"))
	if err := os.Mkdir(filepath.Join(krewRoot, "index", "default", "plugins"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out := must(t, krewEnv, "kubectl", "krew", "list"); !strings.Contains(out, "acme") {
		t.Errorf("kubectl krew list does not show acme:\n%s", out)
	}

	// kubectl finds the plugin in Krew's bin directory and runs it.
	installed := filepath.Join(krewRoot, "bin", "kubectl-acme")
	if out := must(t, krewEnv, "kubectl", "plugin", "list"); !strings.Contains(out, installed) {
		t.Errorf("kubectl plugin list does not show %s:\n%s", installed, out)
	}
	// The shape of `version -o json`, as a user's script reads it.
	type buildInfo struct {
		Version string `json:"version"`
		Commit  string `json:"commit"`
		Date    string `json:"date"`
	}
	var info buildInfo
	if err := json.Unmarshal([]byte(must(t, krewEnv, "kubectl", "acme", "version", "-o", "json")), &info); err != nil {
		t.Fatal(err)
	}
	commit := strings.TrimSpace(must(t, nil, "git", "rev-parse", "HEAD"))
	epoch := strings.TrimSpace(must(t, nil, "git", "log", "-1", "--format=%ct"))
	date := strings.TrimSpace(must(t, nil, "date", "-u", "-d", "@"+epoch, "+%Y-%m-%dT%H:%M:%SZ"))
	if info != (buildInfo{Version: version, Commit: commit, Date: date}) {
		t.Errorf("kubectl acme version: %+v, want version %s, commit %s, date %s", info, version, commit, date)
	}

	// The caveats' command installs completion; kubectl then completes
	// `kubectl acme <TAB>` through it.
	if runtime.GOOS != "windows" {
		must(t, krewEnv, "sh", "-c", `cp "${KREW_ROOT:-$HOME/.krew}"/store/acme/v*/kubectl_complete-acme "${KREW_ROOT:-$HOME/.krew}/bin/"`)
		out := must(t, krewEnv, "kubectl", "__complete", "acme", "")
		for _, want := range []string{"create", "issue", "status"} {
			if !strings.Contains(out, "\n"+want+"\t") && !strings.HasPrefix(out, want+"\t") {
				t.Errorf("kubectl __complete acme: no %q in\n%s", want, out)
			}
		}
	}

	must(t, krewEnv, "kubectl", "krew", "uninstall", "acme")
	if _, err := os.Lstat(installed); !os.IsNotExist(err) {
		t.Errorf("after uninstall, %s: %v", installed, err)
	}
	if _, errOut, code := run(t, krewEnv, "kubectl", "acme", "version"); code == 0 {
		t.Errorf("kubectl acme version still works after uninstall:\n%s", errOut)
	}
}
