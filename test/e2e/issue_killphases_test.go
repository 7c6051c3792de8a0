package e2e

import (
	"bytes"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestKillAtLatePhases sends SIGINT or SIGKILL to `issue` while it waits
// on the CA's validation, on finalization (the CA has issued, its answer
// is held) and on the TLS Secret's write. Those steps take milliseconds
// against Pebble, so proxies widen them, holding the one request the
// phase waits on until the signal: the CA proxy the challenge POST before
// Pebble sees it, or Pebble's answer to finalize; an HTTP proxy in front
// of the API server the Secret's create or update before the API server
// sees it. The plugin runs unchanged.
//
// After SIGINT the run ends non-zero, saying it was interrupted, with no
// solver object and no Lease left. After SIGKILL, `cleanup` removes what
// was left once the dead run's Lease has expired, the Lease included. In
// both, the account key Secret is unchanged, and the TLS Secret is absent
// (a first issue) or still holds the previous certificate whole (a
// renewal), except when SIGINT arrives during the Secret write, which the
// run then completes: the CA has issued, and the certificate must not be
// lost.
//
// Once the CA may have issued (finalization, Secret write), the run keeps
// the certificate's key in a recovery record from just before finalize
// until the Secret holds it. The next issue of the certificate collects
// the certificate the CA issued for the killed run, without a new order.
func TestKillAtLatePhases(t *testing.T) {
	t.Parallel()
	phases := []struct {
		name string
		// renewal: the Secret holds a certificate before the killed run.
		renewal bool
		// ca and api hold the phase's request at the CA or the API server.
		ca  func(p *caProxy, g *gate)
		api bool
		// match picks the request to hold; ns and cert name the target.
		match func(ns, cert string) func(*http.Request) bool
	}{
		{name: "validation", ca: (*caProxy).holdBefore, match: func(string, string) func(*http.Request) bool { return postTo(challengePath) }},
		{name: "finalization", renewal: true, ca: (*caProxy).holdAfter, match: func(string, string) func(*http.Request) bool { return postTo(finalizePath) }},
		{name: "secret write", renewal: true, api: true, match: secretWrite},
	}
	for _, ph := range phases {
		for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGKILL} {
			t.Run(ph.name+"/"+sig.String(), func(t *testing.T) {
				t.Parallel()
				ns := newNamespace(t)
				const cert = "web"
				domain := "late." + ns + ".example.test"
				ca := startCAProxy(t)
				createIssuerVia(t, ca, ns, "proxied")
				accountKey := secretData(t, kube, ns, "proxied")
				var before []byte
				if ph.renewal {
					mustACME(t, env.Kubeconfig, issueArgs(ns, cert, "proxied", "--domain", domain)...)
					verifySecret(t, ns, cert, []string{domain})
					before = secretData(t, kube, ns, cert)
				}

				hold := newGate(ph.match(ns, cert))
				defer hold.Release()
				kubeconfig := env.Kubeconfig
				if ph.api {
					kubeconfig = startAPIHTTPProxy(t, env.Kubeconfig, hold).Kubeconfig
				} else {
					ph.ca(ca, hold)
				}
				run := startACME(t, kubeconfig, issueArgs(ns, cert, "proxied", "--domain", domain)...)
				// The serial the CA issued, once the run has seen it.
				issuedSerial := func() string {
					m := regexp.MustCompile(`issued +https://\S+/certZ/([0-9a-f]+)`).FindStringSubmatch(run.errOut.String())
					if m == nil {
						return ""
					}
					return strings.TrimLeft(m[1], "0")
				}
				hold.waitHeld(t, time.Minute, ph.name)
				if err := run.cmd.Process.Signal(sig); err != nil {
					t.Fatal(err)
				}
				wrote := false
				if sig == syscall.SIGINT {
					if ph.api {
						// The run finishes the write of what the CA issued.
						waitFor(t, 30*time.Second, "the plugin to notice the interrupt", func() bool {
							return strings.Contains(run.errOut.String(), "interrupted")
						})
						hold.Release()
						wrote = true
					}
					_, errOut, code := run.wait()
					if ph.renewal && !wrote && (!strings.Contains(errOut, "its key is kept in") || !strings.Contains(errOut, "without a new order")) {
						t.Errorf("the message does not say where the key is kept:\n%s", errOut)
					}
					switch {
					case wrote && code != 0:
						t.Errorf("interrupted during the Secret write: exit %d, want 0 (the write completes)", code)
					case !wrote && code == 0:
						t.Error("the interrupted issue exited 0")
					}
					if !strings.Contains(errOut, "interrupted") {
						t.Errorf("no word of the interruption:\n%s", errOut)
					}
					assertNoLease(t, ns, cert)
				} else {
					if _, _, code := run.wait(); code == 0 {
						t.Fatal("the killed issue exited 0")
					}
					// The held request never reaches the server: its client is dead.
					hold.waitAbandoned(t)
					hold.Release() // the API server is reachable again
					waitLeaseFree(t, ns, cert)
					out, errOut := mustCleanupVia(t, kubeconfig, ns, "--older-than", "0s")
					if ph.renewal && !strings.Contains(errOut, "kubectl acme issue "+cert+" -n "+ns) {
						t.Errorf("cleanup does not point at the kept key:\n%s", errOut)
					}
					if !strings.Contains(out, "lease/acme-certificate-"+cert+" deleted") {
						t.Errorf("cleanup does not report deleting the dead run's expired lease:\n%s", out)
					}
					assertNoLease(t, ns, cert)
				}
				assertNoSolverObjects(t, ns)
				if got := secretData(t, kube, ns, "proxied"); !bytes.Equal(got, accountKey) {
					t.Error("the account key Secret changed")
				}
				switch {
				case wrote:
					verifySecret(t, ns, cert, []string{domain})
					if bytes.Equal(secretData(t, kube, ns, cert), before) {
						t.Error("the Secret still holds the previous certificate")
					}
				case ph.renewal:
					if !bytes.Equal(secretData(t, kube, ns, cert), before) {
						t.Error("the Secret no longer holds the previous certificate")
					}
					verifySecret(t, ns, cert, []string{domain})
				default:
					if _, err := kube.CoreV1().Secrets(ns).Get(t.Context(), cert, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
						t.Errorf("a Secret was written (err %v)", err)
					}
				}

				recorded := recoveryRecords(ns)
				if !ph.renewal || wrote {
					if len(recorded) > 0 {
						t.Errorf("recovery records left: %v", recorded)
					}
					return
				}
				if len(recorded) != 1 {
					t.Fatalf("want one recovery record with the key, got %v", recorded)
				}
				// The next issue collects the certificate the CA issued. The
				// record is the cluster's as the kubeconfig names it.
				hold.Release()
				serial, orders := issuedSerial(), ca.NewOrders()
				_, errOut, _ := acmeCmd(t, kubeconfig, issueArgs(ns, cert, "proxied", "--domain", domain)...)
				if !strings.Contains(errOut, "no new order needed") {
					t.Errorf("the next issue does not say it collected the kept certificate:\n%s", errOut)
				}
				if n := ca.NewOrders() - orders; n != 0 {
					t.Errorf("the next issue placed %d new orders, want none", n)
				}
				leaf := verifySecret(t, ns, cert, []string{domain})
				if bytes.Equal(secretData(t, kube, ns, cert), before) {
					t.Error("the Secret still holds the previous certificate")
				}
				if got := strings.ToLower(leaf.SerialNumber.Text(16)); serial != "" && got != serial {
					t.Errorf("the Secret holds serial %s, want %s, which the CA issued to the killed run", got, serial)
				}
				if ph.api && serial == "" {
					t.Error("the killed run did not report the serial the CA issued")
				}
				if left := recoveryRecords(ns); len(left) > 0 {
					t.Errorf("recovery record left after it was collected: %v", left)
				}
			})
		}
	}
}
