package harness

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/utils/ptr"
)

// The simnode tests check that the simulated node and ingress controller
// are faithful enough for the plugin's tests to mean something: a correct
// hand-written busybox httpd solver is served, and each single mistake in
// its objects makes the request fail, as it would on a real cluster.

const (
	// simTimeout bounds each test's waits. Passing tests take a few
	// seconds; the margin is for a loaded machine.
	simTimeout = time.Minute
	simToken   = "tok-4Xx_fidelity"
	simPath    = "/.well-known/acme-challenge/" + simToken
	// simMarkerEnv tags the pod's process so the test can find it in /proc.
	simMarkerEnv = "SIMNODE_E2E_MARKER"
)

// simObjects is a hand-written http-01 solver: httpd serves a ConfigMap
// mounted at /var/www, behind a Service and an Ingress with an
// ImplementationSpecific path (class nginx has ingress-nginx's admission
// rule, which denies an Exact path with a dot).
type simObjects struct {
	host, body string
	cm         *corev1.ConfigMap
	pod        *corev1.Pod
	svc        *corev1.Service
	ing        *networkingv1.Ingress
}

func newSimObjects(ns string) *simObjects {
	host := ns + ".example"
	body := "key-authorization-" + ns
	labels := map[string]string{"app": "solver"}
	implSpecific := networkingv1.PathTypeImplementationSpecific
	return &simObjects{
		host: host,
		body: body,
		cm: &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "challenges"},
			Data:       map[string]string{simToken: body},
		},
		pod: &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "solver", Labels: labels},
			Spec: corev1.PodSpec{
				TerminationGracePeriodSeconds: ptr.To[int64](1),
				SecurityContext: &corev1.PodSecurityContext{
					RunAsNonRoot: ptr.To(true),
					RunAsUser:    ptr.To[int64](65534),
					RunAsGroup:   ptr.To[int64](65534),
				},
				Containers: []corev1.Container{{
					Name:    "httpd",
					Image:   "busybox:1.36",
					Command: []string{"httpd", "-f", "-p", "8080", "-h", "/var/www"},
					Env:     []corev1.EnvVar{{Name: simMarkerEnv, Value: ns}},
					Ports:   []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
					VolumeMounts: []corev1.VolumeMount{{
						Name: "challenges", MountPath: "/var/www/.well-known/acme-challenge", ReadOnly: true,
					}},
				}},
				Volumes: []corev1.Volume{{
					Name: "challenges",
					VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
						LocalObjectReference: corev1.LocalObjectReference{Name: "challenges"},
					}},
				}},
			},
		},
		svc: &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "solver"},
			Spec: corev1.ServiceSpec{
				Selector: labels,
				Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
			},
		},
		ing: &networkingv1.Ingress{
			ObjectMeta: metav1.ObjectMeta{Name: "solver"},
			Spec: networkingv1.IngressSpec{
				IngressClassName: ptr.To(env.IngressClass),
				Rules: []networkingv1.IngressRule{{
					Host: host,
					IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
						Paths: []networkingv1.HTTPIngressPath{{
							Path: simPath, PathType: &implSpecific,
							Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
								Name: "solver", Port: networkingv1.ServiceBackendPort{Number: 80},
							}},
						}},
					}},
				}},
			},
		},
	}
}

func (o *simObjects) create(ctx context.Context, t *testing.T, ns string) {
	t.Helper()
	if _, err := kube.CoreV1().ConfigMaps(ns).Create(ctx, o.cm, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create configmap: %v", err)
	}
	if _, err := kube.CoreV1().Pods(ns).Create(ctx, o.pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod: %v", err)
	}
	if _, err := kube.CoreV1().Services(ns).Create(ctx, o.svc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create service: %v", err)
	}
	if o.ing == nil {
		return // routed by an HTTPRoute instead
	}
	if _, err := kube.NetworkingV1().Ingresses(ns).Create(ctx, o.ing, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create ingress: %v", err)
	}
}

// simSettle says what must have happened before a failing request proves
// something: until then, a failure could be mere latency.
type simSettle int

const (
	simSettlePodReady        simSettle = iota // the pod is Ready: the failure is downstream of it
	simSettlePodWaiting                       // the container waits with a given reason
	simSettleFailedMount                      // the kubelet reported a FailedMount event
	simSettleProbeFailed                      // the kubelet reported a failed readiness probe
	simSettleIngressResynced                  // the ingress controller saw a later Ingress
)

