package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestInterruptAtEachPhase: Ctrl-C (SIGINT) at each phase of an issue ends
// it non-zero with nothing left: no solver object, no Lease, and the user's
// own Ingress exactly as it was.
func TestInterruptAtEachPhase(t *testing.T) {
	t.Parallel()
	phases := []struct {
		name    string
		patched bool // the solver adds its paths to the user's Ingress "web"
		reached func(t *testing.T, ns string) bool
	}{
		{name: "lease taken", reached: func(t *testing.T, ns string) bool {
			_, err := kube.CoordinationV1().Leases(ns).Get(t.Context(), "acme-certificate-web", metav1.GetOptions{})
			return err == nil
		}},
		{name: "solver pod created", reached: func(t *testing.T, ns string) bool {
			pods, err := kube.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "acme.kubectl.io/certificate=web"})
			return err == nil && len(pods.Items) > 0
		}},
		{name: "self-check", reached: func(t *testing.T, ns string) bool {
			pods, err := kube.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "acme.kubectl.io/certificate=web"})
			return err == nil && len(pods.Items) > 0 && podReady(&pods.Items[0])
		}},
		{name: "paths added to the user's ingress", patched: true, reached: func(t *testing.T, ns string) bool {
			return strings.Contains(ingressSpec(t, ns, "web"), "/.well-known/acme-challenge/")
		}},
	}
	for _, ph := range phases {
		t.Run(ph.name, func(t *testing.T) {
			t.Parallel()
			ns := newNamespace(t)
			domain := "intr." + ns + ".example.test"
			// Routes of these issuers are never served: the run stays in
			// the self-check until it is interrupted.
			issuer, userIngress := "stuck", ""
			if ph.patched {
				issuer = "by-name"
				userIngress = createUserIngress(t, ns, domain)
			} else {
				createIssuer(t, env.Kubeconfig, ns, "stuck", "no-such-class")
			}
			run := startACME(t, env.Kubeconfig, issueArgs(ns, "web", issuer, "--domain", domain, "--self-check-timeout", "5m")...)
			waitFor(t, time.Minute, ph.name, func() bool { return ph.reached(t, ns) })
			if err := run.cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			_, errOut, code := run.wait()
			if code == 0 {
				t.Fatal("the interrupted issue exited 0")
			}
			if !strings.Contains(errOut, "interrupted") {
				t.Errorf("no word of the interruption:\n%s", errOut)
			}
			if left := solverObjects(t, ns, "web"); len(left) > 0 {
				t.Errorf("left behind after Ctrl-C: %v", left)
			}
			if _, err := kube.CoordinationV1().Leases(ns).Get(t.Context(), "acme-certificate-web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("the lease outlived the interrupted run (err %v)", err)
			}
			if ph.patched {
				if got := ingressSpec(t, ns, "web"); got != userIngress {
					t.Errorf("the user's Ingress changed:\nbefore %s\nafter  %s", userIngress, got)
				}
			}
		})
	}
}
