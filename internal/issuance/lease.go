package issuance

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/user"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-acme/kubectl-acme/acme"
	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/kube"
	"github.com/kubectl-acme/kubectl-acme/internal/store"
	"github.com/kubectl-acme/kubectl-acme/solver"
)

// One issuer of a certificate at a time: Issue holds a
// coordination.k8s.io Lease per Certificate while it works, renewing it
// every LeaseRenewInterval. A holder that crashes stops renewing, and its
// lease is free again LeaseDuration after the last renewal.
//
// A renewal is one write per held lease, and a run of many certificates
// holds many while they wait for their shared solver workload, so they are
// renewed at half the duration, not more often; a failed renewal (an API
// server restarting) is tried again every leaseRenewRetry, three times
// before the lease would expire.
const (
	LeaseDuration      = 30 * time.Second
	LeaseRenewInterval = LeaseDuration / 2
	leaseRenewRetry    = 5 * time.Second
	// leasePoll is how often a waiting process looks at a held lease.
	leasePoll = time.Second
)

// ErrLeaseLost cancels an issuance whose lease another process took over
// (after this one failed to renew it in time).
var ErrLeaseLost = errors.New("another process took over the certificate's lease")

// LeaseName is the Lease that guards a Certificate's issuance.
func LeaseName(cert string) string { return "acme-certificate-" + cert }

// DefaultHolder identifies this process in a Lease: "user@host pid N".
func DefaultHolder() string {
	name := "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	return fmt.Sprintf("%s@%s pid %d", name, host, os.Getpid())
}

// LeaseHeldError says another process is issuing the certificate now.
type LeaseHeldError struct {
	Namespace, Certificate, Lease string
	Holder                        string
	Acquired, Expires             time.Time
}

func (e *LeaseHeldError) Error() string {
	since := ""
	if !e.Acquired.IsZero() {
		since = " since " + e.Acquired.UTC().Format(time.RFC3339)
	}
	// Callers name the certificate: "certificate "web": it is being ...".
	return fmt.Sprintf("it is being issued by %s%s (lease %s/%s, held until %s unless renewed); try again later, or wait for it with --wait",
		e.Holder, since, e.Namespace, e.Lease, e.Expires.UTC().Format(time.RFC3339))
}

// LeaseInfo is a lease's holder as last written.
type LeaseInfo struct {
	Holder            string
	Acquired, Expires time.Time
}

func leaseInfo(l *coordinationv1.Lease) LeaseInfo {
	var li LeaseInfo
	if l.Spec.HolderIdentity != nil {
		li.Holder = *l.Spec.HolderIdentity
	}
	if l.Spec.AcquireTime != nil {
		li.Acquired = l.Spec.AcquireTime.Time
	}
	d := LeaseDuration
	if l.Spec.LeaseDurationSeconds != nil {
		d = time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second
	}
	renewed := l.CreationTimestamp.Time
	if l.Spec.RenewTime != nil {
		renewed = l.Spec.RenewTime.Time
	}
	li.Expires = renewed.Add(d)
	return li
}

// held reports whether someone holds l at now. It trusts the holder's
// clock (renewTime), as leases between processes on different machines
// must; a skew larger than a few seconds shortens or lengthens the wait.
func (li LeaseInfo) held(now time.Time) bool {
	return li.Holder != "" && now.Before(li.Expires)
}

// CertificateLease returns who is issuing cert in ns now, or nil when
// nobody is (no lease, released, or expired).
func CertificateLease(ctx context.Context, c kubernetes.Interface, ns, cert string, now time.Time) (*LeaseInfo, error) {
	l, err := c.CoordinationV1().Leases(ns).Get(ctx, LeaseName(cert), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, kube.Describe(err, "get", "leases.coordination.k8s.io", ns)
	}
	li := leaseInfo(l)
	if !li.held(now) {
		return nil, nil
	}
	return &li, nil
}

// certLease is a lease this process holds.
type certLease struct {
	client           kubernetes.Interface
	ns, name, holder string
	// run labels the lease for a run of several certificates (runLeases).
	run string
	now func() time.Time

	mu    sync.Mutex
	lease *coordinationv1.Lease // as last written by us

	stop   context.CancelFunc // stops renewing
	done   chan struct{}      // closed when renewing stopped
	finish context.CancelCauseFunc
}

