package plugin

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-acme/kubectl-acme/acme"
	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/issuance"
	"github.com/kubectl-acme/kubectl-acme/internal/schedule"
	"github.com/kubectl-acme/kubectl-acme/internal/store"
)

// Exit codes of `kubectl acme renew`, for cron jobs.
const (
	// ExitNothingDue: no certificate was due (the command succeeded).
	ExitNothingDue = 0
	// ExitFailed: at least one renewal failed.
	ExitFailed = 1
	// ExitRenewed: at least one certificate was renewed and none failed.
	ExitRenewed = 10
)

// RenewOptions holds `kubectl acme renew` input.
type RenewOptions struct {
	Names []string
	All   bool
	namespaceFlags
	DryRun bool
	Force  bool
	// Scheduled: run as kubectl acme schedule's CronJob does.
	Scheduled bool
	issueFlags

	factory *Factory
	genericiooptions.IOStreams
}

// NewRenewOptions returns options with defaults.
func NewRenewOptions(streams genericiooptions.IOStreams) *RenewOptions {
	return &RenewOptions{IOStreams: streams, issueFlags: defaultIssueFlags()}
}

// NewCmdRenew builds `kubectl acme renew`.
func NewCmdRenew(f *Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewRenewOptions(streams)
	cmd := &cobra.Command{
		Use:   "renew (NAME... | --all) [-A] [--dry-run] [--force]",
		Short: "Renew certificates that are due",
		Long: `Renew the named certificates, or all of them, when they are due.

A certificate is due at a point inside the renewal window its CA suggests through
ACME Renewal Information (ARI, RFC 9773) when the CA offers it: a point spread
uniformly over the window, as RFC 9773 asks, and the same on every run (it is
derived from the certificate and the window); the renewal order then names the
certificate it replaces. The window is stored with the Certificate and asked for
again only after the CA's Retry-After. Without ARI a certificate is due when less
than a third of its lifetime remains. A renewBefore asking for earlier wins.
kubectl acme status shows the chosen time as RENEW AFTER. --force renews now.

The old certificate stays in its Secret until the new one is written.

Exit codes, for cron jobs: 0 nothing was due, 10 at least one certificate was
renewed and none failed, 1 at least one renewal failed. With --scheduled (the
CronJob of kubectl acme schedule runs it so) a renewal exits 0 too, so the Job
completes, and each failure also leaves a Warning Event, reason RenewalFailed,
on the Certificate's ConfigMap; before ordering anything it checks that it holds
every permission kubectl acme schedule grants for the namespace, and fails
naming the missing ones.`,
		Example: `  # Renew every certificate in the namespace that is due
  kubectl acme renew --all

  # What would be renewed, in every namespace
  kubectl acme renew --all -A --dry-run

  # Renew one certificate now, due or not
  kubectl acme renew web --force`,
		RunE: runE(f, o),
	}
	fl := cmd.Flags()
	fl.BoolVar(&o.All, "all", o.All, "Consider every certificate in the namespace (or all namespaces with -A)")
	o.addAllNamespacesFlag(fl, "With --all, every namespace")
	fl.BoolVar(&o.DryRun, "dry-run", o.DryRun, "Only say which certificates are due")
	fl.BoolVar(&o.Force, "force", o.Force, "Renew even if not due")
	fl.BoolVar(&o.Scheduled, "scheduled", o.Scheduled, "Run as kubectl acme schedule's CronJob: exit 0 after renewals too (the Job completes) and leave a Warning Event on the Certificate's ConfigMap for each failure")
	o.issueFlags.addFlags(fl)
	return cmd
}

// Complete takes the names and fills in the namespace.
func (o *RenewOptions) Complete(f *Factory, cmd *cobra.Command, args []string) error {
	o.Names, o.factory = args, f
	return o.complete(f)
}

