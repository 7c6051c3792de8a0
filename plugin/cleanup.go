package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-acme/kubectl-acme/internal/issuance"
	"github.com/kubectl-acme/kubectl-acme/solver"
)

// CleanupOptions holds `kubectl acme cleanup` input.
type CleanupOptions struct {
	namespaceFlags
	OlderThan time.Duration
	DryRun    bool
	Timeout   time.Duration

	factory *Factory
	now     func() time.Time
	genericiooptions.IOStreams
}

// NewCleanupOptions returns options with defaults.
func NewCleanupOptions(streams genericiooptions.IOStreams) *CleanupOptions {
	return &CleanupOptions{IOStreams: streams, OlderThan: time.Hour, Timeout: 2 * time.Minute, now: time.Now}
}

// NewCmdCleanup builds `kubectl acme cleanup`.
func NewCmdCleanup(f *Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewCleanupOptions(streams)
	cmd := &cobra.Command{
		Use:   "cleanup [-A] [--older-than DURATION] [--dry-run]",
		Short: "Delete solver objects and Leases left behind by runs that were killed",
		Long: `Delete the HTTP-01 solver pods, services, ingresses and HTTPRoutes (when the
cluster has the Gateway API) that a kubectl acme run could not remove because it was killed (kill -9, a closed laptop,
a lost connection). A run that ends normally, fails, times out or is interrupted
with Ctrl-C removes its own objects. Challenge paths a killed run added to one of
your Ingresses (an issuer with http01.ingress.name) are taken out of it again.

Only objects kubectl-acme created (labels app.kubernetes.io/managed-by=kubectl-acme
and app.kubernetes.io/component=http01-solver) and older than --older-than (by their
acme.kubectl.io/created annotation) are deleted. Objects of a certificate that is
being issued right now (its Lease is held) are skipped, whatever their age.

A killed run also leaves its certificate's Lease, which nobody holds once it has
expired (30 seconds after the run's last renewal). Expired Leases are deleted
too, when they expired at least --older-than ago.

A run killed after it asked the CA to issue leaves the new certificate key in a
recovery record on this machine ($KUBECTL_ACME_STATE_DIR, else
$XDG_STATE_HOME/kubectl-acme, else ~/.local/state/kubectl-acme). cleanup lists
them; the certificate's next issue collects the certificate without a new order.`,
		Example: `  # Remove leftovers older than an hour in the current namespace
  kubectl acme cleanup

  # See what would be removed in every namespace
  kubectl acme cleanup -A --dry-run

  # Remove every leftover now
  kubectl acme cleanup --older-than 0s`,
		Args: cobra.NoArgs,
		RunE: runE(f, o),
	}
	fl := cmd.Flags()
	o.addAllNamespacesFlag(fl, "Clean up in every namespace")
	fl.DurationVar(&o.OlderThan, "older-than", o.OlderThan, "Only objects at least this old; 0s for all")
	fl.BoolVar(&o.DryRun, "dry-run", o.DryRun, "Only list what would be deleted")
	addTimeoutFlag(fl, &o.Timeout, "Give up after this long")
	return cmd
}

// Complete fills in the namespace.
func (o *CleanupOptions) Complete(f *Factory, cmd *cobra.Command, args []string) error {
	o.factory = f
	return o.complete(f)
}

// Validate checks the flags.
func (o *CleanupOptions) Validate() error {
	if o.OlderThan < 0 {
		return fmt.Errorf("--older-than %s: must not be negative", o.OlderThan)
	}
	if err := positive("--timeout", o.Timeout); err != nil {
		return err
	}
	return nil
}

// Run finds, plans and deletes.
func (o *CleanupOptions) Run(ctx context.Context) error {
	st, err := o.factory.Store()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	ns := o.listNamespace()
	defer o.notePending(st.Cluster, ns)
	now := o.now()
	plan, err := issuance.FindCleanup(ctx, st.Client, st.Dynamic, ns, o.OlderThan, now)
	if err != nil {
		return err
	}
	leases := plan.Leases
	for _, s := range plan.Skip {
		fmt.Fprintf(o.ErrOut, "skipped %s/%s in namespace %s: %s\n", s.Kind, s.Name, s.Namespace, s.Reason)
	}
	if len(plan.Delete) == 0 && len(leases) == 0 {
		if len(plan.Skip) == 0 {
			fmt.Fprintf(o.ErrOut, "No leftover solver objects older than %s %s.\n", o.OlderThan, o.where())
		}
		return nil
	}
	var errs []error
	for _, l := range plan.Delete {
		if o.DryRun {
			printLeftover(o.Out, l, now, "would be deleted (dry run)")
			continue
		}
		if err := solver.DeleteLeftover(ctx, st.Client, st.Dynamic, l); err != nil {
			errs = append(errs, err)
			continue
		}
		printLeftover(o.Out, l, now, "deleted")
	}
	if len(errs) > 0 {
		return fmt.Errorf("%d of %d solver objects could not be deleted: %w", len(errs), len(plan.Delete), errors.Join(errs...))
	}
	// Leases last: a killed run's objects go before the record of its run.
	for _, l := range leases {
		detail := fmt.Sprintf("(namespace %s, certificate %s, held by %s, expired %s ago)", l.Namespace, l.Certificate, l.Holder, age(l.Expires, now))
		if o.DryRun {
			fmt.Fprintf(o.Out, "lease/%s would be deleted (dry run) %s\n", l.Name, detail)
			continue
		}
		deleted, err := issuance.DeleteExpiredLease(ctx, st.Client, l)
		if err != nil {
			return err
		}
		if deleted {
			fmt.Fprintf(o.Out, "lease/%s deleted %s\n", l.Name, detail)
		}
	}
	return nil
}

// notePending points at the certificate keys killed runs kept on this
// machine: they are collected by the certificate's next issue, which needs
// the CA, not by cleanup.
func (o *CleanupOptions) notePending(cluster, ns string) {
	pending, _ := issuance.PendingRecoveries(cluster, ns)
	for _, p := range pending {
		fmt.Fprintf(o.ErrOut, "certificate %s in namespace %s: a killed run kept the key of order %s in %s; `kubectl acme issue %s -n %s` collects its certificate without a new order\n",
			p.Certificate, p.Namespace, p.Order, p.Path, p.Certificate, p.Namespace)
	}
}

func printLeftover(w io.Writer, l solver.Leftover, now time.Time, what string) {
	obj := l.Kind + "/" + l.Name
	if l.Kind == solver.KindIngressPaths {
		obj = fmt.Sprintf("ingress/%s challenge paths of %s", l.Name, l.Solver)
	}
	fmt.Fprintf(w, "%s %s (namespace %s, certificate %s, age %s)\n", obj, what, l.Namespace, l.Certificate, age(l.Created, now))
}
