package e2e

import (
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubectl-acme/kubectl-acme/acme"
)

// imageRepo is the registry name the test imports the image under and
// gives schedule --image, pinned by the digest make image printed.
const imageRepo = "registry.e2e.test/kubectl-acme"

// TestScheduledRenewalOnTheNode is issue 13's acceptance, against the real
// kube-controller-manager (CronJob and Job controllers) and the real node
// (kubelet, containerd, runc; TESTENV_NODE=real):
//
//   - the image make image builds is imported into the node's containerd
//     under imageRepo@DIGEST, and schedule pins exactly that; the
//     namespace enforces Pod Security restricted;
//   - a Job made from the CronJob (kubectl create job --from, as an
//     operator would) runs renew in a pod on the node, reaching the API
//     server through the kubernetes Service with its projected token (the
//     env's pod proxy stands in for kube-proxy, test/cni proxy.go) and
//     the CA at the URL its Issuer records; the CA asked for an early
//     renewal through ARI, so the run renews the shortlived certificate:
//     a new serial in the same Secret, the order names the certificate it
//     replaces, no solver object is left, the Job completes and status
//     shows the run;
//   - least privilege: the ServiceAccount can do nothing outside its
//     namespace that the namespace's default ServiceAccount cannot; for
//     each rule of the Role, the Role without it makes a run fail naming
//     the rule's verbs and resource. Those runs are the built binary run
//     on the host with a kubeconfig holding the ServiceAccount's token
//     (kubectl create token) and the CronJob's own arguments, one per
//     rule in well under a second; a Job pod per rule would cost some
//     8 s each. The unmodified Role is the one the pod runs with;
//   - the CA down (its address refuses connections), the Job fails with
//     exit code 1, an Event names the CA's address, status shows the
//     failed run and the failing renewal; the CA back, the next run
//     renews;
//   - unschedule leaves the namespace as it was before schedule, object
//     by object (the certificate's Secret and ConfigMap hold the renewed
//     certificate: those two changed, by the runs).
//
// The CA is Pebble behind the caProxy, reached through caFront, a relay
// on a fixed loopback port the test closes and opens again: to the client
// exactly what a stopped and restarted CA is (connection refused at the
// directory's address), without stopping the Pebble the parallel tests
// use.
func TestScheduledRenewalOnTheNode(t *testing.T) {
	if !env.RealNode {
		t.Skip("the CronJob's pod runs the kubectl-acme image: needs the real node (TESTENV_NODE=real)")
	}
	t.Parallel()
	ctx := t.Context()
	begin := time.Now()
	step := func(what string) { t.Logf("[%5.1fs] %s", time.Since(begin).Seconds(), what) }

	// The image, as make image builds it, into the node's containerd.
	dir := t.TempDir()
	printed := buildImage(t, dir, "--ref", imageRepo+":e2e")
	_, digest, ok := strings.Cut(printed, "@")
	if !ok {
		t.Fatalf("hack/image.sh printed %q", printed)
	}
	image := imageRepo + "@" + digest
	if err := env.ImportImage(ctx, filepath.Join(dir, "kubectl-acme-oci.tar"), imageRepo); err != nil {
		t.Fatal(err)
	}
	step("image built and imported: " + image)

	// The CA: Pebble behind the proxy, which reads each newOrder's
	// replaces, behind the front the test can take down.
	p := startCAProxy(t)
	var mu sync.Mutex
	var replaces []string
	p.answerNewOrder(func(w http.ResponseWriter, r *http.Request, n int) bool {
		var order struct{ Replaces string }
		if json.Unmarshal(jwsPayload(r), &order) == nil {
			mu.Lock()
			replaces = append(replaces, order.Replaces)
			mu.Unlock()
		}
		return false
	})
	lastReplaces := func() string {
		mu.Lock()
		defer mu.Unlock()
		if len(replaces) == 0 {
			return ""
		}
		return replaces[len(replaces)-1]
	}
	front := startCAFront(t, p.srv.Listener.Addr().String())
	if err := env.PublishToPods(front.addr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.UnpublishFromPods(front.addr) })

	ns := newNamespace(t)
	kubectl(t, "label", "ns", ns, "pod-security.kubernetes.io/enforce=restricted", "pod-security.kubernetes.io/warn=restricted")
	// The issuer skips the self-check: the run's pod cannot reach its own
	// public URL here (no cluster DNS; as behind NAT without hairpinning),
	// while the CA validates through the ingress as always.
	caBundle, err := os.ReadFile(p.CABundle)
	if err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(t.TempDir(), "issuer.yaml")
	host := "web." + ns + ".example.test"
	if err := os.WriteFile(manifest, []byte(`apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {name: pebble}
spec:
  acme:
    server: https://`+front.addr+`/dir
    caBundle: `+base64.StdEncoding.EncodeToString(caBundle)+`
    email: e2e@example.com
    profile: shortlived
    privateKeySecretRef: {name: pebble}
    solvers:
    - http01: {ingress: {ingressClassName: `+env.IngressClass+`}}
      waitInsteadOfSelfCheck: 0s
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: web}
spec:
  secretName: web
  dnsNames: [`+host+`]
  issuerRef: {name: pebble}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	mustApply(t, nil, "-n", ns, "-f", manifest, "--agree-tos")
	first := leafOf(t, secretCert(t, ns, "web"))
	if life := first.NotAfter.Sub(first.NotBefore); life > 7*24*time.Hour {
		t.Fatalf("lifetime %s: not the shortlived profile", life)
	}
	secretUID := secretOf(t, ns, "web").UID
	step("issued " + first.SerialNumber.Text(16))
	before := nsObjects(t, ns)

	out, errOut, code := acmeCmd(t, env.Kubeconfig, "schedule", "-n", ns, "--image", image)
	if code != 0 || strings.Contains(errOut, "PodSecurity") || strings.Contains(errOut, "Warning") {
		t.Fatalf("schedule: exit %d\n%s\n%s", code, out, errOut)
	}
	cj, err := kube.BatchV1().CronJobs(ns).Get(ctx, "kubectl-acme-renew", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0].Image; got != image {
		t.Fatalf("the CronJob runs %s, want %s", got, image)
	}

	// The CA asks for the certificate's renewal now (ARI), and the
	// window stored at issuance is past its Retry-After.
	makeDue := func(leafPEM []byte) {
		t.Helper()
		now := time.Now()
		setRenewalInfo(t, leafPEM, now.Add(-2*time.Hour), now.Add(-time.Hour))
		expireRenewalInfo(t, ns, "web")
	}
	makeDue(secretCert(t, ns, "web"))

	// Least privilege, outside the namespace: what the ServiceAccount may
	// do in another namespace and cluster-wide is what any ServiceAccount
	// may (system:basic-user and the like), nothing more.
	sa := "system:serviceaccount:" + ns + ":kubectl-acme-renew"
	for _, other := range []string{"default", "kube-system"} {
		got, _, _ := kubectl(t, "auth", "can-i", "--list", "-n", other, "--as", sa)
		base, _, _ := kubectl(t, "auth", "can-i", "--list", "-n", other, "--as", "system:serviceaccount:"+ns+":default")
		if got != base {
			t.Errorf("in namespace %s the schedule's ServiceAccount may do more than the default one:\n%s\nbaseline:\n%s", other, got, base)
		}
	}
	// And inside it, rule by rule: without any one rule the run fails,
	// before ordering, naming what the rule granted.
	args := cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0].Args
	saConfig := tokenKubeconfig(t, ns, "kubectl-acme-renew")
	role, err := kube.RbacV1().Roles(ns).Get(ctx, "kubectl-acme-renew", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	full := role.DeepCopy()
	orders := p.NewOrders()
	for i, rule := range full.Rules {
		rules := append(full.DeepCopy().Rules[:i:i], full.Rules[i+1:]...)
		if _, err := kube.RbacV1().Roles(ns).Update(ctx, roleWithRules(t, ns, rules), metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		// RBAC authorizes from an informer: wait until the rule is gone.
		waitFor(t, 10*time.Second, "the rule's removal to take effect", func() bool {
			o, _, _ := kubectl(t, "auth", "can-i", rule.Verbs[0], rule.Resources[0]+groupSuffix(rule), "-n", ns, "--as", sa)
			return strings.TrimSpace(o) == "no"
		})
		_, errOut, code := acmeCmd(t, saConfig, args...)
		for _, v := range rule.Verbs {
			want := fmt.Sprintf("%s %s", v, rule.Resources[0]+groupSuffix(rule))
			if code != 1 || !strings.Contains(errOut, want) {
				t.Errorf("without rule %s %v: exit %d, want 1 and the error naming %q\n%s", rule.Resources[0], rule.Verbs, code, want, errOut)
			}
		}
	}
	if _, err := kube.RbacV1().Roles(ns).Update(ctx, roleWithRules(t, ns, full.Rules), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := p.NewOrders(); n != orders {
		t.Errorf("%d orders were made by runs that lacked a permission", n-orders)
	}
	assertNoLabeledSolverObjects(t, ns)
	step(fmt.Sprintf("least privilege: %d rules, each one missing fails the run", len(full.Rules)))

	// The unmodified Role: the Job's pod on the node renews.
	runJob(t, ns, "renew", batchv1.JobComplete)
	second := leafOf(t, secretCert(t, ns, "web"))
	if second.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatal("the run completed and the Secret holds the same certificate")
	}
	if uid := secretOf(t, ns, "web").UID; uid != secretUID {
		t.Errorf("the Secret was replaced (uid %s -> %s), not updated", secretUID, uid)
	}
	if id, _ := acme.CertID(first); lastReplaces() != id {
		t.Errorf("the renewal order's replaces is %q, want %q", lastReplaces(), id)
	}
	assertNoLabeledSolverObjects(t, ns)
	if out := mustACME(t, env.Kubeconfig, "status", "-n", ns); !strings.Contains(out, "job/renew") || !strings.Contains(out, "Complete") {
		t.Errorf("status does not show the run:\n%s", out)
	}
	step("renewed in the Job's pod: " + second.SerialNumber.Text(16))

	// The CA down: the run fails, and says so where alerting looks.
	front.stop()
	makeDue(secretCert(t, ns, "web"))
	pod := runJob(t, ns, "ca-down", batchv1.JobFailed)
	if st := pod.Status.ContainerStatuses; len(st) != 1 || st[0].State.Terminated == nil || st[0].State.Terminated.ExitCode != 1 {
		t.Errorf("the pod's container: %+v, want exit code 1", st)
	}
	evs, err := kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=acme-certificate-web,reason=RenewalFailed"})
	if err != nil {
		t.Fatal(err)
	}
	var caEvents []string
	for _, ev := range evs.Items {
		if ev.Source.Host == pod.Name { // the run's, not the least-privilege runs'
			caEvents = append(caEvents, ev.Message)
		}
	}
	if len(caEvents) != 1 || !strings.Contains(caEvents[0], "https://"+front.addr+"/dir") || !strings.Contains(caEvents[0], "connection refused") {
		t.Errorf("want one RenewalFailed Event of the run naming the CA at %s, unreachable: %q", front.addr, caEvents)
	}
	out = mustACME(t, env.Kubeconfig, "status", "-n", ns)
	if !strings.Contains(out, "job/ca-down") || !strings.Contains(out, "Failed") || !strings.Contains(out, "renewal failing") {
		t.Errorf("status does not show the failing renewal:\n%s", out)
	}
	step("CA down: the Job failed")

	// The CA back: the next run renews.
	front.start(t)
	runJob(t, ns, "ca-back", batchv1.JobComplete)
	third := leafOf(t, secretCert(t, ns, "web"))
	if third.SerialNumber.Cmp(second.SerialNumber) == 0 {
		t.Fatal("the run after the CA came back did not renew")
	}
	if id, _ := acme.CertID(second); lastReplaces() != id {
		t.Errorf("the renewal order's replaces is %q, want %q", lastReplaces(), id)
	}
	if out := mustACME(t, env.Kubeconfig, "status", "-n", ns); !strings.Contains(out, "job/ca-back") || strings.Contains(out, "renewal failing") {
		t.Errorf("status after the CA came back:\n%s", out)
	}
	assertNoLabeledSolverObjects(t, ns)
	step("CA back: renewed " + third.SerialNumber.Text(16))

	mustACME(t, env.Kubeconfig, "unschedule", "-n", ns)
	renewed := map[string]bool{"Secret " + ns + "/web": true, "ConfigMap " + ns + "/acme-certificate-web": true}
	var after []string
	waitFor(t, 60*time.Second, "the namespace as before schedule", func() bool {
		after = nsObjects(t, ns)
		return reflect.DeepEqual(withoutVersions(before, renewed), withoutVersions(after, renewed))
	})
	step("unscheduled")
}

// withoutVersions drops the resourceVersion of the objects in names from
// nsObjects' lines.
func withoutVersions(objs []string, names map[string]bool) []string {
	out := make([]string, len(objs))
	for i, o := range objs {
		id, _, _ := strings.Cut(o, "@")
		if names[id] {
			o = id
		}
		out[i] = o
	}
	return out
}

func groupSuffix(r rbacv1.PolicyRule) string {
	if len(r.APIGroups) == 0 || r.APIGroups[0] == "" {
		return ""
	}
	return "." + r.APIGroups[0]
}

func roleWithRules(t *testing.T, ns string, rules []rbacv1.PolicyRule) *rbacv1.Role {
	t.Helper()
	r, err := kube.RbacV1().Roles(ns).Get(t.Context(), "kubectl-acme-renew", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r.Rules = rules
	return r
}

func secretOf(t *testing.T, ns, name string) *corev1.Secret {
	t.Helper()
	s, err := kube.CoreV1().Secrets(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// secretCert is the leaf of the Secret's chain, as PEM.
func secretCert(t *testing.T, ns, name string) []byte {
	t.Helper()
	b, _ := pem.Decode(secretOf(t, ns, name).Data["tls.crt"])
	if b == nil {
		t.Fatalf("secret %s/%s holds no certificate", ns, name)
	}
	return pem.EncodeToMemory(b)
}

// runJob makes a Job from the schedule's CronJob, as an operator runs one
// now, waits for its condition want (Complete or Failed) and returns its
// pod, whose log it writes to the test's.
func runJob(t *testing.T, ns, name string, want batchv1.JobConditionType) *corev1.Pod {
	t.Helper()
	begin := time.Now()
	if _, stderr, code := kubectl(t, "create", "job", "-n", ns, "--from=cronjob/kubectl-acme-renew", name); code != 0 {
		t.Fatalf("create job: exit %d\n%s", code, stderr)
	}
	var job *batchv1.Job
	waitFor(t, 90*time.Second, "job "+name+" to end", func() bool {
		j, err := kube.BatchV1().Jobs(ns).Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			return false
		}
		for _, c := range j.Status.Conditions {
			if c.Status == corev1.ConditionTrue && (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) {
				job = j
				return true
			}
		}
		return false
	})
	pods, err := kube.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "job-name=" + name})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("job %s's pods: %v (%v)", name, pods, err)
	}
	pod := &pods.Items[0]
	if pod.Spec.NodeName != env.NodeName {
		t.Errorf("pod %s ran on %q, want the node %s", pod.Name, pod.Spec.NodeName, env.NodeName)
	}
	log, err := env.PodLog(ns, pod.Name, string(pod.UID), "renew")
	t.Logf("job %s ended in %.1fs; its pod's log:\n%s(%v)", name, time.Since(begin).Seconds(), log, err)
	var got batchv1.JobConditionType
	for _, c := range job.Status.Conditions {
		if c.Status == corev1.ConditionTrue && (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) {
			got = c.Type
		}
	}
	if got != want {
		t.Fatalf("job %s: %s, want %s", name, got, want)
	}
	return pod
}

// tokenKubeconfig writes a kubeconfig for the API server with a
// token of the ServiceAccount, as its pod would hold (kubectl create token).
func tokenKubeconfig(t *testing.T, ns, sa string) string {
	t.Helper()
	token, stderr, code := kubectl(t, "create", "token", "-n", ns, sa, "--duration", "10m")
	if code != 0 {
		t.Fatalf("create token: %s", stderr)
	}
	cfg, err := clientcmd.LoadFromFile(env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range cfg.AuthInfos {
		a.Token = strings.TrimSpace(token)
	}
	file := filepath.Join(t.TempDir(), "sa.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, file); err != nil {
		t.Fatal(err)
	}
	return file
}

// caFront is a CA's address that a test can take down and bring back: a
// TCP relay on a fixed loopback port to target. Down, the port refuses
// connections, as a stopped CA's does.
type caFront struct {
	addr, target string

	mu    sync.Mutex
	l     net.Listener
	conns map[net.Conn]bool
}

func startCAFront(t *testing.T, target string) *caFront {
	t.Helper()
	f := &caFront{addr: "127.0.0.1:0", target: target}
	f.start(t)
	f.addr = f.l.Addr().String()
	t.Cleanup(f.stop)
	return f
}

func (f *caFront) start(t *testing.T) {
	t.Helper()
	l, err := net.Listen("tcp", f.addr)
	if err != nil {
		t.Fatalf("CA front: %v", err)
	}
	f.mu.Lock()
	f.l, f.conns = l, map[net.Conn]bool{}
	f.mu.Unlock()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			if f.l != l {
				f.mu.Unlock()
				c.Close()
				return
			}
			f.conns[c] = true
			f.mu.Unlock()
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", f.target)
				if err != nil {
					return
				}
				defer up.Close()
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
				go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
				<-done
			}()
		}
	}()
}

// stop closes the listener and every connection through it.
func (f *caFront) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.l == nil {
		return
	}
	f.l.Close()
	f.l = nil
	for c := range f.conns {
		c.Close()
	}
	f.conns = nil
}

// TestScheduleClusterIssuerLeastPrivilege: for a certificate of a
// ClusterIssuer, the schedule's ServiceAccount may read that
// ClusterIssuer and its account key by name in the cluster resource
// namespace and nothing else there; without any one rule of either Role
// a run fails naming it; the Roles intact, the run goes through; and
// unschedule removes both Roles. The runs are the built binary on the
// host with the ServiceAccount's token and the CronJob's arguments, as in
// TestScheduledRenewalOnTheNode (whose pod runs the same arguments).
func TestScheduleClusterIssuerLeastPrivilege(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	ns, cns := newNamespace(t), newNamespace(t)
	crn := "--cluster-resource-namespace=" + cns
	mustACME(t, env.Kubeconfig, "create", "issuer", "shared", "--cluster", crn, "--server", env.ACMEServer, "--ca-bundle", env.ACMECABundle,
		"--email", "e2e@example.com", "--ingress-class", env.IngressClass, "--agree-tos")
	// A second ClusterIssuer, whose account key the schedule must not reach.
	mustACME(t, env.Kubeconfig, "create", "issuer", "other", "--cluster", crn, "--server", env.ACMEServer, "--ca-bundle", env.ACMECABundle,
		"--email", "e2e@example.com", "--ingress-class", env.IngressClass, "--agree-tos")
	mustACME(t, env.Kubeconfig, "issue", "web", "-n", ns, crn, "--issuer", "shared", "--cluster-issuer", "--domain", "web."+ns+".example.test",
		"--connect-to", env.IngressHTTP, "-q")
	before := append(nsObjects(t, ns), nsObjects(t, cns)...)
	mustACME(t, env.Kubeconfig, "schedule", "-n", ns, crn, "--image", fakeImage)
	cj, err := kube.BatchV1().CronJobs(ns).Get(ctx, "kubectl-acme-renew", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	args := cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0].Args
	if !strings.Contains(strings.Join(args, " "), "--cluster-resource-namespace "+cns) {
		t.Fatalf("the CronJob's arguments %v do not name the cluster resource namespace", args)
	}

	sa := "system:serviceaccount:" + ns + ":kubectl-acme-renew"
	can := func(verb, what, in string) bool {
		out, _, _ := kubectl(t, "auth", "can-i", verb, what, "-n", in, "--as", sa)
		return strings.TrimSpace(out) == "yes"
	}
	for _, c := range []struct {
		verb, what string
		want       bool
	}{
		{"get", "secrets/shared", true},
		{"get", "secrets/other", false},
		{"list", "secrets", false},
		{"get", "configmaps/other", false},
		{"create", "configmaps", false},
	} {
		if got := can(c.verb, c.what, cns); got != c.want {
			t.Errorf("in the cluster resource namespace, %s %s: %v, want %v", c.verb, c.what, got, c.want)
		}
	}

	saConfig := tokenKubeconfig(t, ns, "kubectl-acme-renew")
	for _, roleNS := range []string{ns, cns} {
		name := "kubectl-acme-renew"
		if roleNS == cns {
			name += "-" + ns
		}
		role, err := kube.RbacV1().Roles(roleNS).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for i, rule := range role.Rules {
			r, err := kube.RbacV1().Roles(roleNS).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			r.Rules = append(role.DeepCopy().Rules[:i:i], role.Rules[i+1:]...)
			if _, err := kube.RbacV1().Roles(roleNS).Update(ctx, r, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			what := rule.Resources[0] + groupSuffix(rule)
			if len(rule.ResourceNames) > 0 {
				what += "/" + rule.ResourceNames[0]
			}
			waitFor(t, 10*time.Second, "the rule's removal to take effect", func() bool { return !can(rule.Verbs[0], what, roleNS) })
			_, errOut, code := acmeCmd(t, saConfig, args...)
			for _, v := range rule.Verbs {
				want := v + " " + rule.Resources[0] + groupSuffix(rule)
				if len(rule.ResourceNames) > 0 {
					want += " " + rule.ResourceNames[0]
				}
				want += fmt.Sprintf(" in namespace %q", roleNS)
				if code != 1 || !strings.Contains(errOut, want) || !strings.Contains(errOut, "kubectl acme schedule -n "+ns+" --cluster-resource-namespace "+cns) {
					t.Errorf("without %s's rule %s %v: exit %d, want 1 naming %q and the schedule to run again\n%s", roleNS, what, rule.Verbs, code, want, errOut)
				}
			}
			r, _ = kube.RbacV1().Roles(roleNS).Get(ctx, name, metav1.GetOptions{})
			r.Rules = role.Rules
			if _, err := kube.RbacV1().Roles(roleNS).Update(ctx, r, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitFor(t, 10*time.Second, "the Roles restored", func() bool { return can("get", "secrets/shared", cns) && can("create", "events", ns) })
	if out, errOut, code := acmeCmd(t, saConfig, args...); code != 0 || !strings.Contains(out, "not due") {
		t.Errorf("the run with the Roles intact: exit %d\n%s\n%s", code, out, errOut)
	}

	mustACME(t, env.Kubeconfig, "unschedule", "-n", ns, crn)
	var after []string
	waitFor(t, 30*time.Second, "both namespaces as before schedule", func() bool {
		after = append(nsObjects(t, ns), nsObjects(t, cns)...)
		return reflect.DeepEqual(before, after)
	})
}
