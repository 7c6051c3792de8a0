package e2e

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The same commands against smallstep's step-ca, the environment's second
// ACME server (test/env stepca.go), so nothing depends on Pebble's quirks.
// step-ca offers neither ARI nor profiles, caps lifetimes at 24 hours
// (testenv.StepCAMaxLifetime) and answers a longer notAfter with
// serverInternal at finalize.

// needStepCA skips nothing: an environment without step-ca fails the test,
// saying how to get one.
func needStepCA(t *testing.T) {
	t.Helper()
	if env.StepCAServer == "" {
		t.Fatal("the environment runs no step-ca: start it with `hack/testenv up DIR` (--stepca, the default), after hack/tools.sh built bin/step-ca")
	}
}

// createStepCAIssuer registers an Issuer against step-ca in ns.
func createStepCAIssuer(t *testing.T, ns, name string, extra ...string) string {
	t.Helper()
	return mustACME(t, env.Kubeconfig, append([]string{"create", "issuer", name, "-n", ns,
		"--server", env.StepCAServer, "--ca-bundle", env.StepCACABundle,
		"--email", "e2e@example.com", "--ingress-class", env.IngressClass, "--agree-tos"}, extra...)...)
}

// verifyStepCASecret checks that Secret name holds a certificate and its
// key whose chain verifies against step-ca's root for every name.
func verifyStepCASecret(t *testing.T, ns, name string, names ...string) *x509.Certificate {
	t.Helper()
	sec, err := kube.CoreV1().Secrets(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get secret %s: %v", name, err)
	}
	pair, err := tls.X509KeyPair(sec.Data["tls.crt"], sec.Data["tls.key"])
	if err != nil {
		t.Fatalf("secret %s: certificate and key do not match: %v", name, err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	inter := x509.NewCertPool()
	for _, der := range pair.Certificate[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		inter.AddCert(c)
	}
	roots := certPool(t, env.StepCARoots)
	for _, n := range names {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: n, Roots: roots, Intermediates: inter}); err != nil {
			t.Errorf("secret %s does not verify for %s against step-ca's root: %v", name, n, err)
		}
	}
	return leaf
}

// TestStepCAIssueRenewRevoke: issue (RSA with an IP SAN and --duration 2h,
// ECDSA), renew without ARI, and revoke twice, against step-ca.
func TestStepCAIssueRenewRevoke(t *testing.T) {
	needStepCA(t)
	t.Parallel()
	ns := newNamespace(t)
	if out := createStepCAIssuer(t, ns, "step"); !strings.Contains(out, "issuer/step registered") {
		t.Errorf("create issuer said %q", out)
	}

	rsaName, ecName := "rsa."+ns+".example.test", "ec."+ns+".example.test"
	mustACME(t, env.Kubeconfig, issueArgs(ns, "rsa", "step", "--domain", rsaName, "--ip", "127.0.0.1", "--duration", "2h", "-q")...)
	leaf := verifyStepCASecret(t, ns, "rsa", rsaName, "127.0.0.1")
	if _, ok := leaf.PublicKey.(*rsa.PublicKey); !ok {
		t.Errorf("rsa: key %T, want RSA", leaf.PublicKey)
	}
	if len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) {
		t.Errorf("rsa: IP SANs %v, want 127.0.0.1", leaf.IPAddresses)
	}
	// step-ca honours the order's notAfter and backdates notBefore by a
	// minute (its default backdate).
	if left := time.Until(leaf.NotAfter); left < 2*time.Hour-5*time.Minute || left > 2*time.Hour+time.Minute {
		t.Errorf("rsa: expires in %s, want 2h (--duration)", left.Round(time.Second))
	}
	assertNoSolverObjects(t, ns)

	mustACME(t, env.Kubeconfig, issueArgs(ns, "ec", "step", "--domain", ecName, "--key-algorithm", "ecdsa", "-q")...)
	ecLeaf := verifyStepCASecret(t, ns, "ec", ecName)
	if _, ok := ecLeaf.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Errorf("ec: key %T, want ECDSA", ecLeaf.PublicKey)
	}
	// No duration asked: step-ca's default, 24 hours.
	if life := ecLeaf.NotAfter.Sub(ecLeaf.NotBefore); life < 24*time.Hour || life > 24*time.Hour+2*time.Minute {
		t.Errorf("ec: lifetime %s, want step-ca's default 24h", life)
	}
	assertNoSolverObjects(t, ns)

	// step-ca offers no ARI: renew says so and uses the lifetime rule.
	out, _, code := acmeCmd(t, env.Kubeconfig, "renew", "--all", "-n", ns, "--connect-to", env.IngressHTTP, "-q")
	if code != 0 || strings.Count(out, "not due (renewal time") != 2 || !strings.Contains(out, "the CA offers no renewal information (ARI)") {
		t.Errorf("renew of fresh certificates: exit %d, want 0 with both not due and no ARI said:\n%s", code, out)
	}
	out, _, code = acmeCmd(t, env.Kubeconfig, "renew", "ec", "-n", ns, "--force", "--connect-to", env.IngressHTTP, "-q")
	if code != 10 || !strings.Contains(out, "certificate/"+ns+"/ec renewed") {
		t.Fatalf("renew --force: exit %d, want 10 (renewed):\n%s", code, out)
	}
	renewed := verifyStepCASecret(t, ns, "ec", ecName)
	if renewed.SerialNumber.Cmp(ecLeaf.SerialNumber) == 0 {
		t.Error("renew kept the old certificate")
	}
	assertNoSolverObjects(t, ns)

	revokeTwice(t, ns, "ec")
	if left := recoveryRecords(ns); len(left) > 0 {
		t.Errorf("recovery records left: %v", left)
	}
}

