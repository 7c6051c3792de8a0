package e2e

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	testenv "github.com/kubectl-acme/kubectl-acme/test/env"
)

// realNodeFidelity are the fidelity cases about the pod itself (security
// context, mount path, port, command, image) that a real kubelet, containerd
// and runc must fail just as simnode's kubelet imitation does.
var realNodeFidelity = []string{
	"correct solver is served",
	"runAsNonRoot without runAsUser on a root image",
	"volume mounted where httpd does not look",
	"configMap item names a missing key",
	"httpd listens on another port than the containerPort",
	"service targetPort number is not the port httpd listens on",
	"readiness probe on the wrong port",
	"httpd serves a directory that does not exist",
	"httpd without -f",
	"command not in the image",
	"image simnode cannot run",
}

// TestRealNode runs a real node (kube-scheduler, kubelet, containerd, runc;
// test/env realnode.go) in an environment of its own: the pod-side fidelity
// cases fail there as they must, a certificate is issued with its solver pod
// on that node (create-to-Ready and delete-to-gone are logged, and the pod
// must go within a few seconds of its deletion), and once the environment
// stops it has left no process, mount, network namespace, cgroup, socket or
// sysctl change behind.
//
// It is not parallel: while it runs, the package's env and kube are its
// own environment's, so the shared helpers (newNamespace, simGet, kubectl,
// ...) work on it; Go runs parallel tests only after the sequential ones.
func TestRealNode(t *testing.T) {
	sysctlsBefore, err := testenv.KubeletSysctls()
	if err != nil {
		t.Fatal(err)
	}
	suiteEnv, suiteKube := env, kube
	own, ownKube := startOwnEnv(t, testenv.Options{Node: testenv.NodeReal})
	env, kube = own, ownKube
	defer func() { env, kube = suiteEnv, suiteKube }()

	t.Run("fidelity", func(t *testing.T) {
		cases := simFidelityCases()
		for _, name := range realNodeFidelity {
			i := slices.IndexFunc(cases, func(c simFidelityCase) bool { return c.name == name })
			if i < 0 {
				t.Fatalf("no fidelity case %q", name)
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				runSimFidelityCase(t, cases[i])
			})
		}
	})

	t.Run("solver pod", func(t *testing.T) {
		ns := newNamespace(t)
		createIssuer(t, env.Kubeconfig, ns, "pebble", env.IngressClass)
		times := watchPodTimes(t, ns)
		mustACME(t, env.Kubeconfig, issueArgs(ns, "web", "pebble", "--domain", ns+".example.test", "--secret", "web-tls")...)
		verifySecret(t, ns, "web-tls", []string{ns + ".example.test"})
		assertNoSolverObjects(t, ns)
		pt := times()
		if pt.created.IsZero() || pt.ready.IsZero() || pt.deleting.IsZero() || pt.gone.IsZero() {
			t.Fatalf("solver pod not seen through its life: %+v", pt)
		}
		// The plugin deletes the pod with grace period 0: the API object
		// goes at once, and the kubelet stops the containers after.
		for env.NodeRunsPod(pt.uid) && time.Since(pt.gone) < time.Minute {
			time.Sleep(50 * time.Millisecond)
		}
		stopped := time.Now()
		t.Logf("solver pod on the real node: create to Ready %s, delete to gone from the API %s, to its containers stopped %s",
			pt.ready.Sub(pt.created).Round(10*time.Millisecond), pt.gone.Sub(pt.deleting).Round(10*time.Millisecond),
			stopped.Sub(pt.deleting).Round(10*time.Millisecond))
		// The pod's terminationGracePeriodSeconds is 2 (solver/objects.go);
		// without it httpd, ignoring SIGTERM, ran on for 30 s.
		if d := stopped.Sub(pt.deleting); d > 10*time.Second {
			t.Errorf("the solver pod's containers ran %s after its deletion", d)
		}
	})

	if err := own.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	left, err := testenv.Leftovers(own.Dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range left {
		t.Errorf("left after stop: %s", l)
	}
	if testenv.SysctlsShared() {
		t.Log("another real node runs on this machine: the kubelet's sysctls stay set until it stops")
		return
	}
	after, err := testenv.KubeletSysctls()
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(sysctlsBefore, after) {
		t.Errorf("sysctls after stop %v, before start %v", after, sysctlsBefore)
	}
}

type podTimes struct {
	uid                            string
	created, ready, deleting, gone time.Time
}

// watchPodTimes records when the test sees the namespace's (one) solver pod
// created, Ready, marked for deletion and gone; call the result after the
// pod is gone.
func watchPodTimes(t *testing.T, ns string) func() podTimes {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w, err := kube.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		cancel()
		t.Fatalf("watch pods: %v", err)
	}
	res := make(chan podTimes, 1)
	go func() {
		var pt podTimes
		defer func() { res <- pt }()
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok || p.Labels["app.kubernetes.io/managed-by"] != "kubectl-acme" {
				continue
			}
			now := time.Now()
			pt.uid = string(p.UID)
			switch {
			case ev.Type == watch.Deleted:
				pt.gone = now
				return
			case ev.Type == watch.Added && pt.created.IsZero():
				pt.created = now
			}
			if pt.ready.IsZero() && simPodReady(p) {
				pt.ready = now
			}
			if pt.deleting.IsZero() && p.DeletionTimestamp != nil {
				pt.deleting = now
			}
		}
	}()
	return func() podTimes {
		defer cancel()
		select {
		case pt := <-res:
			return pt
		case <-time.After(30 * time.Second):
			w.Stop()
			return <-res
		}
	}
}
