package issuance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/kubectl-acme/kubectl-acme/acme"
	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/solver"
)

// A run of several certificates (apply, renew --all, issue --ingress)
// solves all its orders' challenges with as few solver workloads as it
// can: each order is placed first, its challenges handed to the gatherer,
// and once no order of the run is still being placed, one Pod and Service
// (and one Ingress, or the fewest HTTPRoutes) per distinct solver
// configuration in a namespace serve every token. Each order then
// self-checks and validates its own challenges as soon as the pod is
// ready, and the objects go when the last order using them ends.
//
// A straggler (an order still being placed defaultLinger after the last
// challenges arrived: a CA retrying, a lease wait) does not hold the
// others: what was gathered starts, and later challenges start another
// workload. So does a pod whose annotations and command line would pass
// their limits (solver.MaxPodBytes).

// defaultLinger is how long gathered challenges wait for orders still
// being placed: placing one takes a few hundred milliseconds here (a
// Lease, a Secret read, the dry run, newOrder, its authorizations).
const defaultLinger = 2 * time.Second

// gatherer collects the challenges of a run's orders into batches, one
// per solver configuration, and starts each batch's workload.
type gatherer struct {
	run      string
	linger   time.Duration
	maxBytes int
	// ctx is the run's: a batch's start ends with it, or when its last
	// order leaves.
	ctx context.Context

	mu sync.Mutex
	// ordering counts the run's jobs that may still hand in challenges.
	ordering int
	open     map[string]*batch // by solver configuration
	timer    *time.Timer
	// newShared builds a batch's solver (tests replace it).
	newShared func(proto solver.Shared, cfg solver.Config, observe acme.Observer) solver.Shared
	// admission is the run's dry runs of its workloads; nil: each order
	// has its own.
	admission *runAdmission
	// leases are the run's certificate Leases, deleted at its end.
	leases *runLeases
}

func newGatherer(ctx context.Context, jobs int) *gatherer {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	run := hex.EncodeToString(b)
	return &gatherer{
		run: run, linger: defaultLinger, maxBytes: solver.MaxPodBytes,
		ctx: ctx, ordering: jobs, open: map[string]*batch{}, newShared: newShared,
		leases: newRunLeases(run),
	}
}

// batch is one workload: the challenges of the orders that share it.
type batch struct {
	key   string
	proto solver.Shared // the first order's solver: the configuration
	parts []*part
	bytes int // the pod's annotation bytes, as far as counted

	// Set when it starts:
	sv      solver.Shared
	flushed bool
	members int // parts whose order has not left
	// started is closed when the batch stops gathering, ready when its
	// workload is up (or failed to start).
	started, ready chan struct{}
	err            error // Start's; read after ready is closed
	cancel         context.CancelFunc
}

// part is one order's challenges in a batch.
type part struct {
	job     *jobGroup
	cert    string
	chals   []acme.Challenge
	observe acme.Observer
	open    bool
	left    bool
}

// jobGroup is one job's membership of the run's gatherer, and its turn
// at the CA: a job holds one of --concurrency slots while it talks to the
// CA, and gives it up while it waits for the shared workload.
type jobGroup struct {
	g     *gatherer
	slot  *slot
	clock *turnClock // nil in tests

	// guarded by g.mu
	handedIn bool
	joined   []*batch
}

// slot is a job's place among the --concurrency jobs talking to the CA.
type slot struct {
	sem  chan struct{}
	mu   sync.Mutex
	held bool
}

func (s *slot) acquire(ctx context.Context) error {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("waiting for a turn at the CA (--concurrency): %w", ctx.Err())
	}
	s.mu.Lock()
	s.held = true
	s.mu.Unlock()
	return nil
}

func (s *slot) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held {
		<-s.sem
		s.held = false
	}
}

// handIn is one order's challenges for one solver configuration.
type handIn struct {
	proto   solver.Shared
	chals   []acme.Challenge
	observe acme.Observer
	// open: the order's dry run found a NetworkPolicy must admit the
	// solver's traffic.
	open bool
}

// configKey tells solver configurations apart: objects that must differ
// (kind, namespace, class, templates, service type, edited Ingress,
// parentRefs, ...) are not shared. The solver's and certificate's names
// are the only fields left out.
func configKey(sv solver.Shared) string {
	cfg := sv.Configuration()
	cfg.Name, cfg.Certificate, cfg.Certificates, cfg.Run = "", "", nil, ""
	b, _ := json.Marshal(cfg)
	return reflect.TypeOf(sv).String() + " " + string(b)
}

// newShared is a solver like proto, for cfg, reporting to observe.
func newShared(proto solver.Shared, cfg solver.Config, observe acme.Observer) solver.Shared {
	switch p := proto.(type) {
	case *solver.Ingress:
		return &solver.Ingress{Workload: solver.Workload{Client: p.Client, Dynamic: p.Dynamic, Config: cfg, Observe: observe, Policies: p.Policies}, Classes: p.Classes}
	case *solver.HTTPRoute:
		return &solver.HTTPRoute{Workload: solver.Workload{Client: p.Client, Dynamic: p.Dynamic, Config: cfg, Observe: observe, Policies: p.Policies}}
	}
	panic(fmt.Sprintf("unknown shared solver %T", proto))
}

