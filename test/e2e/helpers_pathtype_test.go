package e2e

import (
	"context"
	"strings"
	"sync"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/kubectl-acme/kubectl-acme/test/internal/suite"
)

// pathTypeWatch records the pathType of every challenge path of every
// Ingress written in ns while it runs: the solver Ingress lives for a
// fraction of a second, so only a watch sees it.
type pathTypeWatch struct {
	mu    sync.Mutex
	types map[networkingv1.PathType]int
	stop  func()
	done  chan struct{}
}

// only stops the watch and fails unless every challenge path seen had
// type want, and there was one.
func (pw *pathTypeWatch) only(t *testing.T, want networkingv1.PathType) {
	t.Helper()
	pw.stop()
	<-pw.done
	pw.mu.Lock()
	defer pw.mu.Unlock()
	if pw.types[want] == 0 {
		t.Errorf("no challenge path of type %s seen (seen: %v)", want, pw.types)
	}
	for typ, n := range pw.types {
		if typ != want {
			t.Errorf("%d challenge path(s) of type %s, want only %s", n, typ, want)
		}
	}
}

func watchPathTypes(t *testing.T, ns string) *pathTypeWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	w, err := kube.NetworkingV1().Ingresses(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		cancel()
		t.Fatalf("watch ingresses: %v", err)
	}
	pw := &pathTypeWatch{types: map[networkingv1.PathType]int{}, stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(pw.done)
		defer w.Stop()
		for ev := range w.ResultChan() {
			ing, ok := ev.Object.(*networkingv1.Ingress)
			if !ok || (ev.Type != watch.Added && ev.Type != watch.Modified) {
				continue
			}
			for _, r := range ing.Spec.Rules {
				if r.HTTP == nil {
					continue
				}
				for _, p := range r.HTTP.Paths {
					if strings.HasPrefix(p.Path, "/.well-known/acme-challenge/") && p.PathType != nil {
						pw.mu.Lock()
						pw.types[*p.PathType]++
						pw.mu.Unlock()
					}
				}
			}
		}
	}()
	t.Cleanup(cancel)
	return pw
}

const gkeClass = suite.GKEClass