// simFidelityCase is one mistake in a hand-written solver and what it leads to.
type simFidelityCase struct {
	name string
	// mutate introduces one mistake; nil is the correct solver.
	mutate   func(o *simObjects)
	settle   simSettle
	waitFor  string // container waiting reason, for simSettlePodWaiting
	wantCode int    // the status the mistake leads to; 200: still served
}

func TestSimnodeFidelity(t *testing.T) {
	for _, tt := range simFidelityCases() {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			runSimFidelityCase(t, tt)
		})
	}
}

func simFidelityCases() []simFidelityCase {
	return []simFidelityCase{
		{name: "correct solver is served"},
		{
			name:   "service selector matches no pod",
			mutate: func(o *simObjects) { o.svc.Spec.Selector = map[string]string{"app": "solvr"} },
			settle: simSettlePodReady, wantCode: http.StatusServiceUnavailable,
		},
		{
			name:   "service targetPort number is not the port httpd listens on",
			mutate: func(o *simObjects) { o.svc.Spec.Ports[0].TargetPort = intstr.FromInt32(8081) },
			settle: simSettlePodReady, wantCode: http.StatusBadGateway,
		},
		{
			name:   "service targetPort names no container port",
			mutate: func(o *simObjects) { o.svc.Spec.Ports[0].TargetPort = intstr.FromString("web") },
			settle: simSettlePodReady, wantCode: http.StatusServiceUnavailable,
		},
		{
			name:   "ingress backend names a service port that does not exist",
			mutate: func(o *simObjects) { simBackend(o).Port = networkingv1.ServiceBackendPort{Number: 8080} },
			settle: simSettlePodReady, wantCode: http.StatusServiceUnavailable,
		},
		{
			name:   "ingress class is not served",
			mutate: func(o *simObjects) { o.ing.Spec.IngressClassName = ptr.To("traefik") },
			settle: simSettleIngressResynced, wantCode: http.StatusNotFound,
		},
		{
			// Admission gives it the default class, which is ours.
			name:     "ingress without class is served by the default class",
			mutate:   func(o *simObjects) { o.ing.Spec.IngressClassName = nil },
			wantCode: http.StatusOK,
		},
		{
			name: "ingress with the legacy annotation of another class",
			mutate: func(o *simObjects) {
				o.ing.Spec.IngressClassName = nil
				o.ing.Annotations = map[string]string{"kubernetes.io/ingress.class": "traefik"}
			},
			settle: simSettleIngressResynced, wantCode: http.StatusNotFound,
		},
		{
			// ingress-nginx's ImplementationSpecific is a prefix
			// location: a longer path does not match the request.
			name:   "ImplementationSpecific path longer than the request path",
			mutate: func(o *simObjects) { o.ing.Spec.Rules[0].HTTP.Paths[0].Path = simPath + "/" },
			settle: simSettleIngressResynced, wantCode: http.StatusNotFound,
		},
		{
			name:   "ingress host differs",
			mutate: func(o *simObjects) { o.ing.Spec.Rules[0].Host = "www." + o.host },
			settle: simSettleIngressResynced, wantCode: http.StatusNotFound,
		},
		{
			name: "configMap item names a missing key",
			mutate: func(o *simObjects) {
				o.pod.Spec.Volumes[0].ConfigMap.Items = []corev1.KeyToPath{{Key: "tok-other", Path: simToken}}
			},
			settle: simSettleFailedMount, wantCode: http.StatusServiceUnavailable,
		},
		{
			name: "configMap item path is not the token",
			mutate: func(o *simObjects) {
				o.pod.Spec.Volumes[0].ConfigMap.Items = []corev1.KeyToPath{{Key: simToken, Path: "token"}}
			},
			settle: simSettlePodReady, wantCode: http.StatusNotFound,
		},
		{
			name: "volume mounted where httpd does not look",
			mutate: func(o *simObjects) {
				o.pod.Spec.Containers[0].VolumeMounts[0].MountPath = "/www/.well-known/acme-challenge"
			},
			settle: simSettlePodReady, wantCode: http.StatusNotFound,
		},
		{
			name:   "httpd listens on another port than the containerPort",
			mutate: func(o *simObjects) { o.pod.Spec.Containers[0].Command[3] = "8081" },
			settle: simSettlePodReady, wantCode: http.StatusBadGateway,
		},
		{
			// httpd exits when it cannot enter its home directory.
			name:   "httpd serves a directory that does not exist",
			mutate: func(o *simObjects) { o.pod.Spec.Containers[0].Command[5] = "/srv" },
			settle: simSettlePodWaiting, waitFor: "CrashLoopBackOff", wantCode: http.StatusServiceUnavailable,
		},
		{
			name:   "httpd serves an existing directory without the files",
			mutate: func(o *simObjects) { o.pod.Spec.Containers[0].Command[5] = "/tmp" },
			settle: simSettlePodReady, wantCode: http.StatusNotFound,
		},
		{
			// Without -f httpd daemonizes: PID 1 exits and the container
			// with it, a classic mistake.
			name: "httpd without -f",
			mutate: func(o *simObjects) {
				o.pod.Spec.Containers[0].Command = []string{"httpd", "-p", "8080", "-h", "/var/www"}
			},
			settle: simSettlePodWaiting, waitFor: "CrashLoopBackOff", wantCode: http.StatusServiceUnavailable,
		},
		{
			name:   "command not in the image",
			mutate: func(o *simObjects) { o.pod.Spec.Containers[0].Command[0] = "lighttpd" },
			settle: simSettlePodWaiting, waitFor: "CrashLoopBackOff", wantCode: http.StatusServiceUnavailable,
		},
		{
			name: "runAsNonRoot without runAsUser on a root image",
			mutate: func(o *simObjects) {
				o.pod.Spec.SecurityContext.RunAsUser, o.pod.Spec.SecurityContext.RunAsGroup = nil, nil
			},
			settle: simSettlePodWaiting, waitFor: "CreateContainerConfigError", wantCode: http.StatusServiceUnavailable,
		},
		{
			name: "image simnode cannot run",
			mutate: func(o *simObjects) {
				o.pod.Spec.Containers[0].Image = "nginx:1.27"
				o.pod.Spec.Containers[0].Command = nil
			},
			settle: simSettlePodWaiting, waitFor: "ErrImagePull", wantCode: http.StatusServiceUnavailable,
		},
		{
			// kubectl-acme's pod: no volume, the files written to the
			// runtime's /dev/shm under a read-only root.
			name:     "files written to /dev/shm under a read-only root are served",
			mutate:   func(o *simObjects) { simShmSolver(o, "/dev/shm/www") },
			wantCode: http.StatusOK,
		},
		{
			name:   "files written to the read-only root",
			mutate: func(o *simObjects) { simShmSolver(o, "/var/www") },
			settle: simSettlePodWaiting, waitFor: "CrashLoopBackOff", wantCode: http.StatusServiceUnavailable,
		},
		{
			name: "readiness probe on the wrong port",
			mutate: func(o *simObjects) {
				o.pod.Spec.Containers[0].ReadinessProbe = &corev1.Probe{
					ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(9999)}},
					PeriodSeconds: 1,
				}
			},
			settle: simSettleProbeFailed, wantCode: http.StatusServiceUnavailable,
		},
	}
}

