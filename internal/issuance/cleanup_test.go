package issuance

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-acme/kubectl-acme/solver"
)

func TestPlanCleanup(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	obj := func(ns, kind, cert string, age time.Duration) solver.Leftover {
		return solver.Leftover{Kind: kind, Namespace: ns, Name: "acme-solver-" + cert, Solver: "acme-solver-" + cert, Certificate: cert, Created: now.Add(-age)}
	}
	all := []solver.Leftover{
		obj("a", solver.KindPod, "old", 2*time.Hour),
		obj("a", solver.KindService, "old", 2*time.Hour),
		obj("a", solver.KindPod, "fresh", time.Minute),
		obj("b", solver.KindPod, "busy", 3*time.Hour),
		obj("c", solver.KindPod, "busy", 3*time.Hour), // same name, another namespace: not busy
	}
	busy := map[string]*LeaseInfo{"b/busy": {Holder: "alice@laptop pid 7", Expires: now.Add(20 * time.Second)}}

	p := PlanCleanup(all, time.Hour, now, busy)
	var deleted []string
	for _, l := range p.Delete {
		deleted = append(deleted, l.Namespace+"/"+l.Kind+"/"+l.Certificate)
	}
	if got, want := strings.Join(deleted, " "), "a/pod/old a/service/old c/pod/busy"; got != want {
		t.Errorf("delete %q, want %q", got, want)
	}
	if len(p.Skip) != 1 || p.Skip[0].Namespace != "b" || !strings.Contains(p.Skip[0].Reason, "alice@laptop pid 7") {
		t.Errorf("skip %+v", p.Skip)
	}

	if p := PlanCleanup(all, 0, now, nil); len(p.Delete) != len(all) {
		t.Errorf("--older-than 0s deletes %d of %d", len(p.Delete), len(all))
	}

	// A pod shared by a run's orders stays while any of its
	// certificates is being issued.
	shared := solver.Leftover{Kind: solver.KindPod, Namespace: "b", Name: "acme-solver-run-1-x", Solver: "acme-solver-run-1-x",
		Certificate: "a,busy,c", Certificates: []string{"a", "busy", "c"}, Created: now.Add(-2 * time.Hour)}
	if p := PlanCleanup([]solver.Leftover{shared}, time.Hour, now, busy); len(p.Delete) != 0 || len(p.Skip) != 1 || !strings.Contains(p.Skip[0].Reason, "certificate busy") {
		t.Errorf("shared pod of a busy certificate: %+v", p)
	}
	if p := PlanCleanup([]solver.Leftover{shared}, time.Hour, now, nil); len(p.Delete) != 1 {
		t.Errorf("shared pod of idle certificates: %+v", p)
	}
}

// FindCleanup reads the leftovers and leases from the cluster: the pod of
// a certificate whose lease is held is skipped, a killed run's pod and its
// expired Lease are planned for deletion, and a fresh pod is left alone.
func TestFindCleanup(t *testing.T) {
	ctx := t.Context()
	now := time.Now()
	pod := func(ns, cert string, age time.Duration) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
			Name: "acme-solver-" + cert + "-abc", Namespace: ns,
			Labels: map[string]string{
				solver.LabelManagedBy: solver.ManagedByValue, solver.LabelComponent: "http01-solver",
				solver.LabelSolver: "acme-solver-" + cert + "-abc", solver.LabelCertificate: cert,
			},
			Annotations: map[string]string{solver.AnnotationCreated: now.Add(-age).UTC().Format(time.RFC3339)},
		}}
	}
	c := fake.NewClientset(pod("ns", "busy", 2*time.Hour), pod("ns", "killed", 2*time.Hour), pod("ns", "fresh", time.Minute))
	held, _, _, err := acquireLease(ctx, c, "ns", "busy", "alice@laptop pid 1", "", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer held.stop()
	dead, _, _, err := acquireLease(ctx, c, "ns", "killed", "bob@laptop pid 2", "", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	dead.stop() // killed two hours ago: nobody renews or releases it
	<-dead.done
	l, err := c.CoordinationV1().Leases("ns").Get(ctx, LeaseName("killed"), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l.Spec.RenewTime = &metav1.MicroTime{Time: now.Add(-2 * time.Hour)}
	if _, err := c.CoordinationV1().Leases("ns").Update(ctx, l, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	p, err := FindCleanup(ctx, c, nil, "ns", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Delete) != 1 || p.Delete[0].Certificate != "killed" {
		t.Errorf("delete %+v, want the killed run's pod", p.Delete)
	}
	if len(p.Skip) != 1 || p.Skip[0].Certificate != "busy" || !strings.Contains(p.Skip[0].Reason, "alice@laptop pid 1") {
		t.Errorf("skip %+v, want the busy certificate's pod", p.Skip)
	}
	if len(p.Leases) != 1 || p.Leases[0].Certificate != "killed" || p.Leases[0].Holder != "bob@laptop pid 2" {
		t.Errorf("expired leases %+v, want the killed run's", p.Leases)
	}
}
