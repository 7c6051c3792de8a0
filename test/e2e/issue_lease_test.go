package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/store"
)

// storedCertificate reads the Certificate kubectl-acme stored.
func storedCertificate(t *testing.T, ns, name string) *certmanager.Certificate {
	t.Helper()
	cm, err := kube.CoreV1().ConfigMaps(ns).Get(t.Context(), "acme-certificate-"+name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get certificate %s: %v", name, err)
	}
	c, err := store.DecodeCertificate(cm)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestLeaseOneIssuerAtATime: of two `issue` of the same certificate
// started together, exactly one orders and finalizes; the other fails at
// once, naming the holder. With --wait, the second waits its turn.
func TestLeaseOneIssuerAtATime(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createIssuer(t, env.Kubeconfig, ns, "pebble", env.IngressClass)
	name := "lease." + ns + ".example.test"

	a := startACME(t, env.Kubeconfig, issueArgs(ns, "web", "pebble", "--domain", name)...)
	b := startACME(t, env.Kubeconfig, issueArgs(ns, "web", "pebble", "--domain", name)...)
	aOut, aErr, aCode := a.wait()
	bOut, bErr, bCode := b.wait()
	if (aCode == 0) == (bCode == 0) {
		t.Fatalf("want exactly one success, got exits %d and %d", aCode, bCode)
	}
	winner, winOut, loseErr := a, aOut, bErr
	if bCode == 0 {
		winner, winOut, loseErr = b, bOut, aErr
	}
	holder := fmt.Sprintf("pid %d", winner.pid())
	if !strings.HasPrefix(loseErr, "error: ") || !strings.Contains(loseErr, "is being issued by") || !strings.Contains(loseErr, holder) {
		t.Errorf("the loser does not name the holder (%s):\n%s", holder, loseErr)
	}
	if strings.Contains(loseErr, "order") {
		t.Errorf("the loser ordered anyway:\n%s", loseErr)
	}
	cert := storedCertificate(t, ns, "web")
	if cert.Status.Revision != 1 {
		t.Errorf("revision %d after one successful issue, want 1", cert.Status.Revision)
	}
	if !strings.Contains(winOut, "serial "+cert.Status.Serial) {
		t.Errorf("the winner's serial is not the stored one (%s):\n%s", cert.Status.Serial, winOut)
	}
	verifySecret(t, ns, "web", []string{name})
	assertNoSolverObjects(t, ns)
	assertNoLease(t, ns, "web")

	// With --wait, both issue, one after the other.
	first := startACME(t, env.Kubeconfig, "issue", "web", "-n", ns, "--connect-to", env.IngressHTTP, "--wait")
	waitFor(t, 30*time.Second, "the first run's lease", func() bool {
		_, err := kube.CoordinationV1().Leases(ns).Get(t.Context(), "acme-certificate-web", metav1.GetOptions{})
		return err == nil
	})
	second := startACME(t, env.Kubeconfig, "issue", "web", "-n", ns, "--connect-to", env.IngressHTTP, "--wait")
	_, _, code1 := first.wait()
	_, errOut2, code2 := second.wait()
	if code1 != 0 || code2 != 0 {
		t.Fatalf("with --wait both must succeed: exits %d, %d", code1, code2)
	}
	if !strings.Contains(errOut2, "waiting for") || !strings.Contains(errOut2, fmt.Sprintf("pid %d", first.pid())) {
		t.Errorf("the second run does not say whom it waits for:\n%s", errOut2)
	}
	if cert := storedCertificate(t, ns, "web"); cert.Status.Revision != 3 {
		t.Errorf("revision %d after three issues, want 3 (a waiter must not work from a stale status)", cert.Status.Revision)
	}
	verifySecret(t, ns, "web", []string{name})
	assertNoSolverObjects(t, ns)
	assertNoLease(t, ns, "web")
}