// simShmSolver makes o's pod write its one file under root from its
// command line, with no volume and a read-only root filesystem, and serve
// root with httpd.
func simShmSolver(o *simObjects, root string) {
	o.pod.Spec.Volumes = nil
	c := &o.pod.Spec.Containers[0]
	c.VolumeMounts = nil
	c.SecurityContext = &corev1.SecurityContext{ReadOnlyRootFilesystem: ptr.To(true)}
	dir := root + "/.well-known/acme-challenge"
	c.Command = []string{"sh", "-c", `set -e; mkdir -p "` + dir + `"; printf %s "$2" >"` + dir + `/$1"; exec httpd -f -p 8080 -h ` + root, "solver", simToken, o.body}
}

func runSimFidelityCase(t *testing.T, tt simFidelityCase) {
	ns := newNamespace(t)
	o := newSimObjects(ns)
	if tt.mutate != nil {
		tt.mutate(o)
	}
	ctx, cancel := context.WithTimeout(t.Context(), simTimeout)
	defer cancel()
	o.create(ctx, t, ns)

	if tt.mutate == nil || tt.wantCode == http.StatusOK {
		waitSimServed(ctx, t, o.host, simPath, o.body)
		// Pebble validates with several concurrent requests.
		simConcurrentGets(t, o.host, simPath, o.body, 3)
		return
	}
	codes := []int{tt.wantCode}
	switch tt.settle {
	case simSettlePodReady:
		simWaitPod(ctx, t, ns, o.pod.Name, "Ready", simPodReady)
	case simSettlePodWaiting:
		simWaitPod(ctx, t, ns, o.pod.Name, "waiting "+tt.waitFor, func(p *corev1.Pod) bool {
			for _, cs := range p.Status.ContainerStatuses {
				if cs.State.Waiting != nil && cs.State.Waiting.Reason == tt.waitFor {
					return true
				}
			}
			return false
		})
		if tt.waitFor == "CrashLoopBackOff" {
			// Between back-offs the container runs for a moment, and
			// without a readiness probe a real kubelet reports the pod
			// Ready meanwhile (kubernetes pkg/kubelet/status
			// generate.go): the ingress then has an endpoint that
			// refuses, 502, as ingress-nginx answers.
			codes = append(codes, http.StatusBadGateway)
		}
	case simSettleFailedMount:
		simWaitEvent(ctx, t, ns, o.pod.Name, "FailedMount")
	case simSettleProbeFailed:
		simWaitEvent(ctx, t, ns, o.pod.Name, "Unhealthy")
	case simSettleIngressResynced:
		simIngressBarrier(ctx, t, ns)
	}
	simAssertNotServed(t, o.host, simPath, o.body, codes...)
}

