package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	testenv "github.com/kubectl-acme/kubectl-acme/test/env"
)

// lockedBuffer is a bytes.Buffer a running command writes while the test
// reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// runningACME is `kubectl acme ARGS` running in the background. kubectl
// execs the plugin, so the process is kubectl-acme itself and its pid is
// the one the plugin puts in its lease.
type runningACME struct {
	t           *testing.T
	args        []string
	cmd         *exec.Cmd
	out, errOut lockedBuffer
	done        chan struct{}
	code        int
}

func startACME(t *testing.T, kubeconfig string, args ...string) *runningACME {
	t.Helper()
	r := &runningACME{t: t, args: args, done: make(chan struct{})}
	r.cmd = exec.Command("kubectl", append([]string{"acme"}, args...)...)
	r.cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.errOut
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(r.done)
		err := r.cmd.Wait()
		if ee, ok := err.(*exec.ExitError); ok {
			r.code = ee.ExitCode() // -1 when killed by a signal
		} else if err != nil {
			r.code = -2
		}
	}()
	// Never leave a plugin running after the test.
	t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			_ = r.cmd.Process.Kill()
			<-r.done
		}
	})
	return r
}

func (r *runningACME) pid() int { return r.cmd.Process.Pid }

// wait waits for the command to end, at most two minutes.
func (r *runningACME) wait() (stdout, stderr string, code int) {
	r.t.Helper()
	select {
	case <-r.done:
	case <-time.After(2 * time.Minute):
		_ = r.cmd.Process.Kill()
		<-r.done
		r.t.Errorf("kubectl acme %s did not end within 2m", strings.Join(r.args, " "))
	}
	stdout, stderr = r.out.String(), r.errOut.String()
	recordOutput(stdout, stderr)
	r.t.Logf("$ kubectl acme %s  # pid %d, exit %d\n%s%s", strings.Join(r.args, " "), r.pid(), r.code, stdout, stderr)
	return stdout, stderr, r.code
}

// waitFor polls cond every 50ms until it holds, failing the test after
// timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// solverObjects lists the solver objects of certificate cert in ns.
func solverObjects(t *testing.T, ns, cert string) []string {
	t.Helper()
	ctx := t.Context()
	sel := metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=http01-solver,acme.kubectl.io/certificate=" + cert}
	var out []string
	cms, err := kube.CoreV1().ConfigMaps(ns).List(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range cms.Items {
		out = append(out, "configmap/"+o.Name)
	}
	pods, err := kube.CoreV1().Pods(ns).List(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range pods.Items {
		out = append(out, "pod/"+o.Name)
	}
	svcs, err := kube.CoreV1().Services(ns).List(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range svcs.Items {
		out = append(out, "service/"+o.Name)
	}
	ings, err := kube.NetworkingV1().Ingresses(ns).List(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range ings.Items {
		out = append(out, "ingress/"+o.Name)
	}
	return append(out, solverHTTPRoutes(t, ns, sel.LabelSelector)...)
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// leaseGone waits until the certificate's Lease is deleted or expired.
func waitLeaseFree(t *testing.T, ns, cert string) {
	t.Helper()
	waitFor(t, 45*time.Second, "the lease of certificate "+cert+" to expire", func() bool {
		l, err := kube.CoordinationV1().Leases(ns).Get(t.Context(), "acme-certificate-"+cert, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true
		}
		if err != nil || l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
			return false
		}
		// A second of margin for the clock of the comparison.
		return time.Now().After(l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds)*time.Second + time.Second))
	})
}

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

func mustCleanupVia(t *testing.T, kubeconfig, ns string, args ...string) (stdout, stderr string) {
	t.Helper()
	out, errOut, code := acmeCmd(t, kubeconfig, append([]string{"cleanup", "-n", ns}, args...)...)
	if code != 0 {
		t.Fatalf("cleanup %v: exit %d: %s", args, code, errOut)
	}
	return out, errOut
}

func assertNoLease(t *testing.T, ns, cert string) {
	t.Helper()
	if _, err := kube.CoordinationV1().Leases(ns).Get(t.Context(), "acme-certificate-"+cert, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("lease of certificate %s not released (err %v)", cert, err)
	}
}

// problem answers like an ACME CA with a problem document.
func problem(w http.ResponseWriter, status int, typ, detail string, header ...string) {
	for i := 0; i+1 < len(header); i += 2 {
		w.Header().Set(header[i], header[i+1])
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"type":"urn:ietf:params:acme:error:%s","detail":%q,"status":%d}`, typ, detail, status)
}

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

// ingressSpec is the JSON of an Ingress's spec.
func ingressSpec(t *testing.T, ns, name string) string {
	t.Helper()
	ing, err := kube.NetworkingV1().Ingresses(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		return ""
	}
	b, _ := json.Marshal(ing.Spec)
	return string(b)
}

// createUserIngress creates the user's Ingress "web" for host, with a class
// nobody serves, and the Issuer "by-name" whose solver adds its challenge
// paths to it (http01.ingress.name); it returns the Ingress's spec.
func createUserIngress(t *testing.T, ns, host string) string {
	t.Helper()
	prefix := networkingv1.PathTypePrefix
	ing := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: networkingv1.IngressSpec{
			IngressClassName: ptr.To("no-such-class"),
			Rules: []networkingv1.IngressRule{{
				Host: host,
				IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
					Path: "/", PathType: &prefix,
					Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "app", Port: networkingv1.ServiceBackendPort{Number: 80}}},
				}}}},
			}},
		},
	}
	if _, err := kube.NetworkingV1().Ingresses(ns).Create(t.Context(), ing, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(env.ACMECABundle)
	if err != nil {
		t.Fatal(err)
	}
	manifest := fmt.Sprintf(`apiVersion: cert-manager.io/v1
kind: Issuer
metadata:
  name: by-name
spec:
  acme:
    server: %s
    caBundle: %s
    privateKeySecretRef:
      name: by-name
    solvers:
    - http01:
        ingress:
          name: web
`, env.ACMEServer, base64.StdEncoding.EncodeToString(ca))
	path := filepath.Join(t.TempDir(), "issuer.yaml")
	if err := os.WriteFile(path, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	mustACME(t, env.Kubeconfig, "apply", "-n", ns, "-f", path, "--agree-tos")
	return ingressSpec(t, ns, "web")
}
