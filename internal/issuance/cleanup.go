package issuance

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-acme/kubectl-acme/solver"
)

// CleanupPlan is what `cleanup` does: the leftover solver objects it
// deletes, those it leaves alone (with why), and the expired Leases it
// deletes after them.
type CleanupPlan struct {
	Delete []solver.Leftover
	// Skip holds objects of certificates being issued now, with why.
	Skip   []SkippedLeftover
	Leases []ExpiredLease
}

// SkippedLeftover is an object cleanup leaves alone.
type SkippedLeftover struct {
	solver.Leftover
	Reason string
}

// PlanCleanup decides, without touching the cluster, which leftovers to
// delete: those older than olderThan whose certificate nobody is issuing.
// busy maps namespace/certificate to the holder of its lease.
func PlanCleanup(all []solver.Leftover, olderThan time.Duration, now time.Time, busy map[string]*LeaseInfo) CleanupPlan {
	var p CleanupPlan
next:
	for _, l := range solver.OlderThan(all, olderThan, now) {
		// A solver shared by a run's orders stays while any of them is
		// being issued.
		for _, c := range certificatesOf(l) {
			if li := busy[l.Namespace+"/"+c]; li != nil {
				p.Skip = append(p.Skip, SkippedLeftover{l, fmt.Sprintf("certificate %s is being issued by %s (lease held until %s)",
					c, li.Holder, li.Expires.UTC().Format(time.RFC3339))})
				continue next
			}
		}
		p.Delete = append(p.Delete, l)
	}
	return p
}

// FindCleanup reads what a killed run left in ns ("" for all namespaces)
// and plans its cleanup: the solver objects older than olderThan, the
// Leases of their certificates (a held one protects its run's objects),
// and the certificate Leases that expired at least olderThan ago. The
// listings run at the same time.
func FindCleanup(ctx context.Context, c kubernetes.Interface, dc dynamic.Interface, ns string, olderThan time.Duration, now time.Time) (CleanupPlan, error) {
	var (
		all    []solver.Leftover
		leases []ExpiredLease
	)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		all, err = solver.Leftovers(gctx, c, dc, ns)
		return err
	})
	g.Go(func() (err error) {
		leases, err = ExpiredLeases(gctx, c, ns, olderThan, now)
		return err
	})
	if err := g.Wait(); err != nil {
		return CleanupPlan{}, err
	}
	busy, err := certificateLeases(ctx, c, solver.OlderThan(all, olderThan, now), now)
	if err != nil {
		return CleanupPlan{}, err
	}
	p := PlanCleanup(all, olderThan, now, busy)
	p.Leases = leases
	return p, nil
}

// certificatesOf are the certificates whose orders l served: one, or
// those of a run that shared it.
func certificatesOf(l solver.Leftover) []string {
	if len(l.Certificates) > 0 {
		return l.Certificates
	}
	if l.Certificate == "" {
		return nil
	}
	return []string{l.Certificate}
}

// leaseConcurrency bounds the Lease reads in flight.
const leaseConcurrency = 8

// certificateLeases reads the lease of each certificate with leftovers,
// once per certificate.
func certificateLeases(ctx context.Context, c kubernetes.Interface, l []solver.Leftover, now time.Time) (map[string]*LeaseInfo, error) {
	var mu sync.Mutex
	busy := map[string]*LeaseInfo{}
	seen := map[string]bool{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(leaseConcurrency)
	for _, o := range l {
		for _, cert := range certificatesOf(o) {
			key := o.Namespace + "/" + cert
			if seen[key] {
				continue
			}
			seen[key] = true
			g.Go(func() error {
				li, err := CertificateLease(gctx, c, o.Namespace, cert, now)
				if err != nil {
					return err
				}
				mu.Lock()
				defer mu.Unlock()
				busy[key] = li
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return busy, nil
}
