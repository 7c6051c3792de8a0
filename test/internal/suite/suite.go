// Package suite is the setup that test/e2e and test/harness share: each
// test package's TestMain calls Main, which builds the plugin from the
// current source, starts one environment for the package (or attaches to
// the one TESTENV_DIR names) and runs the package's tests against it. The
// helpers below take the environment explicitly; each package wraps them
// around its own env and kube.
package suite

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

	testenv "github.com/kubectl-acme/kubectl-acme/test/env"
)

// Config is what a test package adds to the shared setup.
type Config struct {
	// Name prefixes messages and the temporary directory ("e2e").
	Name string
	// Options, when set, adds to the environment's options before it
	// starts; tmp is the run's temporary directory. Not called when
	// attaching to TESTENV_DIR.
	Options func(o *testenv.Options, tmp string) error
	// Ready receives the environment and its admin client before the
	// tests run.
	Ready func(e *testenv.Env, kube kubernetes.Interface)
	// Checks run after the tests passed; any error fails the run.
	Checks []func() error
}

// Main sets up the package's environment, runs m and returns the exit
// code; TestMain passes it to os.Exit. It returns instead of exiting so its
// deferred cleanups run.
func Main(m *testing.M, c Config) int {
	logf := func(format string, a ...any) { fmt.Fprintf(os.Stderr, c.Name+": "+format+"\n", a...) }
	repo, err := filepath.Abs("../..")
	if err != nil {
		logf("%v", err)
		return 1
	}
	tmp, err := os.MkdirTemp("", "kubectl-acme-"+c.Name+"-")
	if err != nil {
		logf("%v", err)
		return 1
	}
	keepTmp := false
	defer func() {
		if keepTmp {
			logf("kept %s (environment logs in %s)", tmp, filepath.Join(tmp, "env", "logs"))
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
		logf("build %v: %v", pkgs, err)
		return 1
	}
	if attach == "" {
		// The real node's sandbox program, static for its image.
		pause := exec.Command("go", "build", "-trimpath", "-ldflags=-buildid=", "-o", filepath.Join(tmpBin, "pause"), "./test/cmd/pause")
		pause.Dir = repo
		pause.Env = append(os.Environ(), "CGO_ENABLED=0")
		pause.Stdout, pause.Stderr = os.Stderr, os.Stderr
		if err := pause.Run(); err != nil {
			logf("build pause: %v", err)
			return 1
		}
	}
	// Under -race, the plugin is built with -race too.
	if err := buildRace(repo, tmpBin); err != nil {
		logf("build kubectl-acme -race: %v", err)
		return 1
	}

	var env *testenv.Env
	if dir := attach; dir != "" {
		if env, err = testenv.Load(dir); err != nil {
			logf("%v", err)
			return 1
		}
		logf("using the environment in %s", env.Dir)
	} else {
		binDir := os.Getenv("TESTENV_BIN_DIR")
		if binDir == "" {
			binDir = filepath.Join(repo, "bin")
		}
		o := testenv.Options{
			Dir:           filepath.Join(tmp, "env"),
			BinDir:        binDir,
			TestenvBinary: filepath.Join(tmpBin, "testenv"),
			// A test binary killed by -timeout or a panic runs no
			// defers; the kernel then stops the environment instead.
			DieWithParent: true,
			Log:           os.Stderr,
		}
		if c.Options != nil {
			if err := c.Options(&o, tmp); err != nil {
				logf("%v", err)
				return 1
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		env, err = testenv.Start(ctx, o)
		cancel()
		if err != nil {
			keepTmp = true
			logf("%v", err)
			return 1
		}
		defer func() {
			if err := env.Stop(); err != nil {
				logf("%v", err)
			}
		}()
		stopOnSignal(c.Name, env)
	}

	// Recovery records (keys of orders in progress) go to the run's own
	// directory, not the user's.
	os.Setenv("KUBECTL_ACME_STATE_DIR", filepath.Join(tmp, "state"))
	// kubectl finds plugins in PATH: the fresh kubectl-acme first, then
	// the environment's kubectl and tools.
	os.Setenv("PATH", tmpBin+string(os.PathListSeparator)+env.BinDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	kube, err := env.Client()
	if err != nil {
		logf("%v", err)
		return 1
	}
	if c.Ready != nil {
		c.Ready(env, kube)
	}
	code := m.Run()
	if code == 0 {
		for _, check := range c.Checks {
			if err := check(); err != nil {
				logf("%v", err)
				code = 1
			}
		}
	}
	keepTmp = code != 0
	return code
}

// stopOnSignal stops the environment on Ctrl-C or SIGTERM; the programs sit
// in their own process groups, so the terminal's SIGINT does not reach them.
func stopOnSignal(name string, e *testenv.Env) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		fmt.Fprintf(os.Stderr, "%s: %v: stopping the environment\n", name, sig)
		if err := e.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		}
		os.Exit(1)
	}()
}

// Kubectl runs the environment's kubectl with kubeconfig and returns its
// output and exit code; a kubectl that cannot run at all fails the test.
func Kubectl(t *testing.T, kubeconfig string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kubectl", args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
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

// NewNamespace creates a namespace named after the test, waits until pods
// can be created in it (its default ServiceAccount exists), and deletes it
// when the test ends, calling deleting (when set) with its name first.
func NewNamespace(t *testing.T, kube kubernetes.Interface, deleting func(ns string)) string {
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
		if deleting != nil {
			deleting(ns.Name)
		}
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

// WaitFor polls cond every 50ms until it holds, failing the test after
// timeout.
func WaitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// StartOwnEnv starts an environment of the test's own, configured by o
// with the programs of binDir, for faults that would break the tests
// running beside it in the shared one, or a CA configured otherwise.
func StartOwnEnv(t *testing.T, binDir string, o testenv.Options) (*testenv.Env, kubernetes.Interface) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	o.Dir, o.BinDir, o.DieWithParent, o.Log = filepath.Join(t.TempDir(), "env"), binDir, true, testLog{t}
	own, err := testenv.Start(ctx, o)
	if err != nil {
		t.Fatalf("start an environment: %v", err)
	}
	t.Cleanup(func() { _ = own.Stop() })
	t.Cleanup(func() {
		// The directory goes with the test: keep what explains a failure.
		if t.Failed() {
			logTail(t, filepath.Join(o.Dir, "logs", "simnode.log"), 80)
		}
	})
	client, err := own.Client()
	if err != nil {
		t.Fatal(err)
	}
	WaitFor(t, time.Minute, "the default ServiceAccount", func() bool {
		_, err := client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil
	})
	return own, client
}

// logTail logs the last n lines of file.
func logTail(t *testing.T, file string, n int) {
	b, err := os.ReadFile(file)
	if err != nil {
		t.Logf("%s: %v", file, err)
		return
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	t.Logf("end of %s:\n%s", file, strings.Join(lines[max(0, len(lines)-n):], "\n"))
}

// testLog writes an environment's progress lines to the test's log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