// acquireLease takes cert's lease, or fails with *LeaseHeldError while
// another process holds it; with wait, it waits until the lease is free
// or ctx ends. The lease is renewed until release. The returned context is
// ctx, cancelled with cause ErrLeaseLost should another process take the
// lease over. contended reports whether a lease existed already, i.e.
// whether another process may have changed the Certificate meanwhile.
// run, when set, is the run label (solver.LabelRun) the lease carries.
func acquireLease(ctx context.Context, c kubernetes.Interface, ns, cert, holder, run string, wait bool, observe acme.Observer) (_ *certLease, _ context.Context, contended bool, _ error) {
	if holder == "" {
		holder = DefaultHolder()
	}
	cl := &certLease{client: c, ns: ns, name: LeaseName(cert), holder: holder, run: run, now: time.Now}
	leases := c.CoordinationV1().Leases(ns)
	reported := ""
	// Create first: the lease usually does not exist, and a create that
	// finds it costs no more than the read it replaces.
	exists := false
	for {
		now := cl.now()
		if !exists {
			l, err := leases.Create(ctx, cl.fresh(now), metav1.CreateOptions{})
			if err == nil {
				cl.lease = l
				break
			}
			if !apierrors.IsAlreadyExists(err) {
				return nil, ctx, contended, kube.Describe(err, "create", "leases.coordination.k8s.io", ns)
			}
			contended = true
		}
		old, err := leases.Get(ctx, cl.name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			exists = false // released meanwhile
			continue
		}
		if err != nil {
			return nil, ctx, contended, kube.Describe(err, "get", "leases.coordination.k8s.io", ns)
		}
		exists = true
		li := leaseInfo(old)
		if li.held(now) && li.Holder != holder {
			if !wait {
				return nil, ctx, contended, &LeaseHeldError{Namespace: ns, Certificate: cert, Lease: cl.name, Holder: li.Holder, Acquired: li.Acquired, Expires: li.Expires}
			}
			if observe != nil && reported != li.Holder {
				reported = li.Holder
				observe(acme.Event{State: acme.StatePending, Detail: fmt.Sprintf("waiting for %s, who is issuing this certificate (lease %s/%s)", li.Holder, ns, cl.name)})
			}
			select {
			case <-ctx.Done():
				return nil, ctx, contended, fmt.Errorf("waiting for %s to finish issuing certificate %q: %w", li.Holder, cert, ctx.Err())
			case <-time.After(leasePoll):
			}
			continue
		}
		taken := old.DeepCopy()
		fresh := cl.fresh(now)
		taken.Spec = fresh.Spec
		// The previous holder's run label goes: its run's deletecollection
		// must not take this lease with it.
		taken.Labels = fresh.Labels
		transitions := int32(0)
		if old.Spec.LeaseTransitions != nil {
			transitions = *old.Spec.LeaseTransitions
		}
		transitions++
		taken.Spec.LeaseTransitions = &transitions
		// The resourceVersion read makes a concurrent taker a conflict.
		l, err := leases.Update(ctx, taken, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			continue
		}
		if err != nil {
			return nil, ctx, contended, kube.Describe(err, "update", "leases.coordination.k8s.io", ns)
		}
		cl.lease = l
		break
	}
	lctx, cancel := context.WithCancelCause(ctx)
	rctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	cl.stop, cl.done, cl.finish = stop, make(chan struct{}), cancel
	go cl.keepRenewed(rctx, func() { cancel(ErrLeaseLost) })
	return cl, lctx, contended, nil
}

func (cl *certLease) fresh(now time.Time) *coordinationv1.Lease {
	secs := int32(LeaseDuration / time.Second)
	t := metav1.NewMicroTime(now)
	holder := cl.holder
	labels := map[string]string{store.LabelManagedBy: store.ManagedBy, store.LabelKind: certificateLeaseKind}
	if cl.run != "" {
		labels[solver.LabelRun] = cl.run
	}
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{
			Name:      cl.name,
			Namespace: cl.ns,
			Labels:    labels,
		},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity:       &holder,
			LeaseDurationSeconds: &secs,
			AcquireTime:          &t,
			RenewTime:            &t,
		},
	}
}

