package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	testenv "github.com/kubectl-acme/kubectl-acme/test/env"
)

// TestCAFaults puts the fake CA proxy in front of Pebble: a rateLimited
// answer is reported with when to retry and not retried blindly; 5xx
// answers are retried, a bounded number of times.
func TestCAFaults(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ca := startCAProxy(t)
	createIssuerVia(t, ca, ns, "proxied")
	name := "faults." + ns + ".example.test"

	t.Run("rateLimited", func(t *testing.T) {
		ca.answerNewOrder(func(w http.ResponseWriter, r *http.Request, n int) bool {
			problem(w, http.StatusTooManyRequests, "rateLimited", "too many new orders recently", "Retry-After", "3600")
			return true
		})
		before := ca.NewOrders()
		start := time.Now()
		_, errOut, code := acmeCmd(t, env.Kubeconfig, issueArgs(ns, "limited", "proxied", "--domain", name)...)
		// The path type decided in the dry run before the order may come
		// first as progress; the CA's problem is the error, and the last line.
		lines := strings.Split(strings.TrimSpace(errOut), "\n")
		if last := lines[len(lines)-1]; code == 0 || !strings.HasPrefix(last, "error: ") || !strings.Contains(last, "rateLimited: too many new orders recently") || strings.Contains(errOut, "retrying") {
			t.Fatalf("exit %d, want the CA's rateLimited problem as the error, not retried:\n%s", code, errOut)
		}
		if n := ca.NewOrders() - before; n != 1 {
			t.Errorf("the CA saw %d new orders, want 1: a rate limit must not be retried blindly", n)
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("issue took %s: it waited instead of failing", took)
		}
		i := strings.Index(errOut, "(retry after ")
		if i < 0 {
			t.Fatalf("the message does not say when to retry:\n%s", errOut)
		}
		at, err := time.Parse(time.RFC3339, strings.TrimSuffix(strings.Fields(errOut[i+len("(retry after "):])[0], ")"))
		if err != nil || at.Before(start.Add(59*time.Minute)) || at.After(time.Now().Add(61*time.Minute)) {
			t.Errorf("retry after %v (%v), want an hour from now", at, err)
		}
		out := mustACME(t, env.Kubeconfig, "status", "-n", ns)
		if !strings.Contains(out, "rateLimited") {
			t.Errorf("status does not show the rate limit:\n%s", out)
		}
		assertNoSolverObjects(t, ns)
		assertNoLease(t, ns, "limited")
	})

	t.Run("server errors", func(t *testing.T) {
		first := ca.NewOrders()
		ca.answerNewOrder(func(w http.ResponseWriter, r *http.Request, n int) bool {
			if n <= first+2 {
				problem(w, http.StatusInternalServerError, "serverInternal", "try again")
				return true
			}
			return false
		})
		mustACME(t, env.Kubeconfig, issueArgs(ns, "flaky", "proxied", "--domain", name)...)
		if n := ca.NewOrders() - first; n != 3 {
			t.Errorf("the CA saw %d new orders, want 3 (two 500s, then success)", n)
		}
		verifySecret(t, ns, "flaky", []string{name})

		// A CA that keeps failing is given up on, not retried forever.
		first = ca.NewOrders()
		ca.answerNewOrder(func(w http.ResponseWriter, r *http.Request, n int) bool {
			problem(w, http.StatusServiceUnavailable, "serverInternal", "down for maintenance")
			return true
		})
		_, errOut, code := acmeCmd(t, env.Kubeconfig, issueArgs(ns, "down", "proxied", "--domain", name)...)
		if code == 0 || !strings.Contains(errOut, "down for maintenance") {
			t.Errorf("exit %d, want the CA's problem:\n%s", code, errOut)
		}
		if n := ca.NewOrders() - first; n < 2 || n > 7 {
			t.Errorf("the CA saw %d new orders, want a few bounded retries", n)
		}
		assertNoSolverObjects(t, ns)
		assertNoLease(t, ns, "down")
	})
}

// TestBadNonceStorm runs a second environment whose Pebble rejects half
// of all nonces: registering, issuing and renewing (with ARI's replaces)
// must still succeed, every badNonce answered with a fresh nonce.
func TestBadNonceStorm(t *testing.T) {
	t.Parallel()
	e, _ := startOwnEnv(t, testenv.Options{ExtraPebbleEnv: map[string]string{"PEBBLE_WFE_NONCEREJECT": "50"}})
	logged, err := os.ReadFile(e.LogFile("pebble"))
	if err != nil || !strings.Contains(string(logged), "Configured to reject 50% of good nonces") {
		t.Fatalf("Pebble does not reject nonces (%v):\n%s", err, logged)
	}
	// The proxy counts Pebble's badNonce answers.
	ca := startCAProxyFor(t, e)
	ns := "default"
	mustACME(t, e.Kubeconfig, "create", "issuer", "pebble", "-n", ns, "--server", ca.Directory, "--ca-bundle", ca.CABundle,
		"--email", "nonce@example.com", "--ingress-class", e.IngressClass, "--agree-tos")
	names := []string{"a.nonce.example.test", "b.nonce.example.test"}
	for i := range 3 {
		cert := fmt.Sprintf("web%d", i)
		mustACME(t, e.Kubeconfig, "issue", cert, "-n", ns, "--issuer", "pebble", "-d", names[0], "-d", names[1], "--connect-to", e.IngressHTTP, "-q")
	}
	// Renewal orders with ARI's replaces, through kubectl-acme's own POST.
	_, errOut, code := acmeCmd(t, e.Kubeconfig, "renew", "web0", "-n", ns, "--force", "--connect-to", e.IngressHTTP, "-q")
	if code != 10 {
		t.Errorf("renew: exit %d, want 10 (renewed):\n%s", code, errOut)
	}
	bad := ca.BadRequests()
	t.Logf("Pebble answered badNonce %d times", bad)
	if bad < 5 {
		t.Errorf("only %d badNonce answers: the storm did not happen", bad)
	}
}

