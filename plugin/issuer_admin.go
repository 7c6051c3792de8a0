package plugin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/issuance"
	"github.com/kubectl-acme/kubectl-acme/internal/store"
)

// issuerRef is the NAME [--cluster] pair the issuer commands share.
type issuerRef struct {
	Name    string
	Cluster bool
	Timeout time.Duration
	namespaceFlags

	factory *Factory
	genericiooptions.IOStreams
}

// Complete takes NAME, if given as an argument, and fills in the
// namespace.
func (r *issuerRef) Complete(f *Factory, cmd *cobra.Command, args []string) error {
	r.factory = f
	if len(args) > 0 {
		r.Name = args[0]
	}
	return r.complete(f)
}

// validate checks the name and timeout.
func (r *issuerRef) validate() error {
	if err := certmanager.ValidateName("issuer", r.Name); err != nil {
		return err
	}
	return positive("--timeout", r.Timeout)
}

func (r *issuerRef) load(ctx context.Context) (*store.Store, *certmanager.Issuer, error) {
	st, err := r.factory.Store()
	if err != nil {
		return nil, nil, err
	}
	iss, err := st.GetIssuer(ctx, r.Namespace, r.Name, r.Cluster)
	return st, iss, err
}

func (r *issuerRef) kind() string {
	if r.Cluster {
		return "clusterissuer"
	}
	return "issuer"
}

func (r *issuerRef) addFlags(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&r.Cluster, "cluster", r.Cluster, "NAME is a ClusterIssuer")
	addTimeoutFlag(cmd.Flags(), &r.Timeout, "How long to wait for the CA")
}

// UpdateIssuerOptions holds `kubectl acme update issuer` input.
type UpdateIssuerOptions struct {
	issuerRef
	Email            string
	RotateAccountKey bool
	emailSet         bool
}

// NewUpdateIssuerOptions returns options with defaults.
func NewUpdateIssuerOptions(streams genericiooptions.IOStreams) *UpdateIssuerOptions {
	return &UpdateIssuerOptions{issuerRef: issuerRef{IOStreams: streams, Timeout: 2 * time.Minute}}
}

// NewCmdUpdateIssuer builds `kubectl acme update issuer`.
func NewCmdUpdateIssuer(f *Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewUpdateIssuerOptions(streams)
	cmd := &cobra.Command{
		Use:   "issuer NAME [--email ADDR] [--rotate-account-key]",
		Short: "Change an issuer's account contact or roll its account key over",
		Long: `Update the ACME account behind an issuer.

--email changes the account's contact address at the CA.
--rotate-account-key rolls the account over to a new key (RFC 8555 section 7.3.5)
without losing the account: the new key is stored beside the old one first, becomes
current only once the CA confirms, and the old key is kept as tls.key.previous.`,
		Example: `  kubectl acme update issuer letsencrypt --email new-ops@example.com
  kubectl acme update issuer letsencrypt --rotate-account-key`,
		Args: cobra.ExactArgs(1),
		RunE: runE(f, o),
	}
	cmd.Flags().StringVar(&o.Email, "email", o.Email, "New contact address (empty removes it)")
	cmd.Flags().BoolVar(&o.RotateAccountKey, "rotate-account-key", o.RotateAccountKey, "Roll the account over to a new key")
	o.addFlags(cmd)
	return cmd
}

// Complete takes NAME, the namespace and whether --email was given.
func (o *UpdateIssuerOptions) Complete(f *Factory, cmd *cobra.Command, args []string) error {
	o.emailSet = cmd.Flags().Changed("email")
	return o.issuerRef.Complete(f, cmd, args)
}

// Validate checks the issuer and that something is to be done.
func (o *UpdateIssuerOptions) Validate() error {
	if err := o.validate(); err != nil {
		return err
	}
	if !o.emailSet && !o.RotateAccountKey {
		return errors.New("nothing to update: give --email and/or --rotate-account-key")
	}
	return certmanager.ValidateEmail(o.Email)
}

// Run updates the account.
func (o *UpdateIssuerOptions) Run(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	st, iss, err := o.load(ctx)
	if err != nil {
		return err
	}
	opts := issuance.Options{Store: st, UserAgent: o.factory.UserAgent}
	if o.emailSet {
		if err := issuance.UpdateContact(ctx, opts, iss, o.Email); err != nil {
			return fmt.Errorf("%s %q: %w", o.kind(), o.Name, err)
		}
		fmt.Fprintf(o.Out, "%s/%s contact set to %q\n", o.kind(), o.Name, o.Email)
	}
	if o.RotateAccountKey {
		if err := issuance.RotateAccountKey(ctx, opts, iss); err != nil {
			return fmt.Errorf("%s %q: %w", o.kind(), o.Name, err)
		}
		fmt.Fprintf(o.Out, "%s/%s account key rotated (previous key kept as %s.previous in secret %s)\n",
			o.kind(), o.Name, store.AccountKeyKey, iss.Spec.ACME.PrivateKeySecretRef.Name)
	}
	return nil
}