// keepRenewed renews the lease until stopped. Transient errors (an API
// server restart) are retried after leaseRenewRetry; finding another
// holder calls lost and stops.
func (cl *certLease) keepRenewed(ctx context.Context, lost func()) {
	defer close(cl.done)
	t := time.NewTimer(LeaseRenewInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := cl.renew(ctx)
		if errors.Is(err, ErrLeaseLost) {
			lost()
			return
		}
		if err != nil {
			t.Reset(leaseRenewRetry)
		} else {
			t.Reset(LeaseRenewInterval)
		}
	}
}

// renew writes a new renewTime over the lease as this process last wrote
// it: the resourceVersion of that write proves nobody changed it since,
// so no read comes first. Only a conflict (someone wrote it meanwhile)
// costs a read, to see whether it is still ours.
func (cl *certLease) renew(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, leaseRenewRetry)
	defer cancel()
	leases := cl.client.CoordinationV1().Leases(cl.ns)
	cl.mu.Lock()
	cur := cl.lease.DeepCopy()
	cl.mu.Unlock()
	for range 2 {
		now := metav1.NewMicroTime(cl.now())
		cur.Spec.RenewTime = &now
		updated, err := leases.Update(ctx, cur, metav1.UpdateOptions{})
		switch {
		case err == nil:
			cl.mu.Lock()
			cl.lease = updated
			cl.mu.Unlock()
			return nil
		case apierrors.IsNotFound(err):
			return ErrLeaseLost
		case !apierrors.IsConflict(err):
			return err
		}
		if cur, err = leases.Get(ctx, cl.name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			return ErrLeaseLost
		} else if err != nil {
			return err
		}
		if leaseInfo(cur).Holder != cl.holder {
			return ErrLeaseLost
		}
	}
	// Changed again between the read and the write: the next tick sees
	// the new holder, if any.
	return nil
}

// certificateLeaseKind is the store.LabelKind of certificate Leases;
// certificateLeaseSelector selects them.
const (
	certificateLeaseKind     = "CertificateLease"
	certificateLeaseSelector = store.LabelManagedBy + "=" + store.ManagedBy + "," + store.LabelKind + "=" + certificateLeaseKind
)

// releaseTimeout bounds a release, which runs even after the run's
// context ended (an interrupt, a timeout).
const releaseTimeout = 10 * time.Second

// stopRenewing stops renewing the lease and ends its context. The lease
// stays held until deleted, or for LeaseDuration after its last renewal.
func (cl *certLease) stopRenewing() {
	cl.stop()
	<-cl.done
	cl.finish(nil)
}

// release stops renewing and deletes the lease if it is still ours, so the
// next issuer need not wait for it to expire. It runs even after ctx ended.
func (cl *certLease) release(ctx context.Context) error {
	cl.stopRenewing()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	return cl.delete(ctx)
}

// delete deletes the lease if it is still ours: the UID and
// resourceVersion of our last write make any other writer's version a
// conflict, after which one read says whose it is.
func (cl *certLease) delete(ctx context.Context) error {
	leases := cl.client.CoordinationV1().Leases(cl.ns)
	cl.mu.Lock()
	l := cl.lease
	cl.mu.Unlock()
	for range 3 {
		uid, rv := l.UID, l.ResourceVersion
		err := leases.Delete(ctx, cl.name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv}})
		if err == nil || apierrors.IsNotFound(err) {
			return nil
		}
		if !apierrors.IsConflict(err) {
			return kube.Describe(err, "delete", "leases.coordination.k8s.io", cl.ns)
		}
		cur, err := leases.Get(ctx, cl.name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return kube.Describe(err, "get", "leases.coordination.k8s.io", cl.ns)
		}
		if leaseInfo(cur).Holder != cl.holder {
			return nil // someone else's now
		}
		l = cur
	}
	return fmt.Errorf("release lease %s/%s: it kept changing", cl.ns, cl.name)
}

// runLeases are the leases of a run of several certificates (apply,
// renew --all, issue --ingress). Each carries the run's label; once its
// certificate is done it is no longer renewed but stays held, and at the
// run's end one deletecollection per namespace, selecting the run's
// label, deletes them all: one request instead of one per certificate. A
// lease whose certificate finished more than LeaseDuration before the end
// may have expired and been taken over meanwhile; the takeover replaced
// its labels (acquireLease), so the collection leaves it alone. (Only a
// takeover in the milliseconds between the server's list and its delete
// of that lease would lose, and the taker then fails with ErrLeaseLost.)
type runLeases struct {
	run string

	mu   sync.Mutex
	held []*certLease // done, not yet deleted
}

