package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// One solver workload per run: `apply -f` of many certificates in one
// namespace creates one Pod and one Service, and one Ingress (or the
// fewest HTTPRoutes), carrying every order's token; every certificate is
// issued, an order the CA refuses fails alone, Ctrl-C leaves nothing.

// createdObjects counts, by a watch started before the run, the solver
// objects created in a namespace: kind -> names.
type createdObjects struct {
	mu    sync.Mutex
	names map[string]map[string]bool
	pods  []*corev1.Pod
}

func watchCreates(t *testing.T, ns string) *createdObjects {
	t.Helper()
	c := &createdObjects{names: map[string]map[string]bool{}}
	ctx := t.Context()
	opts := metav1.ListOptions{}
	watches := map[string]func() (watch.Interface, error){
		"pod":     func() (watch.Interface, error) { return kube.CoreV1().Pods(ns).Watch(ctx, opts) },
		"service": func() (watch.Interface, error) { return kube.CoreV1().Services(ns).Watch(ctx, opts) },
		"ingress": func() (watch.Interface, error) { return kube.NetworkingV1().Ingresses(ns).Watch(ctx, opts) },
		"httproute": func() (watch.Interface, error) {
			return dynamicClient(t).Resource(httpRoutesGVR).Namespace(ns).Watch(ctx, opts)
		},
	}
	var ready sync.WaitGroup
	for kind, start := range watches {
		w, err := start()
		if err != nil {
			if kind == "httproute" {
				continue // no Gateway API in this cluster
			}
			t.Fatal(err)
		}
		t.Cleanup(w.Stop)
		ready.Add(1)
		go func() {
			ready.Done()
			for ev := range w.ResultChan() {
				if ev.Type != watch.Added {
					continue
				}
				m, err := metaOf(ev.Object)
				if err != nil {
					continue
				}
				c.mu.Lock()
				if c.names[kind] == nil {
					c.names[kind] = map[string]bool{}
				}
				c.names[kind][m.GetName()] = true
				if p, ok := ev.Object.(*corev1.Pod); ok {
					c.pods = append(c.pods, p)
				}
				c.mu.Unlock()
			}
		}()
	}
	ready.Wait()
	return c
}

func metaOf(o any) (metav1.Object, error) {
	if m, ok := o.(metav1.Object); ok {
		return m, nil
	}
	return nil, fmt.Errorf("%T has no metadata", o)
}

func (c *createdObjects) count(kind string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.names[kind])
}

// firstPodCPU waits for the watch to see a pod and returns the CPU limit
// of its container.
func (c *createdObjects) firstPodCPU(t *testing.T) *resource.Quantity {
	t.Helper()
	waitFor(t, 10*time.Second, "the watch to see the pod", func() bool { return c.count("pod") >= 1 })
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pods[0].Spec.Containers[0].Resources.Limits.Cpu()
}

func (c *createdObjects) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var parts []string
	for _, k := range []string{"pod", "service", "ingress", "httproute"} {
		parts = append(parts, fmt.Sprintf("%d %s", len(c.names[k]), k))
	}
	return strings.Join(parts, ", ")
}

