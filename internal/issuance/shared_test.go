package issuance

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubectl-acme/kubectl-acme/acme"
	"github.com/kubectl-acme/kubectl-acme/solver"
)

// fakeShared records what a batch's workload was started with and
// cleaned up, in place of the pod, Service and Ingress.
type fakeShared struct {
	*solver.Ingress
	rec *started
}

type started struct {
	mu      sync.Mutex
	configs []solver.Config
	chals   [][]acme.Challenge
	cleaned []string
	opened  []bool
}

func (f *fakeShared) Start(ctx context.Context, chals []acme.Challenge) error {
	f.rec.mu.Lock()
	defer f.rec.mu.Unlock()
	f.rec.configs = append(f.rec.configs, f.Config)
	f.rec.chals = append(f.rec.chals, chals)
	f.rec.opened = append(f.rec.opened, f.TrafficOpened())
	return nil
}

func (f *fakeShared) Check(context.Context, []acme.Challenge, *solver.SelfCheck, acme.Observer) error {
	return nil
}

func (f *fakeShared) CleanUp(context.Context) error {
	f.rec.mu.Lock()
	defer f.rec.mu.Unlock()
	f.rec.cleaned = append(f.rec.cleaned, f.Config.Name)
	return nil
}

func testGatherer(jobs int) (*gatherer, *started) {
	rec := &started{}
	g := newGatherer(context.Background(), jobs)
	g.linger = time.Hour
	g.newShared = func(_ solver.Shared, cfg solver.Config, obs acme.Observer) solver.Shared {
		return &fakeShared{Ingress: &solver.Ingress{Workload: solver.Workload{Config: cfg, Observe: obs}}, rec: rec}
	}
	return g, rec
}

func proto(ns, class string) solver.Shared {
	return &fakeShared{Ingress: &solver.Ingress{Workload: solver.Workload{Config: solver.Config{
		Namespace: ns, IngressClassName: class, Name: solverName("x"), Certificate: "x",
	}}}}
}

func chal(id string) acme.Challenge {
	tok := strings.Repeat("t", 43)
	return acme.Challenge{Identifier: id, Token: tok, KeyAuthorization: tok + "." + strings.Repeat("k", 43)}
}

func member(g *gatherer) *jobGroup {
	return &jobGroup{g: g, slot: &slot{sem: make(chan struct{}, 10)}}
}

func waitAll(t *testing.T, bs ...*batch) {
	t.Helper()
	for _, b := range bs {
		select {
		case <-b.ready:
		case <-time.After(5 * time.Second):
			t.Fatal("batch did not start")
		}
	}
}

// One namespace, one configuration: every order's challenges in one
// workload, started once the last order handed in, named for the run and
// listing its certificates; deleted when the last order leaves.
func TestGatherOneWorkload(t *testing.T) {
	g, rec := testGatherer(3)
	var jobs []*jobGroup
	var batches []*batch
	for i := range 3 {
		j := member(g)
		jobs = append(jobs, j)
		b := j.submit(fmt.Sprintf("c%d", i), []handIn{{proto: proto("ns", "nginx"), chals: []acme.Challenge{chal(fmt.Sprintf("c%d.example", i))}}})
		batches = append(batches, b...)
		if i < 2 {
			select {
			case <-b[0].ready:
				t.Fatalf("started after %d of 3 orders", i+1)
			default:
			}
		}
	}
	if batches[0] != batches[1] || batches[1] != batches[2] {
		t.Fatal("the orders got different workloads")
	}
	waitAll(t, batches[0])
	if len(rec.configs) != 1 || len(rec.chals[0]) != 3 {
		t.Fatalf("started %d workloads, first with %d challenges", len(rec.configs), len(rec.chals[0]))
	}
	cfg := rec.configs[0]
	if cfg.Certificate != "" || !slices.Equal(cfg.Certificates, []string{"c0", "c1", "c2"}) || cfg.Run != g.run || !strings.HasPrefix(cfg.Name, "acme-solver-run-"+g.run) {
		t.Errorf("shared config %+v", cfg)
	}
	for i, j := range jobs {
		if err := j.leave(context.Background()); err != nil {
			t.Fatal(err)
		}
		if want := i == 2; (len(rec.cleaned) == 1) != want {
			t.Fatalf("after %d of 3 left: cleaned %v", i+1, rec.cleaned)
		}
	}
}

// Objects that must differ are not shared: another namespace or class is
// another workload; a lone order's workload is named for its certificate.
func TestGatherByConfiguration(t *testing.T) {
	g, rec := testGatherer(4)
	var bs []*batch
	bs = append(bs, member(g).submit("a", []handIn{{proto: proto("ns", "nginx"), chals: []acme.Challenge{chal("a.example")}}})...)
	bs = append(bs, member(g).submit("b", []handIn{{proto: proto("ns", "traefik"), chals: []acme.Challenge{chal("b.example")}}})...)
	bs = append(bs, member(g).submit("c", []handIn{{proto: proto("other", "nginx"), chals: []acme.Challenge{chal("c.example")}}})...)
	bs = append(bs, member(g).submit("d", []handIn{{proto: proto("ns", "nginx"), chals: []acme.Challenge{chal("d.example")}}})...)
	waitAll(t, bs...)
	if len(rec.configs) != 3 {
		t.Fatalf("%d workloads, want 3", len(rec.configs))
	}
	for _, c := range rec.configs {
		if c.IngressClassName == "traefik" && (c.Certificate != "b" || !strings.HasPrefix(c.Name, "acme-solver-b-")) {
			t.Errorf("lone order's workload %+v", c)
		}
	}
}

