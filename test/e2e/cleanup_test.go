package e2e

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestCleanupAfterSIGKILL kills `issue` with SIGKILL at several phases:
// nothing can clean up then. The killed run's lease still names it, so a
// second issue reports it and cleanup leaves its objects alone; once the
// lease expires, `cleanup --older-than 0s` removes every leftover and the
// certificate issues normally. The phases share the wait for the leases to
// expire.
func TestCleanupAfterSIGKILL(t *testing.T) {
	t.Parallel()
	podsOf := func(t *testing.T, ns string) []corev1.Pod {
		pods, err := kube.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "acme.kubectl.io/certificate=web"})
		if err != nil {
			return nil
		}
		return pods.Items
	}
	type phase struct {
		name string
		// reached reports whether the run got far enough to be killed.
		reached func(t *testing.T, ns string) bool

		// patched: the solver adds its paths to the user's Ingress "web"
		// (http01.ingress.name), whose class nobody serves.
		patched bool

		ns, domain  string
		left        []string
		userIngress string // its spec before the run
	}
	phases := []*phase{
		{name: "lease taken", reached: func(t *testing.T, ns string) bool {
			_, err := kube.CoordinationV1().Leases(ns).Get(t.Context(), "acme-certificate-web", metav1.GetOptions{})
			return err == nil
		}},
		{name: "solver pod created", reached: func(t *testing.T, ns string) bool { return len(podsOf(t, ns)) > 0 }},
		{name: "self-check", reached: func(t *testing.T, ns string) bool {
			pods := podsOf(t, ns)
			return len(pods) > 0 && podReady(&pods[0])
		}},
		{name: "paths added to the user's ingress", patched: true, reached: func(t *testing.T, ns string) bool {
			return strings.Contains(ingressSpec(t, ns, "web"), "/.well-known/acme-challenge/")
		}},
	}
	for _, ph := range phases {
		// The parent's namespace: it must outlive the subtest.
		ns := newNamespace(t)
		t.Run("kill at "+ph.name, func(t *testing.T) {
			ph.ns = ns
			// Routes of this issuer are never served: the run stays in the
			// self-check until it is killed.
			createIssuer(t, env.Kubeconfig, ns, "stuck", "no-such-class")
			createIssuer(t, env.Kubeconfig, ns, "pebble", env.IngressClass)
			ph.domain = "kill." + ns + ".example.test"
			issuer := "stuck"
			if ph.patched {
				issuer = "by-name"
				ph.userIngress = createUserIngress(t, ns, ph.domain)
			}

			run := startACME(t, env.Kubeconfig, issueArgs(ns, "web", issuer, "--domain", ph.domain, "--self-check-timeout", "5m")...)
			waitFor(t, time.Minute, ph.name, func() bool { return ph.reached(t, ns) })
			if err := run.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			if _, _, code := run.wait(); code == 0 {
				t.Fatal("the killed issue exited 0")
			}
			ph.left = solverObjects(t, ns, "web")
			t.Logf("left behind after SIGKILL: %v", ph.left)

			// The dead run's lease is still held.
			_, errOut, code := acmeCmd(t, env.Kubeconfig, issueArgs(ns, "web", "pebble", "--domain", ph.domain)...)
			holder := fmt.Sprintf("pid %d", run.pid())
			if code == 0 || !strings.Contains(errOut, "is being issued by") || !strings.Contains(errOut, holder) || !strings.Contains(errOut, "--wait") {
				t.Errorf("issue during the dead run's lease: exit %d, want a message naming the holder (%s):\n%s", code, holder, errOut)
			}
			if len(ph.left) > 0 {
				out, errOut := mustCleanup(t, ns, "--older-than", "0s")
				if !strings.Contains(errOut, "skipped") || !strings.Contains(errOut, holder) || strings.Contains(out, "deleted") {
					t.Errorf("cleanup while the lease is held must skip, naming the holder:\n%s%s", out, errOut)
				}
				if now := solverObjects(t, ns, "web"); len(now) != len(ph.left) {
					t.Errorf("cleanup deleted objects of a held lease: %v -> %v", ph.left, now)
				}
			}
		})
	}
	for _, ph := range phases {
		if ph.ns != "" {
			waitLeaseFree(t, ph.ns, "web")
		}
	}
	for _, ph := range phases {
		t.Run("cleanup after "+ph.name, func(t *testing.T) {
			ns, left := ph.ns, ph.left
			if ns == "" {
				t.Skip("the kill failed")
			}
			if len(left) > 0 {
				// Fresh objects are kept by the default --older-than 1h.
				out, errOut := mustCleanup(t, ns)
				if out != "" || !strings.Contains(errOut, "No leftover solver objects older than 1h0m0s") {
					t.Errorf("cleanup with the default age deleted fresh objects:\n%s%s", out, errOut)
				}
				out, _ = mustCleanup(t, ns, "--older-than", "0s", "--dry-run")
				for _, o := range left {
					if !strings.Contains(out, o+" would be deleted (dry run)") {
						t.Errorf("dry run does not list %s:\n%s", o, out)
					}
				}
				if now := solverObjects(t, ns, "web"); len(now) != len(left) {
					t.Errorf("dry run deleted objects: %v -> %v", left, now)
				}
				out, _ = mustCleanup(t, ns, "--older-than", "0s")
				for _, o := range left {
					if !strings.Contains(out, o+" deleted") {
						t.Errorf("cleanup does not report deleting %s:\n%s", o, out)
					}
				}
			}
			if ph.patched {
				if got := ingressSpec(t, ns, "web"); got != ph.userIngress {
					t.Errorf("the user's ingress is not restored:\nbefore %s\nafter  %s", ph.userIngress, got)
				}
				// Leave the user's Ingress out of the solver object count.
				if err := kube.NetworkingV1().Ingresses(ns).Delete(t.Context(), "web", metav1.DeleteOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			assertNoSolverObjects(t, ns)

			// The certificate issues normally after the crash.
			mustACME(t, env.Kubeconfig, issueArgs(ns, "web", "pebble", "--domain", ph.domain)...)
			verifySecret(t, ns, "web", []string{ph.domain})
			assertNoSolverObjects(t, ns)
			assertNoLease(t, ns, "web")
		})
	}
}

func mustCleanup(t *testing.T, ns string, args ...string) (stdout, stderr string) {
	t.Helper()
	return mustCleanupVia(t, env.Kubeconfig, ns, args...)
}