// certificatesManifest is n Certificates of issuer, one name each, in a
// file of its own.
func certificatesManifest(t *testing.T, ns, issuer, prefix string, n int, extra ...string) (string, []string) {
	t.Helper()
	var b strings.Builder
	var names []string
	for i := range n {
		name := fmt.Sprintf("%s-%d", prefix, i)
		names = append(names, name)
		fmt.Fprintf(&b, "---\napiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata:\n  name: %s\nspec:\n  secretName: %s\n  dnsNames: [%s.%s.example.test]\n  issuerRef:\n    name: %s\n    kind: Issuer\n", name, name, name, ns, issuer)
	}
	for _, e := range extra {
		b.WriteString(e)
	}
	path := filepath.Join(t.TempDir(), "certificates.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, names
}

// refuseName makes the proxied CA refuse new orders for name, as a CA
// refuses a name its policy forbids (RFC 8555 rejectedIdentifier).
func refuseName(p *caProxy, name string) {
	p.answerNewOrder(func(w http.ResponseWriter, r *http.Request, _ int) bool {
		if !strings.Contains(string(jwsPayload(r)), `"`+name+`"`) {
			return false
		}
		problem(w, http.StatusBadRequest, "rejectedIdentifier", "policy forbids issuing for "+name)
		return true
	})
}

// TestApplySharedWorkload: 21 certificates in one namespace through
// `apply -f` make one solver pod, one Service and one Ingress, labelled
// with the run and listing the certificates; all 21 are issued while a
// 22nd, whose name the CA refuses, fails alone; nothing is left.
func TestApplySharedWorkload(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	p := startCAProxy(t)
	createIssuerVia(t, p, ns, "pebble")
	refused := "refused." + ns + ".example.test"
	refuseName(p, refused)
	const n = 21
	path, names := certificatesManifest(t, ns, "pebble", "c", n,
		fmt.Sprintf("---\napiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata:\n  name: refused\nspec:\n  secretName: refused\n  dnsNames: [%s]\n  issuerRef:\n    name: pebble\n    kind: Issuer\n", refused))
	created := watchCreates(t, ns)
	start := time.Now()
	out, errOut, code := applyCmd(t, "", nil, "-n", ns, "-f", path, "--concurrency", "20", "--connect-to", env.IngressHTTP)
	t.Logf("apply of %d certificates took %s; created %s", n+1, time.Since(start), created)
	if code == 0 {
		t.Fatalf("apply exited 0 with an order the CA refuses:\n%s", errOut)
	}
	wantAll(t, "apply's errors", errOut, `certificate "refused"`, "rejectedIdentifier")
	if got := strings.Count(out, " issued: secret/"); got != n {
		t.Errorf("%d certificates issued, want %d:\n%s", got, n, out)
	}
	for _, name := range names {
		verifySecret(t, ns, name, []string{name + "." + ns + ".example.test"})
	}
	waitFor(t, 10*time.Second, "the watch to see every create", func() bool { return created.count("ingress") >= 1 })
	if created.count("pod") != 1 || created.count("service") != 1 || created.count("ingress") != 1 {
		t.Errorf("created %s, want 1 pod, 1 service, 1 ingress", created)
	}
	created.mu.Lock()
	if len(created.pods) > 0 {
		pod := created.pods[0]
		if pod.Labels["acme.kubectl.io/run"] == "" || pod.Labels["acme.kubectl.io/certificate"] != "" {
			t.Errorf("shared pod labels %v: want a run label and no single certificate", pod.Labels)
		}
		if certs := strings.Split(pod.Annotations["acme.kubectl.io/certificates"], ","); len(certs) != n {
			t.Errorf("shared pod lists %d certificates, want %d: %v", len(certs), n, certs)
		}
		if cpu := pod.Spec.Containers[0].Resources.Limits.Cpu(); cpu.MilliValue() != 1000 {
			t.Errorf("shared pod serving %d challenges has CPU limit %s, want 1", n+1, cpu)
		}
	}
	created.mu.Unlock()
	assertNoSolverObjects(t, ns)
}

// TestApplySharedPodUnderCPUQuota: a ResourceQuota on limits.cpu with no
// room for the solver pod's CPU limit (one CPU) but room for
// cert-manager's 100m gets the pod at 100m: every certificate is
// issued and nothing is left.
func TestApplySharedPodUnderCPUQuota(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createQuota(t, ns, "cpu", corev1.ResourceList{
		corev1.ResourceLimitsCPU: resource.MustParse("300m"), corev1.ResourceLimitsMemory: resource.MustParse("1Gi"),
	})
	createIssuer(t, env.Kubeconfig, ns, "pebble", env.IngressClass)
	const n = 5
	path, names := certificatesManifest(t, ns, "pebble", "q", n)
	created := watchCreates(t, ns)
	out, errOut, code := applyCmd(t, "", nil, "-n", ns, "-f", path, "--connect-to", env.IngressHTTP)
	if code != 0 {
		t.Fatalf("apply under a limits.cpu quota exited %d:\n%s\n%s", code, out, errOut)
	}
	for _, name := range names {
		verifySecret(t, ns, name, []string{name + "." + ns + ".example.test"})
	}
	if cpu := created.firstPodCPU(t); cpu.MilliValue() != 100 {
		t.Errorf("shared pod under the quota has CPU limit %s, want 100m", cpu)
	}
	assertNoSolverObjects(t, ns)
}

// TestApplySharedWorkloadHTTPRoutes: 20 certificates through the Gateway
// API solver get one pod, one Service and the fewest HTTPRoutes the
// CRD's limit of 16 hostnames per route allows: two.
func TestApplySharedWorkloadHTTPRoutes(t *testing.T) {
	requireGateway(t)
	t.Parallel()
	ns := newNamespace(t)
	v := varsFor(t, ns)
	issuer := fmt.Sprintf(`apiVersion: cert-manager.io/v1
kind: Issuer
metadata:
  name: gateway
spec:
  acme:
    server: %s
    caBundle: %s
    email: user@example.com
    privateKeySecretRef:
      name: gateway-account
    solvers:
    - http01:
        gatewayHTTPRoute:
          parentRefs:
          - name: %s
            namespace: %s
            kind: Gateway
            sectionName: http
`, v.Server, v.CABundle, v.GatewayName, v.GatewayNamespace)
	const n = 20
	path, names := certificatesManifest(t, ns, "gateway", "g", n, "---\n"+issuer)
	created := watchCreates(t, ns)
	mustApply(t, nil, "-n", ns, "-f", path, "--agree-tos", "--concurrency", "20", "--connect-to", env.IngressHTTP, "-q")
	for _, name := range names {
		verifySecret(t, ns, name, []string{name + "." + ns + ".example.test"})
	}
	waitFor(t, 10*time.Second, "the watch to see every create", func() bool { return created.count("httproute") >= 2 })
	if created.count("pod") != 1 || created.count("service") != 1 || created.count("httproute") != 2 || created.count("ingress") != 0 {
		t.Errorf("created %s, want 1 pod, 1 service, 2 httproutes", created)
	}
	assertNoSolverObjects(t, ns)
}

// TestApplySharedWorkloadInterrupt: Ctrl-C once the shared solver pod
// exists ends the run non-zero with nothing left: no solver object and no
// Lease of any of its certificates.
func TestApplySharedWorkloadInterrupt(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	// Routes of this class are never served: the run stays in the
	// self-check until it is interrupted.
	createIssuer(t, env.Kubeconfig, ns, "stuck", "no-such-class")
	path, _ := certificatesManifest(t, ns, "stuck", "i", 8)
	run := startACME(t, env.Kubeconfig, "apply", "-n", ns, "-f", path, "--concurrency", "4", "--self-check-timeout", "5m", "--connect-to", env.IngressHTTP)
	waitFor(t, time.Minute, "the shared solver pod", func() bool {
		pods, err := kube.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "acme.kubectl.io/run"})
		return err == nil && len(pods.Items) == 1 && podReady(&pods.Items[0])
	})
	if err := run.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := run.wait()
	if code == 0 {
		t.Fatal("the interrupted apply exited 0")
	}
	if !strings.Contains(errOut, "interrupted") {
		t.Errorf("no word of the interruption:\n%s", errOut)
	}
	assertNoSolverObjects(t, ns)
	leases, err := kube.CoordinationV1().Leases(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(leases.Items) > 0 {
		t.Errorf("%d leases outlived the interrupted run", len(leases.Items))
	}
}