// DeleteIssuerOptions holds `kubectl acme delete issuer` input.
type DeleteIssuerOptions struct {
	issuerRef
	DeactivateAccount bool
}

// NewDeleteIssuerOptions returns options with defaults.
func NewDeleteIssuerOptions(streams genericiooptions.IOStreams) *DeleteIssuerOptions {
	return &DeleteIssuerOptions{issuerRef: issuerRef{IOStreams: streams, Timeout: time.Minute}}
}

// NewCmdDeleteIssuer builds `kubectl acme delete issuer`.
func NewCmdDeleteIssuer(f *Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewDeleteIssuerOptions(streams)
	cmd := &cobra.Command{
		Use:   "issuer NAME [--deactivate-account]",
		Short: "Delete an issuer, keeping its account key",
		Long: `Delete a stored Issuer. Its account key Secret is kept: it is the only proof of the
account. With --deactivate-account the account is deactivated at the CA first
(permanently: the CA refuses it afterwards).`,
		Example: `  kubectl acme delete issuer staging
  kubectl acme delete issuer old --deactivate-account`,
		Args: cobra.ExactArgs(1),
		RunE: runE(f, o),
	}
	cmd.Flags().BoolVar(&o.DeactivateAccount, "deactivate-account", o.DeactivateAccount, "Deactivate the ACME account at the CA first")
	o.addFlags(cmd)
	return cmd
}

// Validate checks the name and timeout.
func (o *DeleteIssuerOptions) Validate() error { return o.validate() }

// Run deletes.
func (o *DeleteIssuerOptions) Run(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	st, iss, err := o.load(ctx)
	if err != nil {
		return err
	}
	if err := issuance.DeleteIssuer(ctx, issuance.Options{Store: st, UserAgent: o.factory.UserAgent}, iss, o.DeactivateAccount); err != nil {
		return fmt.Errorf("%s %q: %w", o.kind(), o.Name, err)
	}
	note := ""
	if o.DeactivateAccount {
		note = ", account deactivated"
	}
	fmt.Fprintf(o.Out, "%s/%s deleted%s; account key secret %s kept\n", o.kind(), o.Name, note, iss.Spec.ACME.PrivateKeySecretRef.Name)
	return nil
}

// GetProfilesOptions holds `kubectl acme get profiles` input.
type GetProfilesOptions struct {
	issuerRef
	Output *outputFlags
}

// NewGetProfilesOptions returns options with defaults.
func NewGetProfilesOptions(streams genericiooptions.IOStreams) *GetProfilesOptions {
	return &GetProfilesOptions{issuerRef: issuerRef{IOStreams: streams, Timeout: 30 * time.Second}, Output: newOutputFlags("", "json", "yaml")}
}

// NewCmdGetProfiles builds `kubectl acme get profiles`.
func NewCmdGetProfiles(f *Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewGetProfilesOptions(streams)
	cmd := &cobra.Command{
		Use:   "profiles --issuer NAME [--cluster-issuer]",
		Short: "List the certificate profiles the issuer's CA offers",
		Long: `List the ACME profiles (e.g. classic, tlsserver, shortlived) the issuer's CA offers,
for --profile of create issuer and issue.`,
		Example: `  kubectl acme get profiles --issuer letsencrypt`,
		Args:    cobra.NoArgs,
		RunE:    runE(f, o),
	}
	cmd.Flags().StringVar(&o.Name, "issuer", o.Name, "Issuer whose CA to ask")
	o.Output.addFlag(cmd, "Output format: json or yaml")
	o.addFlags(cmd)
	// --issuer NAME --cluster-issuer, as issue and check name a
	// ClusterIssuer; --cluster, the issuer commands' name for it, still
	// works.
	cmd.Flags().BoolVar(&o.Cluster, "cluster-issuer", o.Cluster, "--issuer names a ClusterIssuer")
	if err := cmd.Flags().MarkDeprecated("cluster", "use --cluster-issuer"); err != nil {
		panic(err)
	}
	return cmd
}

// Validate checks the issuer, timeout and output format.
func (o *GetProfilesOptions) Validate() error {
	if err := o.validate(); err != nil {
		return err
	}
	return o.Output.validate()
}

// Run lists the profiles.
func (o *GetProfilesOptions) Run(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	_, iss, err := o.load(ctx)
	if err != nil {
		return err
	}
	profiles, err := issuance.Profiles(ctx, issuance.Options{UserAgent: o.factory.UserAgent}, iss)
	if err != nil {
		return fmt.Errorf("%s %q: %w", o.kind(), o.Name, err)
	}
	if !o.Output.table() {
		// A CA's profiles are not Kubernetes objects.
		return printObject(o.Out, o.Output.Format(), profiles)
	}
	if len(profiles) == 0 {
		_, err := fmt.Fprintf(o.ErrOut, "The CA at %s offers no profiles.\n", iss.Spec.ACME.Server)
		return err
	}
	rows := make([][]string, 0, len(profiles))
	for _, p := range profiles {
		rows = append(rows, []string{p.Name, p.Description})
	}
	return printTable(o.Out, []string{"NAME", "DESCRIPTION"}, rows)
}
