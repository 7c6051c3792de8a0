package issuance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Renewal is the Prepare of a renewal (renew, and the schedule's renew
// --all): it skips a certificate that is not due, storing a fresh ARI
// window, unless Force; with DryRun it only says what would be renewed.
type Renewal struct {
	Options Options
	Force   bool
	DryRun  bool
	// Warnings receives what failed without failing the renewal.
	Warnings io.Writer
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Prepare decides whether j's certificate is renewed now, and sets the
// certificate the renewal order replaces (ARI).
func (r *Renewal) Prepare(ctx context.Context, j *Job) (skip string, err error) {
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	check, _, err := CheckRenewal(ctx, r.Options, j.Cert, now())
	if err != nil {
		if !r.DryRun {
			// A renewal that cannot even ask the CA (it is down) is
			// failing: status marks it so until one succeeds, which
			// clears it (setIssued).
			t := metav1.NewTime(now())
			j.Cert.Status.LastFailure, j.Cert.Status.LastFailureTime = failureReason(err), &t
			if serr := SaveRenewalCheck(ctx, r.Options, j.Cert); serr != nil {
				err = errors.Join(err, serr)
			}
		}
		return "", err
	}
	if !check.Due && !r.Force {
		if check.Updated && !r.DryRun {
			// Keeps the CA's window until its Retry-After; a failure only
			// means the next run asks the CA again.
			if err := SaveRenewalCheck(ctx, r.Options, j.Cert); err != nil && r.Warnings != nil {
				fmt.Fprintf(r.Warnings, "warning: certificate/%s/%s: could not store the renewal window: %v\n", j.Cert.Namespace, j.Cert.Name, err)
			}
		}
		return fmt.Sprintf("not due (%s)", check.Reason), nil
	}
	if r.DryRun {
		return fmt.Sprintf("due (%s); not renewed (dry run)", check.Reason), nil
	}
	j.Replaces = check.Replaces
	return "", nil
}