// TestStepCALacks: what step-ca does not offer is said plainly, before
// anything is ordered; a lifetime above its maximum is refused at
// finalize, and the plugin says what happened instead of sending the user
// after a certificate that was never issued.
func TestStepCALacks(t *testing.T) {
	needStepCA(t)
	t.Parallel()
	ns := newNamespace(t)

	// Profiles: create issuer --profile fails before the account key exists.
	_, errOut, code := acmeCmd(t, env.Kubeconfig, "create", "issuer", "profiled", "-n", ns,
		"--server", env.StepCAServer, "--ca-bundle", env.StepCACABundle, "--ingress-class", env.IngressClass, "--agree-tos", "--profile", "shortlived")
	if code == 0 || !strings.Contains(errOut, `profile "shortlived": the CA offers no profiles`) {
		t.Errorf("create issuer --profile: exit %d, want a failure saying the CA offers no profiles:\n%s", code, errOut)
	}
	if _, err := kube.CoreV1().Secrets(ns).Get(t.Context(), "profiled", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("create issuer --profile left an account key Secret: %v", err)
	}

	createStepCAIssuer(t, ns, "step")
	_, errOut, code = acmeCmd(t, env.Kubeconfig, "get", "profiles", "--issuer", "step", "-n", ns)
	if code != 0 || !strings.Contains(errOut, "offers no profiles") {
		t.Errorf("get profiles: exit %d, want 0 saying there are none:\n%s", code, errOut)
	}
	_, errOut, code = acmeCmd(t, env.Kubeconfig, issueArgs(ns, "profiled", "step", "--domain", "p."+ns+".example.test", "--profile", "shortlived", "-q")...)
	if code == 0 || !strings.Contains(errOut, "the CA offers no profiles") || !strings.Contains(errOut, "nothing was ordered") {
		t.Errorf("issue --profile: exit %d, want a failure saying the CA offers no profiles and nothing was ordered:\n%s", code, errOut)
	}
	if _, err := kube.CoreV1().Secrets(ns).Get(t.Context(), "profiled", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("issue --profile wrote a Secret: %v", err)
	}
	assertNoSolverObjects(t, ns)

	// A lifetime above step-ca's 24 h maximum: serverInternal at finalize.
	// Twice, since the first run's answer used to promise the second one
	// a certificate to collect.
	for run := 1; run <= 2; run++ {
		_, errOut, code = acmeCmd(t, env.Kubeconfig, issueArgs(ns, "long", "step", "--domain", "long."+ns+".example.test", "--duration", "48h", "-q")...)
		if code == 0 {
			t.Fatalf("run %d: --duration 48h was issued by a CA whose maximum is 24h", run)
		}
		for _, want := range []string{"the order is ready and the CA issued no certificate", "above the CA's maximum", "48h0m0s lifetime", "--duration"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("run %d: the error does not say %q:\n%s", run, want, errOut)
			}
		}
		for _, wrong := range []string{"may have issued", "collects it", "found the key of order"} {
			if strings.Contains(errOut, wrong) {
				t.Errorf("run %d: the error says %q, which is false here:\n%s", run, wrong, errOut)
			}
		}
		// The refused finalize is sent once, not retried until a deadline.
		if order := lastOrderURL(t, ns, "long"); order == "" {
			t.Errorf("run %d: no order recorded", run)
		} else if n := stepCAFinalizes(t, order); n != 1 {
			t.Errorf("run %d: step-ca saw %d finalize requests for %s, want 1", run, n, order)
		}
		if left := recoveryRecords(ns); len(left) > 0 {
			t.Errorf("run %d: a recovery record claims a certificate may exist: %v", run, left)
		}
		assertNoSolverObjects(t, ns)
	}
	if _, err := kube.CoreV1().Secrets(ns).Get(t.Context(), "long", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("a refused order wrote a Secret: %v", err)
	}
	out := mustACME(t, env.Kubeconfig, "status", "long", "-n", ns)
	if !strings.Contains(out, "the CA issued no certificate") {
		t.Errorf("status does not show why the order failed:\n%s", out)
	}
}

// stepCAFinalizes counts the finalize requests of order in step-ca's
// log, which has a path= field for each request (logging/handler.go).
func stepCAFinalizes(t *testing.T, order string) int {
	t.Helper()
	data, err := os.ReadFile(env.LogFile("step-ca"))
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(order)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(data), "path="+u.Path+"/finalize ")
}

// lastOrderURL is the URL of certificate name's last order.
func lastOrderURL(t *testing.T, ns, name string) string {
	t.Helper()
	var cert struct {
		Status struct {
			LastOrder struct{ URL string } `json:"lastOrder"`
		} `json:"status"`
	}
	out := mustACME(t, env.Kubeconfig, "status", name, "-n", ns, "-o", "json")
	if err := json.Unmarshal([]byte(out), &cert); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, out)
	}
	return cert.Status.LastOrder.URL
}