// Validate checks flag combinations.
func (o *RenewOptions) Validate() error {
	switch {
	case o.All && len(o.Names) > 0:
		return errors.New("give certificate names or --all, not both")
	case !o.All && len(o.Names) == 0:
		return errors.New("give certificate names, or --all to consider every certificate")
	}
	if err := o.requireAll(o.All); err != nil {
		return err
	}
	if err := o.issueFlags.validate(); err != nil {
		return err
	}
	for _, n := range o.Names {
		if err := certmanager.ValidateName("certificate", n); err != nil {
			return err
		}
	}
	return nil
}

// Run renews what is due through the one runner: each certificate's
// check and renewal within its own --timeout.
func (o *RenewOptions) Run(ctx context.Context) error {
	acme.PreloadSystemRoots()
	st, err := o.store(o.factory)
	if err != nil {
		return err
	}
	lctx, cancel := context.WithTimeout(ctx, o.Timeout)
	var perr error
	if o.Scheduled && !o.DryRun && !o.AllNamespaces {
		perr = o.scheduledPreflight(lctx, st)
	}
	certs, err := o.certificates(lctx, st)
	if perr != nil {
		for _, c := range certs {
			o.recordFailure(lctx, st, c, perr)
		}
		err = &ExitError{Code: ExitFailed, Err: perr}
	}
	cancel()
	if err != nil {
		return err
	}
	r := o.runner(st, o.factory, o.ErrOut, len(certs))
	jobs := make([]*issuance.Job, len(certs))
	due := &issuance.Renewal{Options: r.Options, Force: o.Force, DryRun: o.DryRun, Warnings: o.ErrOut}
	for i, c := range certs {
		jobs[i] = &issuance.Job{Cert: c, Prepare: due.Prepare}
	}
	renewed := 0
	failed := r.Run(ctx, jobs, func(out issuance.Outcome) {
		c := out.Job.Cert
		id := c.Namespace + "/" + c.Name
		switch {
		case out.Err != nil:
			fmt.Fprintf(o.ErrOut, "error: certificate/%s: %v\n", id, out.Err)
			o.recordFailure(ctx, st, c, out.Err)
		case out.Skip != "":
			fmt.Fprintf(o.Out, "certificate/%s %s\n", id, out.Skip)
		default:
			renewed++
			fmt.Fprintf(o.Out, "certificate/%s renewed: serial %s, valid until %s\n", id, c.Status.Serial, issuance.FormatTime(c.Status.NotAfter))
		}
	})
	switch {
	case failed > 0:
		return &ExitError{Code: ExitFailed, Err: fmt.Errorf("%d of %d renewals failed", failed, failed+renewed)}
	case renewed > 0 && !o.Scheduled:
		return &ExitError{Code: ExitRenewed, Err: errSilent}
	}
	return nil
}

// recordFailure leaves the Event of a failed scheduled renewal; one that
// cannot be recorded is reported beside the failure, which counts anyway.
func (o *RenewOptions) recordFailure(ctx context.Context, st *store.Store, cert *certmanager.Certificate, failure error) {
	if !o.Scheduled || o.DryRun {
		return
	}
	if err := schedule.RecordFailure(ctx, st.Client, cert, failure); err != nil {
		fmt.Fprintf(o.ErrOut, "warning: certificate/%s/%s: could not record the failure as an Event: %v\n", cert.Namespace, cert.Name, err)
	}
}

// errSilent ends a command with a non-zero exit code and no message.
var errSilent = errors.New("")

func (o *RenewOptions) certificates(ctx context.Context, st *store.Store) ([]*certmanager.Certificate, error) {
	if !o.All {
		out := make([]*certmanager.Certificate, 0, len(o.Names))
		for _, n := range o.Names {
			c, err := st.GetCertificate(ctx, o.Namespace, n)
			if err != nil {
				return nil, err
			}
			out = append(out, c)
		}
		return out, nil
	}
	return st.ListCertificates(ctx, o.listNamespace())
}
