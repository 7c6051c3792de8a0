package solver

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubectl-acme/kubectl-acme/acme"
)

// presentReady creates the solver's objects in client and marks its pod
// ready, as Present does with a kubelet.
func presentReady(t *testing.T, ctx context.Context, s *Ingress, chals []acme.Challenge) {
	t.Helper()
	go func() {
		for ctx.Err() == nil {
			pod, err := s.Client.CoreV1().Pods("ns").Get(ctx, "s", metav1.GetOptions{})
			if err == nil {
				pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
				_, _ = s.Client.CoreV1().Pods("ns").UpdateStatus(ctx, pod, metav1.UpdateOptions{})
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	if err := s.Start(ctx, chals); err != nil {
		t.Fatalf("Start: %v", err)
	}
}

// withUIDs gives created objects a UID, as the API server does and the
// fake does not.
func withUIDs(c *fake.Clientset) *fake.Clientset {
	n := 0
	c.PrependReactor("create", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if o, err := meta.Accessor(a.(k8stesting.CreateAction).GetObject()); err == nil {
			n++
			o.SetUID(types.UID(fmt.Sprint("uid-", n)))
		}
		return false, nil, nil
	})
	return c
}

func deletes(client *fake.Clientset) map[string]metav1.DeleteOptions {
	out := map[string]metav1.DeleteOptions{}
	for _, a := range client.Actions() {
		if d, ok := a.(k8stesting.DeleteActionImpl); ok {
			out[d.GetResource().Resource] = d.DeleteOptions
		}
	}
	return out
}

// With blockOwnerDeletion admitted, cleanUp sends one foreground delete of
// the pod and leaves the Service and Ingress to the garbage collector.
func TestCleanUpLeavesDependentsToTheCollector(t *testing.T) {
	chals := []acme.Challenge{{Identifier: "a.example.com", Token: "tok", KeyAuthorization: "tok.thumb"}}
	client := withUIDs(fake.NewClientset())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := &Ingress{Workload: Workload{Client: client, Config: Config{Namespace: "ns", Name: "s", IngressClassName: "nginx"}}}
	presentReady(t, ctx, s, chals)
	svc, err := client.CoreV1().Services("ns").Get(ctx, "s", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if refs := svc.OwnerReferences; len(refs) != 1 || refs[0].BlockOwnerDeletion == nil || !*refs[0].BlockOwnerDeletion {
		t.Fatalf("service owner references %+v, want the pod blocking its deletion", refs)
	}
	if err := s.CleanUp(ctx); err != nil {
		t.Fatalf("CleanUp: %v", err)
	}
	d := deletes(client)
	if len(d) != 1 {
		t.Fatalf("deletes %v, want only the pod's", d)
	}
	if p := d["pods"].PropagationPolicy; p == nil || *p != metav1.DeletePropagationForeground {
		t.Errorf("pod deleted with propagation %v, want Foreground", p)
	}
}

// Without it, or when the collector's end is not seen, each object is
// deleted directly.
func TestCleanUpDeletesDirectlyWithoutTheCollector(t *testing.T) {
	chals := []acme.Challenge{{Identifier: "a.example.com", Token: "tok", KeyAuthorization: "tok.thumb"}}
	for _, block := range []bool{false, true} {
		client := withUIDs(fake.NewClientset())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		s := &Ingress{Workload: Workload{Client: client, Config: Config{Namespace: "ns", Name: "s", IngressClassName: "nginx"}}}
		s.ownerBlockRefused = !block
		presentReady(t, ctx, s, chals)
		if block {
			// The pod is gone before the foreground delete: its
			// dependents may not be.
			if err := client.CoreV1().Pods("ns").Delete(ctx, "s", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.CleanUp(ctx); err != nil {
			t.Fatalf("CleanUp: %v", err)
		}
		svcs, _ := client.CoreV1().Services("ns").List(ctx, metav1.ListOptions{})
		ings, _ := client.NetworkingV1().Ingresses("ns").List(ctx, metav1.ListOptions{})
		if n := len(svcs.Items) + len(ings.Items); n != 0 {
			t.Errorf("block %v: %d objects left", block, n)
		}
		cancel()
	}
}

// Where the API server refuses blockOwnerDeletion, the dry run is sent
// again without it, and cleanUp will delete each object.
func TestDryRunWithoutBlockOwnerDeletion(t *testing.T) {
	chals := []acme.Challenge{{Identifier: "a.example.com", Token: "tok", KeyAuthorization: "tok.thumb"}}
	client := fake.NewClientset()
	refused := 0
	// The fake ignores dryRun: answer the pod and Ingress without storing.
	for _, r := range []string{"pods", "ingresses"} {
		client.PrependReactor("create", r, func(a k8stesting.Action) (bool, runtime.Object, error) {
			return true, a.(k8stesting.CreateAction).GetObject(), nil
		})
	}
	client.PrependReactor("create", "services", func(a k8stesting.Action) (bool, runtime.Object, error) {
		svc := a.(k8stesting.CreateAction).GetObject().(*corev1.Service)
		if r := svc.OwnerReferences; len(r) == 1 && r[0].BlockOwnerDeletion != nil && *r[0].BlockOwnerDeletion {
			refused++
			// The message of plugin/pkg/admission/gc/gc_admission.go.
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "services"}, svc.Name,
				errors.New(`cannot set blockOwnerDeletion if an ownerReference refers to a resource you can't set finalizers on: , <nil>`))
		}
		return true, svc, nil
	})
	s := &Ingress{Workload: Workload{Client: client, Config: Config{Namespace: "ns", Name: "s", IngressClassName: "nginx"}}}
	if err := s.DryRun(context.Background(), chals); err != nil {
		t.Fatalf("DryRun: %v", err)
	}
	if refused != 1 || !s.ownerBlockRefused {
		t.Errorf("refused %d times, ownerBlockRefused %v; want 1, true", refused, s.ownerBlockRefused)
	}
}

// A shared workload learns the refusal from its Service's create, and
// then deletes each object itself.
func TestStartWithoutBlockOwnerDeletion(t *testing.T) {
	chals := []acme.Challenge{{Identifier: "a.example.com", Token: "tok", KeyAuthorization: "tok.thumb"}}
	client := withUIDs(fake.NewClientset())
	client.PrependReactor("create", "services", func(a k8stesting.Action) (bool, runtime.Object, error) {
		svc := a.(k8stesting.CreateAction).GetObject().(*corev1.Service)
		if r := svc.OwnerReferences; len(r) == 1 && r[0].BlockOwnerDeletion != nil {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "services"}, svc.Name,
				errors.New(`cannot set blockOwnerDeletion if an ownerReference refers to a resource you can't set finalizers on: , <nil>`))
		}
		return false, nil, nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := &Ingress{Workload: Workload{Client: client, Config: Config{Namespace: "ns", Name: "s", IngressClassName: "nginx"}}}
	presentReady(t, ctx, s, chals)
	ing, err := client.NetworkingV1().Ingresses("ns").Get(ctx, "s", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r := ing.OwnerReferences; len(r) != 1 || r[0].BlockOwnerDeletion != nil {
		t.Errorf("ingress owner references %+v, want the pod without blockOwnerDeletion", r)
	}
	if err := s.CleanUp(ctx); err != nil {
		t.Fatalf("CleanUp: %v", err)
	}
	if d := deletes(client); len(d) != 3 {
		t.Errorf("deletes %v, want the pod, Service and Ingress each", d)
	}
}