// TestApplySharedWorkloadKilled: after SIGKILL, `cleanup` finds the shared
// objects by their labels, leaves them while any of the run's
// certificates' Leases is held, and deletes them, the Leases included,
// once those expired.
func TestApplySharedWorkloadKilled(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createIssuer(t, env.Kubeconfig, ns, "stuck", "no-such-class")
	path, names := certificatesManifest(t, ns, "stuck", "k", 4)
	run := startACME(t, env.Kubeconfig, "apply", "-n", ns, "-f", path, "--self-check-timeout", "5m", "--connect-to", env.IngressHTTP)
	waitFor(t, time.Minute, "the shared solver pod", func() bool {
		pods, err := kube.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "acme.kubectl.io/run"})
		return err == nil && len(pods.Items) == 1 && podReady(&pods.Items[0])
	})
	if err := run.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if _, _, code := run.wait(); code == 0 {
		t.Fatal("the killed apply exited 0")
	}
	_, errOut := mustACMEErr(t, env.Kubeconfig, "cleanup", "-n", ns, "--older-than", "0s")
	if !strings.Contains(errOut, "skipped pod/acme-solver-run-") || !strings.Contains(errOut, "is being issued by") {
		t.Errorf("cleanup while the dead run's leases are held does not skip its shared pod:\n%s", errOut)
	}
	for _, n := range names {
		waitLeaseFree(t, ns, n)
	}
	out := mustACME(t, env.Kubeconfig, "cleanup", "-n", ns, "--older-than", "0s")
	wantAll(t, "cleanup", out, "deleted", "k-0,k-1,k-2,k-3", "lease/acme-certificate-k-0 deleted")
	assertNoSolverObjects(t, ns)
}

// TestApplySharedWorkloadAllowSolverTraffic: in a namespace whose
// default-deny policy drops the solver's traffic, `apply
// --allow-solver-traffic` of several certificates adds one temporary
// NetworkPolicy for the shared pod, removed with it.
func TestApplySharedWorkloadAllowSolverTraffic(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createNetworkPolicy(t, ns, "default-deny", defaultDeny)
	createIssuer(t, env.Kubeconfig, ns, "pebble", env.IngressClass)
	path, names := certificatesManifest(t, ns, "pebble", "np", 3)
	created := watchCreates(t, ns)
	w, err := kube.NetworkingV1().NetworkPolicies(ns).Watch(t.Context(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=http01-solver"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	policies := map[string]bool{}
	var mu sync.Mutex
	go func() {
		for ev := range w.ResultChan() {
			if m, err := metaOf(ev.Object); err == nil && ev.Type == watch.Added {
				mu.Lock()
				policies[m.GetName()] = true
				mu.Unlock()
			}
		}
	}()
	mustApply(t, nil, "-n", ns, "-f", path, "--allow-solver-traffic", "--connect-to", env.IngressHTTP, "-q")
	for _, n := range names {
		verifySecret(t, ns, n, []string{n + "." + ns + ".example.test"})
	}
	waitFor(t, 10*time.Second, "the watch to see the pod", func() bool { return created.count("pod") >= 1 })
	mu.Lock()
	if created.count("pod") != 1 || len(policies) != 1 {
		t.Errorf("created %s and %d solver NetworkPolicies, want 1 pod and 1 policy", created, len(policies))
	}
	mu.Unlock()
	assertNoSolverObjects(t, ns)
	nps, err := kube.NetworkingV1().NetworkPolicies(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(nps.Items) != 1 {
		t.Errorf("%d NetworkPolicies after the run, want only default-deny", len(nps.Items))
	}
}
