package solver

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
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

// cleanUp deletes the pod, Service and Ingress itself, each once, and
// their owner references do not hold up the pod's deletion: nothing waits
// for the garbage collector. The pod's delete names the UID it created.
func TestCleanUpDeletesEachObject(t *testing.T) {
	chals := []acme.Challenge{{Identifier: "a.example.com", Token: "tok", KeyAuthorization: "tok.thumb"}}
	client := withUIDs(fake.NewClientset())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := &Ingress{Workload: Workload{Client: client, Config: Config{Namespace: "ns", Name: "s", IngressClassName: "nginx"}}}
	presentReady(t, ctx, s, chals)
	ing, err := client.NetworkingV1().Ingresses("ns").Get(ctx, "s", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r := ing.OwnerReferences; len(r) != 1 || r[0].Kind != "Pod" || r[0].UID == "" || r[0].BlockOwnerDeletion != nil {
		t.Errorf("ingress owner references %+v, want the pod, not blocking its deletion", r)
	}
	if err := s.CleanUp(ctx); err != nil {
		t.Fatalf("CleanUp: %v", err)
	}
	d := deletes(client)
	if len(d) != 3 {
		t.Errorf("deletes %v, want the pod, Service and Ingress each", d)
	}
	if p := d["pods"].PropagationPolicy; p == nil || *p != metav1.DeletePropagationBackground {
		t.Errorf("pod deleted with propagation %v, want Background", p)
	}
	pod := d["pods"]
	if pre := pod.Preconditions; pre == nil || pre.UID == nil || *pre.UID == "" {
		t.Errorf("pod deleted with preconditions %+v, want the UID of the pod it created", pre)
	}
	if n := solverObjects(ctx, client); n != 0 {
		t.Errorf("%d objects left", n)
	}
}
