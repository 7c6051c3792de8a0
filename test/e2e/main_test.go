// Package e2e runs kubectl-acme through the real kubectl against a real
// kube-apiserver and Pebble (see test/env). One environment serves the whole
// package; set TESTENV_DIR to use one already started by `hack/testenv up`.
package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	testenv "github.com/kubectl-acme/kubectl-acme/test/env"
)

// Shared by every test of the package; set once by TestMain.
var (
	env  *testenv.Env
	kube kubernetes.Interface
	// auditLog records the requests of budgetNamespace's ServiceAccounts
	// (TestAPIRequestBudget); empty when attached to an environment
	// started without it.
	auditLog string
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

// runMain returns instead of exiting, so its deferred cleanups run.
func runMain(m *testing.M) int {
	repo, err := filepath.Abs("../..")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	tmp, err := os.MkdirTemp("", "kubectl-acme-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	keepTmp := false
	defer func() {
		if keepTmp {
			fmt.Fprintf(os.Stderr, "e2e: kept %s (environment logs in %s)\n", tmp, filepath.Join(tmp, "env", "logs"))
			return
		}
		os.RemoveAll(tmp)
	}()

	// Build from the current source, so `go test` never runs a stale
	// plugin; testenv only when this run starts the environment.
	tmpBin := filepath.Join(tmp, "bin")
	attach := os.Getenv("TESTENV_DIR")
	pkgs := []string{"./cmd/kubectl-acme"}
	if attach == "" {
		pkgs = append(pkgs, "./test/cmd/testenv")
	}
	build := exec.Command("go", append([]string{"build", "-o", tmpBin + "/"}, pkgs...)...)
	build.Dir = repo
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: build %v: %v\n", pkgs, err)
		return 1
	}
	if attach == "" {
		// The real node's sandbox program, static for its image.
		pause := exec.Command("go", "build", "-trimpath", "-ldflags=-buildid=", "-o", filepath.Join(tmpBin, "pause"), "./test/cmd/pause")
		pause.Dir = repo
		pause.Env = append(os.Environ(), "CGO_ENABLED=0")
		pause.Stdout, pause.Stderr = os.Stderr, os.Stderr
		if err := pause.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: build pause: %v\n", err)
			return 1
		}
	}
	// Under -race, the plugin is built with -race too.
	if err := buildRace(repo, tmpBin); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: build kubectl-acme -race: %v\n", err)
		return 1
	}

	if dir := attach; dir != "" {
		if env, err = testenv.Load(dir); err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "e2e: using the environment in %s\n", env.Dir)
	} else {
		binDir := os.Getenv("TESTENV_BIN_DIR")
		if binDir == "" {
			binDir = filepath.Join(repo, "bin")
		}
		auditArgs, err := writeAuditPolicy(tmp)
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		env, err = testenv.Start(ctx, testenv.Options{
			APIServerArgs: auditArgs,
			Dir:           filepath.Join(tmp, "env"),
			BinDir:        binDir,
			TestenvBinary: filepath.Join(tmpBin, "testenv"),
			// A test binary killed by -timeout or a panic runs no
			// defers; the kernel then stops the environment instead.
			DieWithParent: true,
			// The HTTPRoute solver's tests need a Gateway.
			GatewayAPI: true,
			// The second ACME server (issue_stepca_test.go).
			StepCA: true,
			Log:    os.Stderr,
		})
		cancel()
		if err != nil {
			keepTmp = true
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
		defer func() {
			if err := env.Stop(); err != nil {
				fmt.Fprintln(os.Stderr, "e2e:", err)
			}
		}()
		stopOnSignal(env)
	}

	// Recovery records (keys of orders in progress) go to the run's own
	// directory, not the user's.
	os.Setenv("KUBECTL_ACME_STATE_DIR", filepath.Join(tmp, "state"))
	// kubectl finds plugins in PATH: the fresh kubectl-acme first, then
	// the environment's kubectl and tools.
	os.Setenv("PATH", tmpBin+string(os.PathListSeparator)+env.BinDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	if kube, err = env.Client(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	code := m.Run()
	if code == 0 {
		for _, check := range []func() error{checkSecretsStayedSecret, checkNoDataRace, checkNoRecoveryRecords} {
			if err := check(); err != nil {
				fmt.Fprintln(os.Stderr, "e2e:", err)
				code = 1
			}
		}
	}
	keepTmp = code != 0
	return code
}

// stopOnSignal stops the environment on Ctrl-C or SIGTERM; the programs sit
// in their own process groups, so the terminal's SIGINT does not reach them.
func stopOnSignal(e *testenv.Env) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		fmt.Fprintf(os.Stderr, "e2e: %v: stopping the environment\n", sig)
		if err := e.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
		}
		os.Exit(1)
	}()
}

