package solver

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-acme/kubectl-acme/acme"
)

// podFiles runs the shell part of the pod's command with its directory
// moved to a temporary one and without the exec of httpd, and returns the
// files it wrote: what httpd would serve, by token.
func podFiles(t *testing.T, pod *corev1.Pod) map[string]string {
	t.Helper()
	cmd := pod.Spec.Containers[0].Command
	if len(cmd) < 4 || cmd[0] != "sh" || cmd[1] != "-c" {
		t.Fatalf("command %q: want sh -c SCRIPT NAME ARGS...", cmd)
	}
	dir := t.TempDir()
	script, ok := strings.CutSuffix(cmd[2], "\nexec httpd -f -p 8089 -h "+webRoot)
	if !ok {
		t.Fatalf("script %q does not end in httpd", cmd[2])
	}
	script = strings.ReplaceAll(script, webRoot, dir)
	if out, err := exec.Command("sh", append([]string{"-c", script}, cmd[3:]...)...).CombinedOutput(); err != nil {
		t.Fatalf("script: %v\n%s", err, out)
	}
	files := map[string]string{}
	entries, err := os.ReadDir(filepath.Join(dir, ".well-known/acme-challenge"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, ".well-known/acme-challenge", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = string(b)
	}
	return files
}

func TestPodIsRestrictedAndServesItsKeyAuthorizations(t *testing.T) {
	cfg := Config{Namespace: "ns", Name: "acme-solver-web-abc123", Certificate: "web"}
	chals := []acme.Challenge{{Token: "tok-0", KeyAuthorization: "tok-0.thumb"}, {Token: "tok_1", KeyAuthorization: "tok_1.thumb"}}
	pod := cfg.pod(chals, "now")
	sc := pod.Spec.Containers[0].SecurityContext
	if !*pod.Spec.SecurityContext.RunAsNonRoot || *pod.Spec.SecurityContext.RunAsUser == 0 {
		t.Error("pod must run as a non-root uid")
	}
	if *sc.AllowPrivilegeEscalation || !*sc.ReadOnlyRootFilesystem || sc.Capabilities.Drop[0] != "ALL" {
		t.Errorf("container security context not restricted: %+v", sc)
	}
	if pod.Spec.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Error("seccomp must be RuntimeDefault")
	}
	if *pod.Spec.AutomountServiceAccountToken {
		t.Error("the solver needs no service account token")
	}
	// httpd as PID 1 ignores SIGTERM: the pod goes only when the grace ends.
	if g := pod.Spec.TerminationGracePeriodSeconds; g == nil || *g > 5 {
		t.Errorf("terminationGracePeriodSeconds %v: a deleted solver pod would linger", g)
	}
	c := pod.Spec.Containers[0]
	if len(pod.Spec.Volumes) != 0 || len(c.VolumeMounts) != 0 {
		t.Errorf("volumes %+v, mounts %+v: the kubelet waits for a pod's volumes in a 300 ms poll", pod.Spec.Volumes, c.VolumeMounts)
	}
	files := podFiles(t, pod)
	if len(files) != len(chals) {
		t.Fatalf("pod serves %v, want %d files", files, len(chals))
	}
	for _, ch := range chals {
		if files[ch.Token] != ch.KeyAuthorization {
			t.Errorf("file %s serves %q, want %q", ch.Token, files[ch.Token], ch.KeyAuthorization)
		}
	}
	if !strings.HasSuffix(podScript, "\nexec httpd -f -p 8089 -h "+webRoot) || !strings.HasPrefix(webRoot, "/dev/shm/") {
		t.Errorf("script %q must end in httpd in the foreground on 8089, serving the writable /dev/shm", podScript)
	}
	if c.Resources.Limits.Memory().IsZero() || c.Resources.Requests.Cpu().IsZero() {
		t.Error("resources must be set")
	}
	svc := cfg.service(nil, "now")
	if svc.Spec.Selector[LabelSolver] != pod.Labels[LabelSolver] {
		t.Error("service selector does not match the pod")
	}
	if svc.Spec.Ports[0].TargetPort.StrVal != c.Ports[0].Name {
		t.Error("service targetPort does not name the container port")
	}
}