func simBackend(o *simObjects) *networkingv1.IngressServiceBackend {
	return o.ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service
}

// TestSimnodePathTypes checks Exact, Prefix and ingress-nginx's
// ImplementationSpecific semantics, element-wise Prefix matching, longest
// match, and wildcard hosts. httpd has a file for
// every requested path, so only the ingress can make a request fail.
func TestSimnodePathTypes(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ctx, cancel := context.WithTimeout(t.Context(), simTimeout)
	defer cancel()
	o := newSimObjects(ns)
	files := map[string]string{
		"exact/file": "exact", "exact/file2": "exact2", "prefix/file": "prefix",
		"prefixfile": "prefixfile", "deep/er/file": "deep",
		"impl/ab": "impl-ab", "impl/ac": "impl-ac",
	}
	o.cm.Data = map[string]string{}
	o.pod.Spec.Volumes[0].ConfigMap.Items = nil
	o.pod.Spec.Containers[0].VolumeMounts[0].MountPath = "/var/www"
	for p, body := range files {
		key := strings.ReplaceAll(p, "/", "_")
		o.cm.Data[key] = body
		o.pod.Spec.Volumes[0].ConfigMap.Items = append(o.pod.Spec.Volumes[0].ConfigMap.Items, corev1.KeyToPath{Key: key, Path: p})
	}
	exact, prefix, impl := networkingv1.PathTypeExact, networkingv1.PathTypePrefix, networkingv1.PathTypeImplementationSpecific
	to := func(typ networkingv1.PathType, p, svc string) networkingv1.HTTPIngressPath {
		return networkingv1.HTTPIngressPath{Path: p, PathType: &typ, Backend: networkingv1.IngressBackend{
			Service: &networkingv1.IngressServiceBackend{Name: svc, Port: networkingv1.ServiceBackendPort{Name: "http"}},
		}}
	}
	paths := []networkingv1.HTTPIngressPath{
		to(exact, "/exact/file", "solver"),
		to(prefix, "/prefix", "solver"),
		to(prefix, "/deep/", "solver"),
		// ingress-nginx: an nginx prefix location, longest first.
		to(impl, "/impl/a", "solver"),
		to(impl, "/impl/ab", "missing"),
		// Everything else goes to a Service that does not exist: 503.
		to(prefix, "/", "missing"),
	}
	rules := func(host string) networkingv1.IngressRule {
		return networkingv1.IngressRule{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{
			HTTP: &networkingv1.HTTPIngressRuleValue{Paths: paths},
		}}
	}
	o.ing.Spec.Rules = []networkingv1.IngressRule{rules(o.host), rules("*.wild." + o.host)}
	o.create(ctx, t, ns)
	waitSimServed(ctx, t, o.host, "/exact/file", "exact")

	tests := []struct {
		host, path string
		code       int
		body       string
	}{
		{o.host, "/exact/file", 200, "exact"},
		{o.host, "/exact/file2", 503, ""}, // Exact does not match a longer path
		{o.host, "/prefix/file", 200, "prefix"},
		{o.host, "/prefixfile", 503, ""}, // Prefix matches whole elements only
		{o.host, "/deep/er/file", 200, "deep"},
		{o.host, "/impl/ac", 200, "impl-ac"}, // ImplementationSpecific is a string prefix
		{o.host, "/impl/ab", 503, ""},        // the longer one wins
		{"a.wild." + o.host, "/prefix/file", 200, "prefix"},
		{"a.b.wild." + o.host, "/prefix/file", 404, ""}, // a wildcard spans one label
		{"wild." + o.host, "/prefix/file", 404, ""},
	}
	for _, tt := range tests {
		code, body, err := simGet(t.Context(), tt.host, tt.path)
		if err != nil {
			t.Errorf("GET %s%s: %v", tt.host, tt.path, err)
			continue
		}
		if code != tt.code || (tt.body != "" && body != tt.body) {
			t.Errorf("GET %s%s = %d %q, want %d %q", tt.host, tt.path, code, body, tt.code, tt.body)
		}
	}
}

