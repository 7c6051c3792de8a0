package issuance

import (
	"context"
	"fmt"
	"strings"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/store"
)

// JobsError lists every certificate that cannot be issued, found before
// anything was created.
type JobsError struct {
	Problems []string
}

func (e *JobsError) Error() string {
	return "nothing was issued:\n" + strings.Join(e.Problems, "\n")
}

// JobsFor checks, before anything is created, that every certificate's
// issuer can be read (each once) and selects a solver for each of its
// names, and returns the certificates' Jobs for the Runner, each
// reconciled with its stored state (one Reconciler for all; with reissue,
// issued in any case). Problems come back together as a *JobsError.
func JobsFor(ctx context.Context, st *store.Store, certs []*certmanager.Certificate, reissue bool) ([]*Job, error) {
	type read struct {
		iss *certmanager.Issuer
		err error
	}
	issuers := map[string]read{}
	var problems []string
	jobs := make([]*Job, len(certs))
	rec := NewReconciler(st, certs, reissue)
	for i, c := range certs {
		key := CertIssuerKey(c)
		r, ok := issuers[key]
		if !ok {
			r.iss, r.err = IssuerOf(ctx, st, c)
			issuers[key] = r
		}
		err := r.err
		if err == nil {
			_, err = certmanager.SolversFor(r.iss, c)
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("certificate %q: %v", c.Name, err))
			continue
		}
		jobs[i] = &Job{Cert: c, Issuer: r.iss, Prepare: rec.Prepare(c)}
	}
	if len(problems) > 0 {
		return nil, &JobsError{Problems: problems}
	}
	return jobs, nil
}
