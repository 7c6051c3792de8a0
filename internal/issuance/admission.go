package issuance

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/kubectl-acme/kubectl-acme/acme"
	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/solver"
)

// A run of several certificates has the cluster's admission chain judge
// each shared workload once, not each certificate's objects: before any
// order, the run works out from its jobs which certificates will share a
// workload (the gatherer's key: namespace and solver configuration), and
// the first of them to reach its dry run sends, with dryRun=All, the pod,
// Service and Ingress (or HTTPRoutes) that workload will be, built by the
// code Start builds it with, with placeholder tokens for every name of
// every certificate in it. When they are admitted, no certificate of the
// group sends its own; when any is refused, each sends its own, so that a
// denial names the certificate whose host or path caused it and the
// others are issued.
//
// Only what was judged is skipped: a certificate whose names or solver
// configuration differ from the prediction (its Prepare changed it), or
// whose issuer is read later (renew), is judged on its own.

// runAdmission is a run's dry runs of its shared workloads.
type runAdmission struct {
	g *gatherer
	// groups by member: configKey, NUL, certificate name.
	groups map[string]*admissionGroup

	mu    sync.Mutex
	ended map[string]bool // namespace/name of the certificates whose job ended
}

// admissionGroup is one workload's dry run.
type admissionGroup struct {
	a       *runAdmission
	proto   solver.Shared
	members []admissionMember

	once sync.Once
	done chan struct{}
	// Set before done is closed:
	err    error
	opened bool         // the dry run decided a NetworkPolicy must admit the solver's traffic
	events []acme.Event // what it reported: replayed to each member
	certs  []string     // the certificates it judged
}

type admissionMember struct {
	ns    string
	cert  string
	ids   string // the names the certificate's solver serves, sorted
	chals []acme.Challenge
}

// predictAdmission groups the jobs' certificates as the gatherer will
// (see configKey), from the solvers their issuers give them. Jobs whose
// issuer is not known yet, or that will fail before their dry run, are
// left out.
func (g *gatherer) predictAdmission(o Options, jobs []*Job) {
	a := &runAdmission{g: g, groups: map[string]*admissionGroup{}, ended: map[string]bool{}}
	type pending struct {
		proto   solver.Shared
		members []admissionMember
	}
	byKey := map[string]*pending{}
	var keys []string
	o.group = nil
	for _, j := range jobs {
		iss, cert := j.Issuer, j.Cert
		if iss == nil || iss.Spec.ACME == nil || certmanager.ValidateCertificateSpec(&cert.Spec) != nil {
			continue
		}
		m, err := buildSolvers(&o, iss, cert)
		if err != nil {
			continue
		}
		dns, ips := cert.Spec.Identifiers()
		bySolver := map[acme.Solver][]acme.Challenge{}
		var order []acme.Solver
		for _, ch := range solver.PlaceholderChallenges(dns, ips) {
			sv := m.solverOf(ch.Identifier)
			if sv == nil {
				continue
			}
			if _, ok := bySolver[sv]; !ok {
				order = append(order, sv)
			}
			bySolver[sv] = append(bySolver[sv], ch)
		}
		for _, sv := range order {
			sh, ok := sv.(solver.Shared)
			if !ok {
				continue
			}
			key := configKey(sh)
			p := byKey[key]
			if p == nil {
				p = &pending{proto: sh}
				byKey[key] = p
				keys = append(keys, key)
			}
			p.members = append(p.members, admissionMember{ns: cert.Namespace, cert: cert.Name, ids: identifiers(bySolver[sv]), chals: bySolver[sv]})
		}
	}
	for _, key := range keys {
		p := byKey[key]
		if len(p.members) < 2 {
			// One certificate's dry run is its own.
			continue
		}
		// A pod whose annotations and command line would pass their
		// limits is split, as the gatherer splits the workload (submit).
		var grp *admissionGroup
		bytes := 0
		for _, mb := range p.members {
			add := challengeBytes(mb.chals) + len(mb.cert) + 1
			if grp != nil && bytes+add > g.maxBytes {
				grp = nil
			}
			if grp == nil {
				cfg := p.proto.Configuration()
				cfg.Certificates = []string{"x"}
				grp = &admissionGroup{a: a, proto: p.proto, done: make(chan struct{})}
				bytes = cfg.PodBytes(nil) + len(solver.AnnotationCertificates)
			}
			grp.members = append(grp.members, mb)
			bytes += add
			a.groups[key+"\x00"+mb.cert] = grp
		}
	}
	g.admission = a
}

// identifiers are the names chals are for, sorted, as one string.
func identifiers(chals []acme.Challenge) string {
	ids := make([]string, len(chals))
	for i, ch := range chals {
		ids[i] = strings.ToLower(ch.Identifier)
		if ch.IsIP {
			ids[i] = "ip:" + ids[i]
		}
	}
	slices.Sort(ids)
	return strings.Join(ids, ",")
}

// jobEnded: cert's job ended; a group dry run not yet sent leaves it out.
func (a *runAdmission) jobEnded(cert *certmanager.Certificate) {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ended[cert.Namespace+"/"+cert.Name] = true
}

// admitted reports whether the dry run of the shared workload that will
// serve cert's chals through sv admitted it, sending that dry run if no
// member has yet. On true, what it reported goes to observe, and a
// NetworkPolicy it decided on to sv. False: cert's objects must be
// judged on their own.
func (a *runAdmission) admitted(ctx context.Context, sv acme.Solver, cert string, chals []acme.Challenge, observe acme.Observer) bool {
	if a == nil {
		return false
	}
	sh, ok := sv.(solver.Shared)
	if !ok {
		return false
	}
	grp := a.groups[configKey(sh)+"\x00"+cert]
	if grp == nil || !grp.has(cert, identifiers(chals)) {
		return false
	}
	grp.once.Do(func() { go grp.run() })
	select {
	case <-grp.done:
	case <-ctx.Done():
		return false
	}
	if grp.err != nil || !slices.Contains(grp.certs, cert) {
		return false
	}
	if observe != nil {
		for _, e := range grp.events {
			observe(e)
		}
	}
	if grp.opened {
		sh.OpenTraffic()
	}
	return true
}

func (grp *admissionGroup) has(cert, ids string) bool {
	for _, mb := range grp.members {
		if mb.cert == cert {
			return mb.ids == ids
		}
	}
	return false
}

// run sends the group's dry run, within the run's context: its members
// wait for it within their own.
func (grp *admissionGroup) run() {
	defer close(grp.done)
	a := grp.a
	a.mu.Lock()
	var chals []acme.Challenge
	for _, mb := range grp.members {
		if a.ended[mb.ns+"/"+mb.cert] {
			continue
		}
		grp.certs = append(grp.certs, mb.cert)
		chals = append(chals, mb.chals...)
	}
	a.mu.Unlock()
	var mu sync.Mutex
	sv := a.g.newShared(grp.proto, a.g.sharedConfig(grp.proto, grp.certs), func(e acme.Event) {
		mu.Lock()
		defer mu.Unlock()
		grp.events = append(grp.events, e)
	})
	grp.err = sv.DryRun(a.g.ctx, chals)
	grp.opened = sv.TrafficOpened()
}