// challengeBytes is what chals add to the pod (solver.ChallengeBytes).
func challengeBytes(chals []acme.Challenge) int {
	n := 0
	for _, ch := range chals {
		n += solver.ChallengeBytes(ch)
	}
	return n
}

// submit hands in one job's challenges and returns, for each hand-in,
// the batch that will serve it. The job no longer counts as ordering.
func (j *jobGroup) submit(cert string, ins []handIn) []*batch {
	g := j.g
	g.mu.Lock()
	defer g.mu.Unlock()
	j.doneOrderingLocked()
	out := make([]*batch, len(ins))
	for i, in := range ins {
		key := configKey(in.proto)
		b := g.open[key]
		add := challengeBytes(in.chals) + len(cert) + 1
		if b != nil && b.bytes+add > g.maxBytes {
			// Full: it starts now, and these challenges begin the next.
			g.flushLocked(b)
			b = nil
		}
		if b == nil {
			cfg := in.proto.Configuration()
			cfg.Certificates = []string{"x"}
			b = &batch{key: key, proto: in.proto, started: make(chan struct{}), ready: make(chan struct{}), bytes: cfg.PodBytes(nil) + len(solver.AnnotationCertificates)}
			g.open[key] = b
		}
		b.parts = append(b.parts, &part{job: j, cert: cert, chals: in.chals, observe: in.observe, open: in.open})
		b.members++
		b.bytes += add
		j.joined = append(j.joined, b)
		out[i] = b
	}
	g.flushIfIdleLocked()
	return out
}

// doneOrdering: the job will hand in nothing (it ended, or its order
// needs no challenge).
func (j *jobGroup) doneOrdering() {
	j.g.mu.Lock()
	defer j.g.mu.Unlock()
	j.doneOrderingLocked()
	j.g.flushIfIdleLocked()
}

func (j *jobGroup) doneOrderingLocked() {
	if !j.handedIn {
		j.handedIn = true
		j.g.ordering--
	}
}

// flushIfIdleLocked starts every open batch once no job is still placing
// its order, else starts them defaultLinger after the last hand-in.
func (g *gatherer) flushIfIdleLocked() {
	if g.timer != nil {
		g.timer.Stop()
		g.timer = nil
	}
	if len(g.open) == 0 {
		return
	}
	if g.ordering <= 0 {
		g.flushAllLocked()
		return
	}
	g.timer = time.AfterFunc(g.linger, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.timer = nil
		g.flushAllLocked()
	})
}

func (g *gatherer) flushAllLocked() {
	for _, k := range slices.Sorted(maps.Keys(g.open)) {
		g.flushLocked(g.open[k])
	}
}

// flushLocked starts b's workload for the challenges of the orders still
// in it.
func (g *gatherer) flushLocked(b *batch) {
	if g.open[b.key] == b {
		delete(g.open, b.key)
	}
	b.flushed = true
	close(b.started)
	var chals []acme.Challenge
	var certs []string
	var observers []acme.Observer
	for _, p := range b.parts {
		if p.left {
			continue
		}
		chals = append(chals, p.chals...)
		if !slices.Contains(certs, p.cert) {
			certs = append(certs, p.cert)
		}
		if p.observe != nil {
			observers = append(observers, p.observe)
		}
	}
	if b.members == 0 {
		// Every order left before it started: nothing to create.
		close(b.ready)
		return
	}
	cfg := g.sharedConfig(b.proto, certs)
	// The workload's own steps are each order's: every one waits on it.
	b.sv = g.newShared(b.proto, cfg, func(e acme.Event) {
		for _, o := range observers {
			o(e)
		}
	})
	for _, p := range b.parts {
		if !p.left && p.open {
			b.sv.OpenTraffic()
		}
	}
	ctx, cancel := context.WithCancel(g.ctx)
	b.cancel = cancel
	go func() {
		b.err = b.sv.Start(ctx, chals)
		close(b.ready)
	}()
}

// sharedConfig is how the workload serving the orders of certs is
// built: proto's configuration, named for the run when it serves more
// than one certificate. The run's dry runs (admission.go) judge objects
// built from it too.
func (g *gatherer) sharedConfig(proto solver.Shared, certs []string) solver.Config {
	cfg := proto.Configuration()
	certs = slices.Sorted(slices.Values(certs))
	if len(certs) == 1 {
		cfg.Name, cfg.Certificate = solverName(certs[0]), certs[0]
	} else {
		cfg.Name, cfg.Certificate, cfg.Certificates = solverName("run-"+g.run), "", certs
	}
	cfg.Run = g.run
	return cfg
}