func TestIngressRules(t *testing.T) {
	chals := []acme.Challenge{
		{Identifier: "a.example.com", Token: "t1"},
		{Identifier: "192.0.2.1", IsIP: true, Token: "t2"},
		{Identifier: "a.example.com", Token: "t3"},
	}
	cfg := Config{Namespace: "ns", Name: "s", IngressClassName: "nginx"}
	ing := cfg.ingress(chals, nil, "now")
	if *ing.Spec.IngressClassName != "nginx" {
		t.Error("class not set")
	}
	if len(ing.Spec.Rules) != 2 || ing.Spec.Rules[0].Host != "" || ing.Spec.Rules[1].Host != "a.example.com" {
		t.Fatalf("rules %+v", ing.Spec.Rules)
	}
	p := ing.Spec.Rules[1].HTTP.Paths
	if len(p) != 2 || p[0].Path != "/.well-known/acme-challenge/t1" || *p[0].PathType != "Exact" {
		t.Errorf("paths %+v", p)
	}
	legacy := Config{Name: "s", LegacyClass: "traefik"}
	ing = legacy.ingress(chals, nil, "now")
	if ing.Spec.IngressClassName != nil || ing.Annotations["kubernetes.io/ingress.class"] != "traefik" {
		t.Error("legacy class must use the annotation only")
	}
}

func TestPodState(t *testing.T) {
	tests := []struct {
		name         string
		status       corev1.PodStatus
		ready, fatal bool
	}{
		{name: "pending", status: corev1.PodStatus{Phase: corev1.PodPending}},
		{name: "ready", status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}, ready: true},
		{name: "image pull", status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull"}}}}}, fatal: true},
		{name: "failed", status: corev1.PodStatus{Phase: corev1.PodFailed}, fatal: true},
	}
	for _, tt := range tests {
		ready, _, fatal := podState(&corev1.Pod{Status: tt.status})
		if ready != tt.ready || fatal != tt.fatal {
			t.Errorf("%s: ready=%v fatal=%v", tt.name, ready, fatal)
		}
	}
}

