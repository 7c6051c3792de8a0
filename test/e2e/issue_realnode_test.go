package e2e

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	testenv "github.com/kubectl-acme/kubectl-acme/test/env"
)

// TestIssueSolverPodOnRealNode issues a certificate with its solver pod on a
// real node (kube-scheduler, kubelet, containerd, runc; test/env
// realnode.go): create-to-Ready and delete-to-gone are logged, and the pod's
// containers must stop within a few seconds of its deletion. The suite's
// environment serves when it runs a real node (the default); under
// TESTENV_NODE=sim the test starts a real one of its own.
//
// It is not parallel: while it runs on its own environment, the package's
// env and kube are that one's, so the shared helpers work on it; Go runs
// parallel tests only after the sequential ones.
func TestIssueSolverPodOnRealNode(t *testing.T) {
	if !env.RealNode {
		suiteEnv, suiteKube := env, kube
		own, ownKube := startOwnEnv(t, testenv.Options{Node: testenv.NodeReal})
		env, kube = own, ownKube
		defer func() { env, kube = suiteEnv, suiteKube }()
	}
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
			if pt.ready.IsZero() && podReady(p) {
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
