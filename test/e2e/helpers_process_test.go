package e2e

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kubectl-acme/kubectl-acme/test/internal/suite"
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

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	suite.WaitFor(t, timeout, what, cond)
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

func certPool(t *testing.T, file string) *x509.CertPool {
	t.Helper()
	return suite.CertPool(t, file)
}