// TestSimnodePodLifecycle checks that a ConfigMap change reaches the
// served file, and that deleting the pod stops its process and removes it
// from the Service's endpoints.
func TestSimnodePodLifecycle(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ctx, cancel := context.WithTimeout(t.Context(), simTimeout)
	defer cancel()
	o := newSimObjects(ns)
	o.create(ctx, t, ns)
	waitSimServed(ctx, t, o.host, simPath, o.body)
	if n := simMarkedProcesses(t, ns); n == 0 {
		t.Fatalf("no process carries %s=%s while the pod runs; the check below would prove nothing", simMarkerEnv, ns)
	}

	cm := o.cm.DeepCopy()
	cm.Data[simToken] = "updated-" + ns
	if _, err := kube.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update configmap: %v", err)
	}
	waitSimServed(ctx, t, o.host, simPath, "updated-"+ns)

	if err := kube.CoreV1().Pods(ns).Delete(ctx, o.pod.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete pod: %v", err)
	}
	simWaitPodGone(ctx, t, ns, o.pod.Name)
	// The kubelet removes a pod only after its containers have stopped.
	if n := simMarkedProcesses(t, ns); n != 0 {
		t.Errorf("%d processes of the deleted pod still run", n)
	}
	simAssertNotServed(t, o.host, simPath, "updated-"+ns, http.StatusServiceUnavailable)
}

func simPodReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// simWaitPod watches a pod until cond holds.
func simWaitPod(ctx context.Context, t *testing.T, ns, name, what string, cond func(*corev1.Pod) bool) {
	t.Helper()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
			return kube.CoreV1().Pods(ns).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
			return kube.CoreV1().Pods(ns).Watch(ctx, o)
		},
	}
	var last *corev1.Pod
	_, err := watchtools.UntilWithSync(ctx, lw, &corev1.Pod{}, nil, func(ev watch.Event) (bool, error) {
		p, ok := ev.Object.(*corev1.Pod)
		if !ok {
			return false, nil
		}
		last = p
		return cond(p), nil
	})
	if err != nil {
		t.Fatalf("pod %s/%s never %s: %v; last status: %+v\nsimnode log: %s", ns, name, what, err, simStatusOf(last), env.LogFile("simnode"))
	}
}

func simStatusOf(p *corev1.Pod) any {
	if p == nil {
		return nil
	}
	return p.Status
}

func simWaitPodGone(ctx context.Context, t *testing.T, ns, name string) {
	t.Helper()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
			return kube.CoreV1().Pods(ns).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
			return kube.CoreV1().Pods(ns).Watch(ctx, o)
		},
	}
	_, err := watchtools.UntilWithSync(ctx, lw, &corev1.Pod{}, func(store cache.Store) (bool, error) {
		return len(store.List()) == 0, nil
	}, func(ev watch.Event) (bool, error) {
		return ev.Type == watch.Deleted, nil
	})
	if err != nil {
		t.Fatalf("pod %s/%s was never removed: %v", ns, name, err)
	}
}

// simWaitEvent watches for an event with reason about the named object.
func simWaitEvent(ctx context.Context, t *testing.T, ns, name, reason string) {
	t.Helper()
	sel := fields.Set{"involvedObject.name": name, "reason": reason}.AsSelector().String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return kube.CoreV1().Events(ns).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return kube.CoreV1().Events(ns).Watch(ctx, o)
		},
	}
	_, err := watchtools.UntilWithSync(ctx, lw, &corev1.Event{}, func(store cache.Store) (bool, error) {
		return len(store.List()) > 0, nil
	}, func(ev watch.Event) (bool, error) {
		return ev.Type == watch.Added || ev.Type == watch.Modified, nil
	})
	if err != nil {
		t.Fatalf("no %s event for %s/%s: %v\nsimnode log: %s", reason, ns, name, err, env.LogFile("simnode"))
	}
}

