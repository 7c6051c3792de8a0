package plugin

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/issuance"
)

// RevokeOptions holds `kubectl acme revoke` input.
type RevokeOptions struct {
	Name    string
	Reason  string
	Timeout time.Duration
	namespaceFlags

	factory *Factory
	genericiooptions.IOStreams
}

// NewRevokeOptions returns options with defaults.
func NewRevokeOptions(streams genericiooptions.IOStreams) *RevokeOptions {
	return &RevokeOptions{IOStreams: streams, Reason: "unspecified", Timeout: time.Minute}
}

// NewCmdRevoke builds `kubectl acme revoke`.
func NewCmdRevoke(f *Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewRevokeOptions(streams)
	cmd := &cobra.Command{
		Use:   "revoke NAME [--reason REASON]",
		Short: "Revoke the certificate stored for NAME",
		Long: `Ask the CA to revoke the certificate currently stored in NAME's Secret, signed
with the issuer's account key. The Secret is left as it is; issue again to replace it.
Revoking a certificate the CA revoked before changes nothing: the command says it was
already revoked and keeps the first revocation's reason and time.`,
		Example: `  # The private key leaked
  kubectl acme revoke web --reason keyCompromise

  # The certificate was replaced by a new one
  kubectl acme revoke web --reason superseded`,
		Args: cobra.ExactArgs(1),
		RunE: runE(f, o),
	}
	cmd.Flags().StringVar(&o.Reason, "reason", o.Reason, "Revocation reason: "+reasonList())
	addTimeoutFlag(cmd.Flags(), &o.Timeout, "How long to wait for the CA")
	return cmd
}

func reasonList() string {
	var names []string
	for n := range issuance.RevocationReasons {
		names = append(names, n)
	}
	sort.Strings(names)
	return fmt.Sprint(names)
}

// Complete takes the name and fills in the namespace.
func (o *RevokeOptions) Complete(f *Factory, cmd *cobra.Command, args []string) error {
	o.Name, o.factory = args[0], f
	return o.complete(f)
}

// Validate checks the name, reason and timeout.
func (o *RevokeOptions) Validate() error {
	if err := certmanager.ValidateName("certificate", o.Name); err != nil {
		return err
	}
	if err := positive("--timeout", o.Timeout); err != nil {
		return err
	}
	if _, ok := issuance.RevocationReasons[o.Reason]; !ok {
		return fmt.Errorf("--reason %q: use one of %s", o.Reason, reasonList())
	}
	return nil
}

// Run revokes.
func (o *RevokeOptions) Run(ctx context.Context) error {
	st, err := o.factory.Store()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	cert, err := st.GetCertificate(ctx, o.Namespace, o.Name)
	if err != nil {
		return err
	}
	out, err := issuance.Revoke(ctx, issuance.Options{Store: st, UserAgent: o.factory.UserAgent}, cert, issuance.RevocationReasons[o.Reason])
	if err != nil {
		return fmt.Errorf("certificate %q: %w", o.Name, err)
	}
	if !out.AlreadyRevoked {
		fmt.Fprintf(o.Out, "certificate/%s revoked (serial %s, reason %s)\n", o.Name, cert.Status.Serial, o.Reason)
		return nil
	}
	fmt.Fprintln(o.Out, alreadyRevokedMessage(o.Name, o.Reason, cert.Status.Revoked, out.Recorded))
	return nil
}

// alreadyRevokedMessage says that revoking again changed nothing, and what
// is on record: the CA answered alreadyRevoked, so it kept the earlier reason.
func alreadyRevokedMessage(name, reason string, prev *certmanager.RevocationStatus, recorded bool) string {
	if !recorded {
		return fmt.Sprintf("certificate/%s already revoked (serial %s): the CA had revoked it before, not through this record; recorded as revoked, reason %s",
			name, prev.Serial, issuance.ReasonUnknown)
	}
	msg := fmt.Sprintf("certificate/%s already revoked (serial %s, reason %s, at %s): nothing changed", name, prev.Serial, prev.Reason, prev.Time.UTC().Format(time.RFC3339))
	if reason != prev.Reason {
		msg += fmt.Sprintf("; --reason %s is not applied: the CA kept its earlier revocation", reason)
	}
	return msg
}
