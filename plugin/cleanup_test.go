package plugin

import (
	"strings"
	"testing"
	"time"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-acme/kubectl-acme/internal/issuance"
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
	busy := map[string]*issuance.LeaseInfo{"b/busy": {Holder: "alice@laptop pid 7", Expires: now.Add(20 * time.Second)}}

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
}

func TestCleanupValidate(t *testing.T) {
	o := NewCleanupOptions(genericiooptions.NewTestIOStreamsDiscard())
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	o.OlderThan = -time.Second
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "--older-than") {
		t.Errorf("negative --older-than: %v", err)
	}
}