// simIngressBarrier creates a correct Ingress after the ones under test and
// waits until the ingress controller routes it: the controller handles
// Ingress events in order, so it has then seen the earlier ones too. Its
// backend Service does not exist, so routing it shows as a 503.
func simIngressBarrier(ctx context.Context, t *testing.T, ns string) {
	t.Helper()
	exact := networkingv1.PathTypeExact
	host := "barrier." + ns + ".example"
	ing := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "barrier"},
		Spec: networkingv1.IngressSpec{
			IngressClassName: ptr.To(env.IngressClass),
			Rules: []networkingv1.IngressRule{{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{
				HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
					Path: "/barrier", PathType: &exact,
					Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
						Name: "barrier", Port: networkingv1.ServiceBackendPort{Number: 80},
					}},
				}}},
			}}},
		},
	}
	if _, err := kube.NetworkingV1().Ingresses(ns).Create(ctx, ing, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create barrier ingress: %v", err)
	}
	simWaitCode(ctx, t, host, "/barrier", http.StatusServiceUnavailable, "the barrier Ingress")
}

// simWaitCode polls until a request answers code: what, a barrier, is
// then routed.
func simWaitCode(ctx context.Context, t *testing.T, host, path string, want int, what string) {
	t.Helper()
	for {
		code, _, err := simGet(ctx, host, path)
		if err == nil && code == want {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the ingress controller never routed %s (last %d, %v)", what, code, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// simGet sends one request to the ingress controller as Pebble would.
func simGet(ctx context.Context, host, path string) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+env.IngressHTTP+path, nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, strings.TrimSpace(string(body)), err
}

// waitSimServed polls until the ingress answers 200 with want.
func waitSimServed(ctx context.Context, t *testing.T, host, path, want string) {
	t.Helper()
	var last string
	for {
		code, body, err := simGet(ctx, host, path)
		if err == nil && code == http.StatusOK && body == want {
			return
		}
		last = fmt.Sprintf("%d %q %v", code, body, err)
		select {
		case <-ctx.Done():
			t.Fatalf("%s%s never served %q (last answer %s)\nsimnode log: %s", host, path, want, last, env.LogFile("simnode"))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// simAssertNotServed waits until the request fails with code (the ingress
// controller learns of pod readiness a little after the API server, as
// ingress-nginx does), then checks for a moment that it keeps failing so.
// It must never be served meanwhile.
func simAssertNotServed(t *testing.T, host, path, body string, codes ...int) {
	t.Helper()
	code := codes[0]
	var settled time.Time
	deadline := time.Now().Add(simTimeout / 4)
	for {
		got, gotBody, err := simGet(t.Context(), host, path)
		if err != nil {
			t.Fatalf("GET %s%s: %v", host, path, err)
		}
		if got == http.StatusOK && gotBody == body {
			t.Fatalf("GET %s%s was served although the solver is broken", host, path)
		}
		if slices.Contains(codes, got) {
			got = code // as good as the first
		}
		switch {
		case got != code && !settled.IsZero():
			t.Fatalf("GET %s%s = %d %q after it was %d", host, path, got, gotBody, code)
		case got == code && settled.IsZero():
			settled = time.Now()
		case got == code && time.Since(settled) > time.Second:
			return
		case got != code && time.Now().After(deadline):
			t.Fatalf("GET %s%s = %d %q, want %d\nsimnode log: %s", host, path, got, gotBody, code, env.LogFile("simnode"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// simConcurrentGets sends n requests at once, as Pebble's validation does.
func simConcurrentGets(t *testing.T, host, path, want string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for range n {
		wg.Go(func() {
			code, body, err := simGet(t.Context(), host, path)
			if err != nil || code != http.StatusOK || body != want {
				errs <- fmt.Sprintf("%d %q %v", code, body, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("concurrent GET %s%s: %s", host, path, e)
	}
}

// simMarkedProcesses counts local processes whose environment carries the
// marker of namespace ns: simnode runs pods as processes on this machine.
func simMarkedProcesses(t *testing.T, ns string) int {
	t.Helper()
	marker := []byte(simMarkerEnv + "=" + ns + "\x00")
	procs, err := filepath.Glob("/proc/[0-9]*/environ")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // gone meanwhile, or a kernel thread
		}
		if strings.Contains(string(b), string(marker)) {
			n++
		}
	}
	return n
}