// wait waits for b's workload, then self-checks chals with chk.
func (b *batch) wait(ctx context.Context, chals []acme.Challenge, chk *solver.SelfCheck, observe acme.Observer) error {
	select {
	case <-b.ready:
	case <-ctx.Done():
		return fmt.Errorf("waiting for the solver pod: %w", ctx.Err())
	}
	if b.err != nil {
		return b.err
	}
	if b.sv == nil {
		return errors.New("the shared solver did not start")
	}
	return b.sv.Check(ctx, chals, chk, observe)
}

// leave takes the job out of every batch it joined; the last order out of
// a started batch deletes its objects, with ctx.
func (j *jobGroup) leave(ctx context.Context) error {
	g := j.g
	g.mu.Lock()
	var last []*batch
	for _, b := range j.joined {
		for _, p := range b.parts {
			if p.job == j && !p.left {
				p.left = true
				b.members--
			}
		}
		if b.members > 0 {
			continue
		}
		if b.flushed {
			last = append(last, b)
		} else if g.open[b.key] == b {
			// Nobody waits for it any more.
			delete(g.open, b.key)
		}
	}
	j.joined = nil
	g.mu.Unlock()
	var errs []error
	for _, b := range last {
		if b.sv == nil {
			continue
		}
		b.cancel()
		<-b.ready
		if err := b.sv.CleanUp(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// memberSolver is a job's Solver in a run that shares workloads: Present
// hands the order's challenges to the gatherer, gives up the job's CA
// slot while the workload starts, self-checks its own challenges and takes
// a slot again for the validation; CleanUp leaves the workload, deleting
// it when this order was the last.
type memberSolver struct {
	j      *jobGroup
	m      *multiSolver
	single acme.Solver // the order's solver when it has one; else m
}

var (
	_ acme.Solver     = (*memberSolver)(nil)
	_ acme.Unneeded   = (*memberSolver)(nil)
	_ solver.Admitter = (*memberSolver)(nil)
)

func (s *memberSolver) solverOf(name string) acme.Solver {
	if s.single != nil {
		return s.single
	}
	if sv := s.m.byName[name]; sv != nil {
		return sv
	}
	return s.m.byName[strings.ToLower(name)]
}

// Present hands in the challenges and waits as described on memberSolver.
func (s *memberSolver) Present(ctx context.Context, chals []acme.Challenge) error {
	var ins []handIn
	idx := map[acme.Solver]int{}
	for _, ch := range chals {
		sv := s.solverOf(ch.Identifier)
		if sv == nil {
			s.j.doneOrdering()
			return &certmanager.NoSolverError{Issuer: s.m.iss.Name, Names: []string{ch.Identifier}}
		}
		i, ok := idx[sv]
		if !ok {
			i = len(ins)
			idx[sv] = i
			ins = append(ins, handIn{proto: sv.(solver.Shared), observe: s.m.o.Observe})
		}
		ins[i].chals = append(ins[i].chals, ch)
	}
	for i := range ins {
		ins[i].open = ins[i].proto.TrafficOpened()
	}
	s.j.slot.release()
	batches := s.j.submit(s.m.cert.Name, ins)
	// Waiting for the run's other orders is not this order's time.
	s.j.pause()
	for _, b := range batches {
		select {
		case <-b.started:
		case <-ctx.Done():
		}
	}
	s.j.resume()
	g, gctx := errgroup.WithContext(ctx)
	for i, b := range batches {
		chk := ins[i].proto.SelfChecker()
		g.Go(func() error { return b.wait(gctx, ins[i].chals, chk, s.m.o.Observe) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	// Nor is the wait for a turn at the CA.
	s.j.pause()
	defer s.j.resume()
	return s.j.slot.acquire(ctx)
}

func (j *jobGroup) pause() {
	if j.clock != nil {
		j.clock.pause()
	}
}

func (j *jobGroup) resume() {
	if j.clock != nil {
		j.clock.resume()
	}
}

// NotNeeded: the order has no challenge, so the run need not wait for it.
func (s *memberSolver) NotNeeded() { s.j.doneOrdering() }

// CleanUp leaves the shared workloads.
func (s *memberSolver) CleanUp(ctx context.Context) error { return s.j.leave(ctx) }

// DryRun judges the order's solver objects: those a dry run of the run's
// shared workload admitted with this certificate's names in them are not
// sent again (admission.go); the others, and all of them when that dry
// run was refused, are judged on their own, as a single order's run does,
// so that a denial names the certificate that caused it.
func (s *memberSolver) DryRun(ctx context.Context, chals []acme.Challenge) error {
	groups := map[acme.Solver][]acme.Challenge{}
	var order []acme.Solver
	for _, ch := range chals {
		sv := s.solverOf(ch.Identifier)
		if sv == nil {
			continue
		}
		if _, ok := groups[sv]; !ok {
			order = append(order, sv)
		}
		groups[sv] = append(groups[sv], ch)
	}
	errs := make([]error, len(order))
	var wg sync.WaitGroup
	for i, sv := range order {
		a, ok := sv.(solver.Admitter)
		if !ok {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s.j.g.admission.admitted(ctx, sv, s.m.cert.Name, groups[sv], s.m.o.Observe) {
				return
			}
			errs[i] = a.DryRun(ctx, groups[sv])
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