// TestPresentAndCleanUp runs the solver against a fake API server whose
// "kubelet" marks the pod ready, and a local HTTP server standing in for the
// ingress controller.
func TestPresentAndCleanUp(t *testing.T) {
	chals := []acme.Challenge{{Identifier: "a.example.com", Token: "tok", KeyAuthorization: "tok.thumb"}}
	client := fake.NewClientset()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	var lb *httptest.Server
	lb = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pod, err := client.CoreV1().Pods("ns").Get(r.Context(), "s", metav1.GetOptions{})
		token := strings.TrimPrefix(r.URL.Path, ChallengePath)
		if err != nil || r.Host != "a.example.com" {
			http.NotFound(w, r)
			return
		}
		for _, ka := range pod.Spec.Containers[0].Command[4:] {
			if strings.HasPrefix(ka, token+".") {
				fmt.Fprint(w, ka)
				return
			}
		}
		http.NotFound(w, r)
	}))
	defer lb.Close()

	go func() {
		// Plays kubelet: marks the pod ready once it exists.
		for ctx.Err() == nil {
			pod, err := client.CoreV1().Pods("ns").Get(ctx, "s", metav1.GetOptions{})
			if err == nil {
				pod.Status.Phase = corev1.PodRunning
				pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
				_, _ = client.CoreV1().Pods("ns").UpdateStatus(ctx, pod, metav1.UpdateOptions{})
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()

	s := &Ingress{Workload: Workload{
		Client:  client,
		Config:  Config{Namespace: "ns", Name: "s", Certificate: "web", IngressClassName: "nginx"},
		Checker: &SelfCheck{ConnectTo: strings.TrimPrefix(lb.URL, "http://"), Timeout: 5 * time.Second},
	}}
	if err := s.Present(ctx, chals); err != nil {
		t.Fatalf("Present: %v", err)
	}
	if err := s.CleanUp(ctx); err != nil {
		t.Fatalf("CleanUp: %v", err)
	}
	if n := solverObjects(ctx, client); n != 0 {
		t.Errorf("%d solver objects left after CleanUp", n)
	}
}

func TestSelfCheckExplains(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case ChallengePath + "wrong":
			fmt.Fprint(w, "something else")
		case ChallengePath + "redirect":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	c := &SelfCheck{ConnectTo: strings.TrimPrefix(srv.URL, "http://")}
	tests := []struct{ token, reason, detail string }{
		{token: "missing", reason: "status", detail: "HTTP 404"},
		{token: "wrong", reason: "body", detail: "something else"},
		{token: "redirect", reason: "status", detail: "after redirect to http://a.example.com/elsewhere"},
	}
	for _, tt := range tests {
		err := c.Check(context.Background(), acme.Challenge{Identifier: "a.example.com", Token: tt.token, KeyAuthorization: "ka"})
		ce, ok := err.(*CheckError)
		if !ok || ce.Reason != tt.reason || !strings.Contains(ce.Detail, tt.detail) {
			t.Errorf("%s: %v", tt.token, err)
		}
	}
}

// TestSelfCheckWaitsBeforeExplaining: a 503 while the route propagates is
// reported as waiting, not explained; the same 503 after Propagation is.
func TestSelfCheckWaitsBeforeExplaining(t *testing.T) {
	var ready atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !ready.Load() {
			http.Error(w, "no endpoints", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "ka")
	}))
	defer srv.Close()
	ch := acme.Challenge{Identifier: "a.example.com", Token: "tok", KeyAuthorization: "ka"}
	record := func() (acme.Observer, func() []string) {
		var mu sync.Mutex
		var got []string
		return func(ev acme.Event) {
				mu.Lock()
				got = append(got, ev.Detail)
				mu.Unlock()
			}, func() []string {
				mu.Lock()
				defer mu.Unlock()
				return append([]string(nil), got...)
			}
	}

	// Served after 300 ms, within the propagation time: no explanation.
	c := &SelfCheck{ConnectTo: strings.TrimPrefix(srv.URL, "http://"), Timeout: 5 * time.Second, Propagation: 2 * time.Second}
	time.AfterFunc(300*time.Millisecond, func() { ready.Store(true) })
	observe, events := record()
	if err := c.CheckAll(context.Background(), []acme.Challenge{ch}, observe); err != nil {
		t.Fatal(err)
	}
	got := events()
	if len(got) != 2 || !strings.Contains(got[0], "waiting for the route") || got[1] != "self-check passed" {
		t.Errorf("events %q, want waiting then passed", got)
	}

	// Still 503 after the propagation time: explained once, then the
	// final error explains it too.
	ready.Store(false)
	c = &SelfCheck{ConnectTo: strings.TrimPrefix(srv.URL, "http://"), Timeout: 1500 * time.Millisecond, Propagation: 300 * time.Millisecond}
	observe, events = record()
	err := c.CheckAll(context.Background(), []acme.Challenge{ch}, observe)
	if err == nil || !strings.Contains(err.Error(), "HTTP 503 (the route exists but the solver pod is not reachable") || strings.Contains(err.Error(), "while waiting") {
		t.Errorf("error %v, want the 503 explained", err)
	}
	got = events()
	if len(got) != 2 || !strings.Contains(got[0], "waiting for the route") || !strings.Contains(got[1], "HTTP 503 (the route exists") {
		t.Errorf("events %q, want waiting, then the 503 explained once", got)
	}
}

// The solver pod's CPU limit is one CPU, whatever it serves, and
// cert-manager's 100m once the cluster refused that.
func TestSolverCPULimit(t *testing.T) {
	for _, n := range []int{0, 1, 3, 100} {
		chals := make([]acme.Challenge, n)
		for i := range chals {
			chals[i] = acme.Challenge{Identifier: fmt.Sprintf("h%d.example.com", i), Token: fmt.Sprintf("t%d", i), KeyAuthorization: "k"}
		}
		for small, want := range map[bool]string{false: "1", true: "100m"} {
			c := &Config{Namespace: "ns", Name: "s", CertManagerCPU: small}
			got := c.pod(chals, "2006-01-02T15:04:05Z").Spec.Containers[0].Resources.Limits[corev1.ResourceCPU]
			if got.String() != want {
				t.Errorf("%d challenges, CertManagerCPU %v: CPU limit %s, want %s", n, small, got.String(), want)
			}
		}
	}
}

// solverObjects counts the pods, Services and Ingresses in namespace "ns".
func solverObjects(ctx context.Context, client kubernetes.Interface) int {
	pods, _ := client.CoreV1().Pods("ns").List(ctx, metav1.ListOptions{})
	svcs, _ := client.CoreV1().Services("ns").List(ctx, metav1.ListOptions{})
	ings, _ := client.NetworkingV1().Ingresses("ns").List(ctx, metav1.ListOptions{})
	return len(pods.Items) + len(svcs.Items) + len(ings.Items)
}