// TestAPIServerOutage cuts the plugin off from the API server for a few
// seconds, as a restart does, at several phases of an issue: the issue
// rides it out, and nothing is left behind.
func TestAPIServerOutage(t *testing.T) {
	t.Parallel()
	api := startAPIProxy(t)
	ns := newNamespace(t)
	createIssuer(t, env.Kubeconfig, ns, "pebble", env.IngressClass)
	phases := []struct {
		name    string
		reached func(r *runningACME) bool
	}{
		{"lease taken", func(*runningACME) bool {
			_, err := kube.CoordinationV1().Leases(ns).Get(t.Context(), "acme-certificate-lease", metav1.GetOptions{})
			return err == nil
		}},
		{"solver pod watched", func(*runningACME) bool {
			pods, err := kube.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "acme.kubectl.io/certificate=pod"})
			return err == nil && len(pods.Items) > 0
		}},
		{"finalizing", func(r *runningACME) bool {
			return strings.Contains(r.errOut.String(), "order                    finalizing")
		}},
	}
	for _, ph := range phases {
		t.Run(ph.name, func(t *testing.T) {
			cert := strings.Fields(ph.name)[0]
			if cert == "solver" {
				cert = "pod"
			}
			name := cert + "." + ns + ".example.test"
			run := startACME(t, api.Kubeconfig, issueArgs(ns, cert, "pebble", "--domain", name)...)
			waitFor(t, time.Minute, ph.name, func() bool { return ph.reached(run) })
			api.Outage(3 * time.Second)
			out, errOut, code := run.wait()
			if code != 0 {
				t.Errorf("issue did not ride out the outage: exit %d\n%s%s", code, out, errOut)
			} else {
				verifySecret(t, ns, cert, []string{name})
			}
			assertNoSolverObjects(t, ns)
			assertNoLease(t, ns, cert)
		})
	}
}

// TestIssuedCertificateIsNeverLost: the CA issues, then the Secret cannot
// be written (an admission policy refuses TLS Secrets in the namespace).
// The certificate and its key are saved to a file only the user can read,
// the message says where, and neither appears in the output.
func TestIssuedCertificateIsNeverLost(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createIssuer(t, env.Kubeconfig, ns, "pebble", env.IngressClass)
	ctx := t.Context()
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-no-tls-" + ns},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionregistrationv1.Fail),
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"secrets"}},
				},
			}}},
			Validations: []admissionregistrationv1.Validation{{
				Expression: "!has(object.type) || object.type != 'kubernetes.io/tls'",
				Message:    "e2e: TLS secrets are refused in this namespace",
			}},
		},
	}
	if _, err := kube.AdmissionregistrationV1().ValidatingAdmissionPolicies().Create(ctx, policy, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: policy.Name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        policy.Name,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
			MatchResources: &admissionregistrationv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns},
			}},
		},
	}
	if _, err := kube.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		_ = kube.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Delete(ctx, binding.Name, metav1.DeleteOptions{})
		_ = kube.AdmissionregistrationV1().ValidatingAdmissionPolicies().Delete(ctx, policy.Name, metav1.DeleteOptions{})
	})
	probe := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "probe"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: nil, corev1.TLSPrivateKeyKey: nil}}
	waitFor(t, 30*time.Second, "the admission policy to take effect", func() bool {
		_, err := kube.CoreV1().Secrets(ns).Create(ctx, probe, metav1.CreateOptions{})
		if err == nil {
			_ = kube.CoreV1().Secrets(ns).Delete(ctx, probe.Name, metav1.DeleteOptions{})
			return false
		}
		return strings.Contains(err.Error(), "TLS secrets are refused")
	})

	name := "kept." + ns + ".example.test"
	out, errOut, code := acmeCmd(t, env.Kubeconfig, issueArgs(ns, "web", "pebble", "--domain", name)...)
	if code == 0 {
		t.Fatalf("issue succeeded although the Secret cannot be written:\n%s", out)
	}
	m := regexp.MustCompile(`saved to (\S+) \(mode 0600\)`).FindStringSubmatch(errOut)
	if m == nil || !strings.Contains(errOut, "TLS secrets are refused") {
		t.Fatalf("the message does not say why the write failed and where the certificate went:\n%s", errOut)
	}
	path := m[1]
	t.Cleanup(func() { os.Remove(path) })
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(data, data)
	if err != nil {
		t.Fatalf("the saved file is not a certificate with its key: %v", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil || !slices.Equal(leaf.DNSNames, []string{name}) {
		t.Errorf("saved certificate for %v (%v), want %s", leaf.DNSNames, err, name)
	}
	// The key is in the file, never in the output.
	sensitive("the key saved to "+path, secretParts(data)...)
	if _, err := kube.CoreV1().Secrets(ns).Get(ctx, "web", metav1.GetOptions{}); err == nil {
		t.Error("a Secret was written")
	}
	if st := mustACME(t, env.Kubeconfig, "status", "web", "-n", ns); !strings.Contains(st, path) {
		t.Errorf("status does not say where the certificate was saved:\n%s", st)
	}
	assertNoSolverObjects(t, ns)
	assertNoLease(t, ns, "web")
}