func newRunLeases(run string) *runLeases { return &runLeases{run: run} }

// finished stops renewing cl, whose certificate is done; release deletes it.
func (rl *runLeases) finished(cl *certLease) {
	cl.stopRenewing()
	rl.mu.Lock()
	defer rl.mu.Unlock()
	rl.held = append(rl.held, cl)
}

// release deletes the run's leases, even after ctx ended, within
// releaseTimeout: per namespace, one deletecollection, or the lease's own
// delete when it is the only one there (one request either way, and its
// preconditions spare a lease someone else holds now). Without the
// deletecollection permission (a Role made before it was needed) each
// lease is deleted by itself, as a run of one certificate does. A lease
// left behind expires by itself.
func (rl *runLeases) release(ctx context.Context) error {
	rl.mu.Lock()
	held := rl.held
	rl.held = nil
	rl.mu.Unlock()
	byNS := map[string][]*certLease{}
	for _, cl := range held {
		byNS[cl.ns] = append(byNS[cl.ns], cl)
	}
	ctx = context.WithoutCancel(ctx)
	sel := certificateLeaseSelector + "," + solver.LabelRun + "=" + rl.run
	var errs []error
	for _, ns := range slices.Sorted(maps.Keys(byNS)) {
		ls := byNS[ns]
		if len(ls) > 1 {
			cctx, cancel := context.WithTimeout(ctx, releaseTimeout)
			err := ls[0].client.CoordinationV1().Leases(ns).DeleteCollection(cctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: sel})
			cancel()
			if err == nil {
				continue
			}
			if !apierrors.IsForbidden(err) && !apierrors.IsMethodNotSupported(err) {
				errs = append(errs, kube.Describe(err, "deletecollection", "leases.coordination.k8s.io", ns))
				continue
			}
		}
		errs = append(errs, deleteEach(ctx, ls))
	}
	return errors.Join(errs...)
}

// deleteEach deletes each lease of ls by itself, leaseConcurrency at a time.
func deleteEach(ctx context.Context, ls []*certLease) error {
	ctx, cancel := context.WithTimeout(ctx, releaseTimeout)
	defer cancel()
	errs := make([]error, len(ls))
	var g errgroup.Group
	g.SetLimit(leaseConcurrency)
	for i, cl := range ls {
		g.Go(func() error {
			errs[i] = cl.delete(ctx)
			return nil
		})
	}
	_ = g.Wait()
	return errors.Join(errs...)
}

// refreshStatus replaces cert's status with the stored one: a process that
// waited for the lease saw the Certificate before the holder finished.
func refreshStatus(ctx context.Context, s *store.Store, cert *certmanager.Certificate) error {
	stored, err := s.GetCertificate(ctx, cert.Namespace, cert.Name)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	cert.Status = stored.Status
	cert.ResourceVersion = stored.ResourceVersion
	return nil
}

// lockCertificate takes cert's lease for Issue and, when another process
// held it before, refreshes cert's status from the store, since that
// process may have changed it. unlock releases the lease, or, in a run of
// several certificates, stops renewing it for the run to delete at its
// end (runLeases); an unreleased lease expires by itself.
func lockCertificate(ctx context.Context, o *Options, cert *certmanager.Certificate) (unlock func(), _ context.Context, _ error) {
	var rl *runLeases
	if o.group != nil {
		rl = o.group.g.leases
	}
	run := ""
	if rl != nil {
		run = rl.run
	}
	cl, lctx, contended, err := acquireLease(ctx, o.Store.Client, cert.Namespace, cert.Name, o.LeaseHolder, run, o.WaitForLease, o.Observe)
	if err != nil {
		return nil, ctx, err
	}
	unlock = func() { _ = cl.release(lctx) }
	if rl != nil {
		unlock = func() { rl.finished(cl) }
	}
	if !contended {
		return unlock, lctx, nil
	}
	if err := refreshStatus(lctx, o.Store, cert); err != nil {
		unlock()
		return nil, ctx, err
	}
	return unlock, lctx, nil
}