// An order that ends before handing in (failed, skipped, or with every
// authorization valid) does not hold the others.
func TestGatherFailedOrderDoesNotHold(t *testing.T) {
	g, rec := testGatherer(3)
	b := member(g).submit("a", []handIn{{proto: proto("ns", "nginx"), chals: []acme.Challenge{chal("a.example")}}})
	member(g).doneOrdering() // its newOrder failed
	failed := member(g)
	failed.doneOrdering()
	failed.doneOrdering() // twice counts once
	waitAll(t, b...)
	if len(rec.configs) != 1 || g.ordering != 0 {
		t.Fatalf("%d workloads, %d ordering", len(rec.configs), g.ordering)
	}
}

// An order still being placed linger after the last hand-in does not hold
// the others: they start, and it gets a workload of its own.
func TestGatherStraggler(t *testing.T) {
	g, rec := testGatherer(3)
	g.linger = 20 * time.Millisecond
	b1 := member(g).submit("a", []handIn{{proto: proto("ns", "nginx"), chals: []acme.Challenge{chal("a.example")}}})
	b2 := member(g).submit("b", []handIn{{proto: proto("ns", "nginx"), chals: []acme.Challenge{chal("b.example")}}})
	waitAll(t, b1[0], b2[0])
	b3 := member(g).submit("c", []handIn{{proto: proto("ns", "nginx"), chals: []acme.Challenge{chal("c.example")}}})
	waitAll(t, b3...)
	if b3[0] == b1[0] || len(rec.configs) != 2 || len(rec.chals[0]) != 2 || len(rec.chals[1]) != 1 {
		t.Fatalf("workloads %d: %v", len(rec.configs), rec.chals)
	}
}

// The pod's annotations and command line stay under the limit: past it, the challenges
// are split into several workloads.
func TestGatherSplitsAtPodLimit(t *testing.T) {
	const n = 10
	g, rec := testGatherer(n)
	cfg := proto("ns", "nginx").Configuration()
	cfg.Certificates = []string{"x"}
	base := cfg.PodBytes(nil) + len(solver.AnnotationCertificates)
	per := challengeBytes([]acme.Challenge{chal("c0.example")}) + len("c0") + 1
	g.maxBytes = base + 3*per // three orders a pod
	var bs []*batch
	for i := range n {
		bs = append(bs, member(g).submit(fmt.Sprintf("c%d", i), []handIn{{proto: proto("ns", "nginx"), chals: []acme.Challenge{chal(fmt.Sprintf("c%d.example", i))}}})...)
	}
	waitAll(t, bs...)
	if len(rec.configs) != 4 {
		t.Fatalf("%d workloads, want 4 (3+3+3+1)", len(rec.configs))
	}
	total := 0
	for i, chals := range rec.chals {
		total += len(chals)
		c := rec.configs[i]
		if got := c.PodBytes(chals); got > g.maxBytes {
			t.Errorf("workload %d: %d bytes, limit %d", i, got, g.maxBytes)
		}
	}
	if total != n {
		t.Errorf("%d challenges served, want %d", total, n)
	}
}

// The real limit: a pod for as many orders as fit passes the API
// server's count, and the bound challengeBytes keeps is never below it.
func TestChallengeBytesBound(t *testing.T) {
	cfg := proto("ns", "nginx").Configuration()
	var chals []acme.Challenge
	var certs []string
	for i := range 1500 {
		chals = append(chals, chal(fmt.Sprintf("c%d.example", i)))
		certs = append(certs, fmt.Sprintf("c%d", i))
	}
	cfg.Certificates = certs
	counted := 0
	for _, c := range certs {
		counted += len(c) + 1
	}
	one := cfg
	one.Certificates = []string{"x"}
	bound := one.PodBytes(nil) + len(solver.AnnotationCertificates) + challengeBytes(chals) + counted
	if real := cfg.PodBytes(chals); real > bound {
		t.Fatalf("pod %d bytes, bound %d", real, bound)
	}
}

// An order leaving before its workload started takes its challenges out;
// when it was the only one, nothing is created.
func TestGatherLeaveBeforeStart(t *testing.T) {
	g, rec := testGatherer(2)
	j := member(g)
	b := j.submit("a", []handIn{{proto: proto("ns", "nginx"), chals: []acme.Challenge{chal("a.example")}}})
	if err := j.leave(context.Background()); err != nil {
		t.Fatal(err)
	}
	b2 := member(g).submit("b", []handIn{{proto: proto("ns", "nginx"), chals: []acme.Challenge{chal("b.example")}}})
	waitAll(t, b2...)
	if b[0] == b2[0] || len(rec.configs) != 1 || len(rec.chals[0]) != 1 || rec.chals[0][0].Identifier != "b.example" {
		t.Fatalf("workloads %v", rec.chals)
	}
}

// A NetworkPolicy one order's dry run found needed is created for the
// shared workload.
func TestGatherOpensTraffic(t *testing.T) {
	g, rec := testGatherer(2)
	bs := member(g).submit("a", []handIn{{proto: proto("ns", "nginx"), chals: []acme.Challenge{chal("a.example")}}})
	bs = append(bs, member(g).submit("b", []handIn{{proto: proto("ns", "nginx"), chals: []acme.Challenge{chal("b.example")}, open: true}})...)
	waitAll(t, bs...)
	if len(rec.opened) != 1 || !rec.opened[0] {
		t.Fatalf("opened %v", rec.opened)
	}
}
