package e2e

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	testenv "github.com/kubectl-acme/kubectl-acme/test/env"
)

// TestCAStoppedMidOrder: the CA dies after the order was created, while
// the solver pod starts. The issue fails at once, saying the CA cannot be
// reached, and leaves no solver object, no Lease and no Secret behind. It
// runs in an environment of its own, whose Pebble it kills.
func TestCAStoppedMidOrder(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	own, client := startOwnEnv(t, testenv.Options{})
	const ns = "default"
	mustACME(t, own.Kubeconfig, "create", "issuer", "pebble", "-n", ns, "--server", own.ACMEServer, "--ca-bundle", own.ACMECABundle,
		"--email", "e2e@example.com", "--ingress-class", own.IngressClass, "--agree-tos")

	run := startACME(t, own.Kubeconfig, "issue", "web", "-n", ns, "--issuer", "pebble", "--domain", "ca-down.example.test",
		"--connect-to", own.IngressHTTP, "--timeout", "1m")
	// The order exists once the solver pod does; the pod needs a few
	// hundred milliseconds to become ready, so the CA dies before the
	// challenge is accepted.
	waitFor(t, time.Minute, "the solver pod", func() bool {
		pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "acme.kubectl.io/certificate=web"})
		return err == nil && len(pods.Items) > 0
	})
	if err := syscall.Kill(pidOf(t, own.Dir, "pebble"), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := run.wait()
	if code == 0 {
		t.Fatal("issue succeeded with the CA gone")
	}
	if !strings.Contains(errOut, "connection refused") {
		t.Errorf("the message does not say the CA cannot be reached:\n%s", errOut)
	}
	sel := metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=http01-solver"}
	pods, _ := client.CoreV1().Pods(ns).List(ctx, sel)
	svcs, _ := client.CoreV1().Services(ns).List(ctx, sel)
	ings, _ := client.NetworkingV1().Ingresses(ns).List(ctx, sel)
	cms, _ := client.CoreV1().ConfigMaps(ns).List(ctx, sel)
	if n := len(pods.Items) + len(svcs.Items) + len(ings.Items) + len(cms.Items); n > 0 {
		t.Errorf("%d solver objects left", n)
	}
	if _, err := client.CoordinationV1().Leases(ns).Get(ctx, "acme-certificate-web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the lease outlived the run (err %v)", err)
	}
	if _, err := client.CoreV1().Secrets(ns).Get(ctx, "web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("a Secret was written (err %v)", err)
	}
	if out := mustACME(t, own.Kubeconfig, "status", "-n", ns); !strings.Contains(out, "Failed") {
		t.Errorf("status does not show the failure:\n%s", out)
	}
}

// pidOf reads a program's pid from an environment's pids file.
func pidOf(t *testing.T, dir, name string) int {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "pids"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == name {
			pid, err := strconv.Atoi(fields[1])
			if err != nil {
				t.Fatal(err)
			}
			return pid
		}
	}
	t.Fatalf("no %s in %s/pids", name, dir)
	return 0
}
