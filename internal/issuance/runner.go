package issuance

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/kubectl-acme/kubectl-acme/acme"
	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/solver"
)

// Job is one certificate for a Runner.
type Job struct {
	Cert *certmanager.Certificate
	// Issuer is Cert's issuer when already read; nil: read it.
	Issuer *certmanager.Issuer
	// Replaces is the ARI CertID of the certificate a renewal replaces.
	Replaces string
	// Prepare, when set, runs first, within the job's deadline: it may
	// replace Cert (e.g. with the stored one), set Replaces, or end the job
	// without an order by returning a non-empty skip note.
	Prepare func(ctx context.Context, j *Job) (skip string, err error)
}

// Outcome is how a Job ended: Issued, skipped (Skip says why) or Err.
type Outcome struct {
	Job    *Job
	Issued bool
	Skip   string
	Err    error
}

// Runner issues certificates the one way every command does (issue,
// issue --ingress, apply, renew): at most Concurrency at a time, each
// within its own Timeout (its Prepare, its order, its cleanup's start),
// with one account client per issuer for the whole run.
type Runner struct {
	Options     Options
	Concurrency int
	// Timeout is each certificate's deadline, counted from when its turn
	// comes, not from the start of the run.
	Timeout time.Duration
	// Observe, when set, gives the progress observer of a certificate.
	Observe func(cert *certmanager.Certificate) acme.Observer

	// linger, when set, replaces defaultLinger (tests).
	linger time.Duration
}

// Run runs the jobs and calls report with each outcome, one call at a
// time, as jobs end. It returns how many failed.
//
// Several jobs share their solver workloads (see shared.go): each job
// takes one of Concurrency turns for its order, gives it up while the
// run's orders are gathered and the shared pod starts, and takes one
// again for the CA's validation and finalize.
func (r *Runner) Run(ctx context.Context, jobs []*Job, report func(Outcome)) int {
	opts := r.Options
	if opts.Accounts == nil {
		opts.Accounts = &Accounts{}
	}
	if opts.NetworkPolicies == nil {
		opts.NetworkPolicies = &solver.NetworkPolicies{}
	}
	if len(jobs) > 1 {
		return r.runShared(ctx, opts, jobs, report)
	}
	var mu sync.Mutex
	failed := 0
	var g errgroup.Group
	g.SetLimit(max(r.Concurrency, 1))
	for _, j := range jobs {
		g.Go(func() error {
			out := r.one(ctx, opts, j)
			mu.Lock()
			defer mu.Unlock()
			if out.Err != nil {
				failed++
			}
			report(out)
			return nil
		})
	}
	_ = g.Wait()
	return failed
}

func (r *Runner) runShared(ctx context.Context, opts Options, jobs []*Job, report func(Outcome)) int {
	g := newGatherer(ctx, len(jobs))
	if r.linger > 0 {
		g.linger = r.linger
	}
	g.predictAdmission(opts, jobs)
	sem := make(chan struct{}, max(r.Concurrency, 1))
	var mu sync.Mutex
	failed := 0
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A job's deadline counts from its first turn, as without
			// sharing, and stops while it waits for the run (turnClock);
			// the wait for the turn does not end with ctx, so an
			// interrupted run still reports every job.
			s := &slot{sem: sem}
			s.sem <- struct{}{}
			s.held = true
			clock := newTurnClock(ctx, r.Timeout)
			defer clock.cancel()
			jo := opts
			jo.group = &jobGroup{g: g, slot: s, clock: clock}
			out := r.job(clock, jo, j)
			g.admission.jobEnded(j.Cert)
			// Issue left its workloads; this covers a job that ended
			// before handing in challenges.
			jo.group.doneOrdering()
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
			if err := jo.group.leave(cctx); err != nil {
				out.Err = errors.Join(out.Err, fmt.Errorf("clean up solver: %w", err))
			}
			cancel()
			s.release()
			mu.Lock()
			defer mu.Unlock()
			if out.Err != nil {
				failed++
			}
			report(out)
		}()
	}
	wg.Wait()
	// The run's leases go in one request (runLeases); one left behind
	// expires by itself, so an error here fails no certificate.
	_ = g.leases.release(ctx)
	return failed
}

// cleanupTimeout bounds a shared solver's cleanup by the last job to
// leave it, as acme.Obtain bounds its solver's.
const cleanupTimeout = 30 * time.Second

func (r *Runner) one(ctx context.Context, opts Options, j *Job) Outcome {
	ctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	return r.job(ctx, opts, j)
}

// job runs j within ctx, its deadline.
func (r *Runner) job(ctx context.Context, opts Options, j *Job) Outcome {
	out := Outcome{Job: j}
	if j.Prepare != nil {
		skip, err := j.Prepare(ctx, j)
		if err != nil || skip != "" {
			out.Skip, out.Err = skip, timeoutError(ctx, err, r.Timeout)
			return out
		}
	}
	iss := j.Issuer
	if iss == nil {
		var err error
		if iss, err = IssuerOf(ctx, opts.Store, j.Cert); err != nil {
			out.Err = timeoutError(ctx, err, r.Timeout)
			return out
		}
	}
	opts.Replaces = j.Replaces
	if r.Observe != nil {
		opts.Observe = r.Observe(j.Cert)
	}
	cert, err := Issue(ctx, opts, iss, j.Cert)
	j.Cert = cert
	out.Issued, out.Err = err == nil, timeoutError(ctx, err, r.Timeout)
	return out
}

// timeoutError says when a certificate's own deadline ended it; Issue has
// removed its solver objects by then.
func timeoutError(ctx context.Context, err error, timeout time.Duration) error {
	if err != nil && errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
		return fmt.Errorf("timed out after %s; solver objects were removed: %w", timeout, err)
	}
	return err
}
