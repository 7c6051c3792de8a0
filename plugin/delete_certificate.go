package plugin

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
)

// DeleteCertificateOptions holds `kubectl acme delete certificate` input.
type DeleteCertificateOptions struct {
	Name         string
	DeleteSecret bool
	Timeout      time.Duration
	namespaceFlags

	factory *Factory
	genericiooptions.IOStreams
}

// NewDeleteCertificateOptions returns options with defaults.
func NewDeleteCertificateOptions(streams genericiooptions.IOStreams) *DeleteCertificateOptions {
	return &DeleteCertificateOptions{IOStreams: streams, Timeout: time.Minute}
}

// NewCmdDeleteCertificate builds `kubectl acme delete certificate`.
func NewCmdDeleteCertificate(f *Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewDeleteCertificateOptions(streams)
	cmd := &cobra.Command{
		Use:   "certificate NAME [--delete-secret]",
		Short: "Stop tracking a certificate, keeping its Secret unless asked",
		Long: `Delete a stored Certificate. Its TLS Secret stays, so Ingresses using it keep
serving; --delete-secret deletes it too, if kubectl-acme wrote it for this certificate.`,
		Example: `  kubectl acme delete certificate web
  kubectl acme delete certificate old --delete-secret`,
		Args: cobra.ExactArgs(1),
		RunE: runE(f, o),
	}
	cmd.Flags().BoolVar(&o.DeleteSecret, "delete-secret", o.DeleteSecret, "Also delete the certificate's TLS Secret")
	addTimeoutFlag(cmd.Flags(), &o.Timeout, "How long to wait for the API server")
	return cmd
}

// Complete takes the name and fills in the namespace.
func (o *DeleteCertificateOptions) Complete(f *Factory, cmd *cobra.Command, args []string) error {
	o.Name, o.factory = args[0], f
	return o.complete(f)
}

// Validate checks the name and timeout.
func (o *DeleteCertificateOptions) Validate() error {
	if err := certmanager.ValidateName("certificate", o.Name); err != nil {
		return err
	}
	return positive("--timeout", o.Timeout)
}

// Run deletes.
func (o *DeleteCertificateOptions) Run(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	st, err := o.factory.Store()
	if err != nil {
		return err
	}
	cert, err := st.GetCertificate(ctx, o.Namespace, o.Name)
	if err != nil {
		return err
	}
	secretNote := fmt.Sprintf("secret %s kept", cert.Spec.SecretName)
	if o.DeleteSecret {
		deleted, err := st.DeleteTLSSecret(ctx, cert)
		if err != nil {
			return err
		}
		if deleted {
			secretNote = fmt.Sprintf("secret %s deleted", cert.Spec.SecretName)
		}
	}
	if err := st.DeleteCertificate(ctx, cert); err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "certificate/%s deleted; %s\n", o.Name, secretNote)
	return nil
}
