package plugin

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/manifest"
	"github.com/kubectl-acme/kubectl-acme/internal/store"
)

// ExportOptions holds `kubectl acme export` input.
type ExportOptions struct {
	Names []string
	All   bool
	namespaceFlags
	Output *outputFlags
	To     string

	factory *Factory
	genericiooptions.IOStreams
}

// NewExportOptions returns options with defaults.
func NewExportOptions(streams genericiooptions.IOStreams) *ExportOptions {
	return &ExportOptions{IOStreams: streams, Output: newOutputFlags("yaml", "json", "name"), To: "cert-manager"}
}

// NewCmdExport builds `kubectl acme export`.
func NewCmdExport(f *Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewExportOptions(streams)
	cmd := &cobra.Command{
		Use:   "export [CERTIFICATE...] [--all] [-A] [-o yaml|json|name] [--to cert-manager]",
		Short: "Print Issuers and Certificates as cert-manager manifests, to hand renewals over to cert-manager",
		Long: `Print the stored Issuers, ClusterIssuers and Certificates as cert-manager.io/v1
manifests. They name the same account key Secrets and TLS Secrets, so once cert-manager
is installed, 'kubectl apply' of this output hands renewals over to it: it finds the
existing ACME account and adopts the valid certificates instead of issuing new ones.

Give certificate names (each is printed with its issuer), or --all for every
certificate and issuer in the namespace (-A: in all namespaces). Notes about the
hand-over go to stderr.`,
		Example: `  # Hand the namespace's certificates over to cert-manager
  kubectl acme export --all > cert-manager.yaml
  kubectl apply -f cert-manager.yaml

  # One certificate and its issuer, as JSON
  kubectl acme export web -o json`,
		RunE: runE(f, o),
	}
	fl := cmd.Flags()
	fl.BoolVar(&o.All, "all", o.All, "Export every certificate and issuer in the namespace")
	o.addAllNamespacesFlag(fl, "With --all: in every namespace, with every ClusterIssuer")
	o.Output.addFlag(cmd, "Output format: yaml (documents), json (a v1 List) or name")
	fl.StringVar(&o.To, "to", o.To, "What to export to: cert-manager")
	return cmd
}

// Complete fills in the namespace.
func (o *ExportOptions) Complete(f *Factory, cmd *cobra.Command, args []string) error {
	o.Names = args
	o.factory = f
	return o.complete(f)
}

// Validate checks the options without touching the cluster.
func (o *ExportOptions) Validate() error {
	if err := o.Output.validate(); err != nil {
		return err
	}
	if o.To != "cert-manager" {
		return fmt.Errorf("--to %q: only cert-manager is supported", o.To)
	}
	switch {
	case len(o.Names) == 0 && !o.All:
		return errors.New("give certificate names, or --all")
	case len(o.Names) > 0 && o.All:
		return errors.New("give certificate names or --all, not both")
	}
	if err := o.requireAll(o.All); err != nil {
		return err
	}
	for _, n := range o.Names {
		if err := certmanager.ValidateName("certificate", n); err != nil {
			return err
		}
	}
	return nil
}

// Run reads what is stored and prints it.
func (o *ExportOptions) Run(ctx context.Context) error {
	st, err := o.factory.Store()
	if err != nil {
		return err
	}
	issuers, certs, err := o.collect(ctx, st)
	if err != nil {
		return err
	}
	if len(issuers)+len(certs) == 0 {
		return fmt.Errorf("no issuers or certificates in namespace %q", o.Namespace)
	}
	ns := st.ClusterNamespace
	if ns == "" {
		ns = store.DefaultClusterNamespace
	}
	objs, notes := manifest.Export(issuers, certs, ns)
	for _, n := range notes {
		fmt.Fprintln(o.ErrOut, "note:", n)
	}
	return o.Output.printDocuments(o.Out, objs)
}

// collect reads the certificates asked for and the issuers they need.
func (o *ExportOptions) collect(ctx context.Context, st *store.Store) ([]*certmanager.Issuer, []*certmanager.Certificate, error) {
	var certs []*certmanager.Certificate
	var issuers []*certmanager.Issuer
	seen := map[string]bool{}
	addIssuer := func(iss *certmanager.Issuer) {
		key := iss.Kind + "/" + iss.Namespace + "/" + iss.Name
		if !seen[key] {
			seen[key] = true
			issuers = append(issuers, iss)
		}
	}
	if o.All {
		ns := o.listNamespace()
		var err error
		if certs, err = st.ListCertificates(ctx, ns); err != nil {
			return nil, nil, err
		}
		all, err := st.ListIssuers(ctx, ns, o.AllNamespaces)
		if err != nil {
			return nil, nil, err
		}
		for _, iss := range all {
			addIssuer(iss)
		}
	} else {
		for _, n := range o.Names {
			c, err := st.GetCertificate(ctx, o.Namespace, n)
			if err != nil {
				return nil, nil, err
			}
			certs = append(certs, c)
		}
	}
	for _, c := range certs {
		ref := c.Spec.IssuerRef
		cluster := ref.Kind == certmanager.KindClusterIssuer
		key := certmanager.KindIssuer + "/" + c.Namespace + "/" + ref.Name
		if cluster {
			key = certmanager.KindClusterIssuer + "//" + ref.Name
		}
		if seen[key] {
			continue
		}
		iss, err := st.GetIssuer(ctx, c.Namespace, ref.Name, cluster)
		if err != nil {
			return nil, nil, fmt.Errorf("certificate %s/%s: %w", c.Namespace, c.Name, err)
		}
		addIssuer(iss)
	}
	return issuers, certs, nil
}