// kubectl runs the environment's kubectl as the cluster admin and returns
// its output and exit code; a kubectl that cannot run at all fails the test.
func kubectl(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kubectl", args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+env.Kubeconfig)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit) && ctx.Err() == nil:
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("kubectl %s: %v\nstderr:\n%s", strings.Join(args, " "), err, errOut.String())
	}
	t.Logf("$ kubectl %s  # exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errOut.String())
	return out.String(), errOut.String(), code
}

var notNameChars = regexp.MustCompile(`[^a-z0-9-]+`)

// newNamespace creates a namespace named after the test, waits until pods
// can be created in it (its default ServiceAccount exists), and deletes it
// when the test ends.
func newNamespace(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	base := strings.Trim(notNameChars.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(base) > 40 {
		base = strings.TrimRight(base[:40], "-")
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "e2e-" + base + "-" + rand.String(5)}}
	ns, err := kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	t.Cleanup(func() {
		// t.Context is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		rememberNamespace(ns.Name)
		err := kube.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete namespace %s: %v", ns.Name, err)
		}
	})
	for {
		_, err := kube.CoreV1().ServiceAccounts(ns.Name).Get(ctx, "default", metav1.GetOptions{})
		if err == nil {
			return ns.Name
		}
		if !apierrors.IsNotFound(err) || ctx.Err() != nil {
			t.Fatalf("wait for the default ServiceAccount of %s: %v", ns.Name, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestEnvironment checks what the other tests take for granted.
func TestEnvironment(t *testing.T) {
	// kubectl runs the plugin built by TestMain, not an older one in bin/.
	path, err := exec.LookPath("kubectl-acme")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(path, os.TempDir()) {
		t.Errorf("kubectl-acme resolves to %s, want the one TestMain built", path)
	}
	if _, stderr, code := kubectl(t, "acme", "--help"); code != 0 {
		t.Errorf("kubectl acme --help: exit %d: %s", code, stderr)
	}

	// Pod Security admission is on, as in real clusters.
	ns := newNamespace(t)
	if _, _, code := kubectl(t, "label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted"); code != 0 {
		t.Fatal("label namespace failed")
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "privileged"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name:            "c",
			Image:           "busybox",
			SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)},
		}}},
	}
	_, err = kube.CoreV1().Pods(ns).Create(t.Context(), pod, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "PodSecurity") {
		t.Errorf("privileged pod in a restricted namespace: got %v, want a PodSecurity rejection", err)
	}
}

// recoveryRecords lists the recovery records kubectl-acme keeps for
// certificates in namespace ns ("" for all).
func recoveryRecords(ns string) []string {
	pattern := "*.pem"
	if ns != "" {
		pattern = ns + "_*.pem"
	}
	files, _ := filepath.Glob(filepath.Join(os.Getenv("KUBECTL_ACME_STATE_DIR"), "pending", pattern))
	return files
}

// checkNoRecoveryRecords: every key kept before a finalize ended up in a
// Secret, or a test collected it.
func checkNoRecoveryRecords() error {
	if left := recoveryRecords(""); len(left) > 0 {
		return fmt.Errorf("recovery records left behind: %v", left)
	}
	return nil
}

// startOwnEnv starts an environment of the test's own, configured by o,
// for faults that would break the tests running beside it in the shared
// one, or a CA configured otherwise.
func startOwnEnv(t *testing.T, o testenv.Options) (*testenv.Env, kubernetes.Interface) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	o.Dir, o.BinDir, o.DieWithParent, o.Log = filepath.Join(t.TempDir(), "env"), env.BinDir, true, testLog{t}
	own, err := testenv.Start(ctx, o)
	if err != nil {
		t.Fatalf("start an environment: %v", err)
	}
	t.Cleanup(func() { _ = own.Stop() })
	client, err := own.Client()
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the default ServiceAccount", func() bool {
		_, err := client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil
	})
	return own, client
}

// testLog writes an environment's progress lines to the test's log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
