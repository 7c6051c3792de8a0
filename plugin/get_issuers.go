package plugin

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
)

// GetIssuersOptions holds `kubectl acme get issuers` input.
type GetIssuersOptions struct {
	namespaceFlags
	Output *outputFlags

	factory *Factory
	genericiooptions.IOStreams
}

// NewGetIssuersOptions returns options with defaults.
func NewGetIssuersOptions(streams genericiooptions.IOStreams) *GetIssuersOptions {
	return &GetIssuersOptions{IOStreams: streams, Output: newOutputFlags("", "wide", "json", "yaml", "name")}
}

// NewCmdGetIssuers builds `kubectl acme get issuers`.
func NewCmdGetIssuers(f *Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewGetIssuersOptions(streams)
	cmd := &cobra.Command{
		Use:     "issuers",
		Aliases: []string{"issuer", "clusterissuers"},
		Short:   "List Issuers and ClusterIssuers",
		Long: `List the Issuers of a namespace and the ClusterIssuers, with the account status
the CA reported when the issuer was last registered.`,
		Example: `  kubectl acme get issuers
  kubectl acme get issuers -A -o wide
  kubectl acme get issuers -o yaml`,
		Args:              cobra.NoArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE:              runE(f, o),
	}
	o.addAllNamespacesFlag(cmd.Flags(), "List issuers in all namespaces")
	o.Output.addFlag(cmd, "Output format: wide, json, yaml or name")
	return cmd
}

// Complete fills in the namespace.
func (o *GetIssuersOptions) Complete(f *Factory, cmd *cobra.Command, args []string) error {
	o.factory = f
	return o.complete(f)
}

// Validate checks the output format.
func (o *GetIssuersOptions) Validate() error {
	return o.Output.validate()
}

// Run lists and prints.
func (o *GetIssuersOptions) Run(ctx context.Context) error {
	st, err := o.factory.Store()
	if err != nil {
		return err
	}
	issuers, err := st.ListIssuers(ctx, o.listNamespace(), true)
	if err != nil {
		return err
	}
	sort.Slice(issuers, func(i, j int) bool {
		a, b := issuers[i], issuers[j]
		if a.Kind != b.Kind {
			return a.Kind == certmanager.KindClusterIssuer
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	if !o.Output.table() {
		return o.Output.printList(o.Out, issuers)
	}
	if len(issuers) == 0 {
		_, err := fmt.Fprintf(o.ErrOut, "No issuers found %s.\n", o.where())
		return err
	}
	header, rows := IssuerRows(issuers, o.AllNamespaces, o.Output.wide(), time.Now())
	return printTable(o.Out, header, rows)
}

// IssuerRows renders issuers as table rows. Names carry their kind when
// ClusterIssuers are mixed in, as kubectl does for several kinds.
func IssuerRows(issuers []*certmanager.Issuer, allNamespaces, wide bool, now time.Time) ([]string, [][]string) {
	header := []string{"NAME", "SERVER", "EMAIL", "ACCOUNT", "SOLVER", "AGE"}
	if wide {
		header = append(header, "PROFILE", "ACCOUNT URI")
	}
	if allNamespaces {
		header = append([]string{"NAMESPACE"}, header...)
	}
	mixed := false
	for _, iss := range issuers {
		mixed = mixed || iss.IsCluster()
	}
	var rows [][]string
	for _, iss := range issuers {
		name := iss.Name
		if mixed {
			name = strings.ToLower(iss.Kind) + "/" + iss.Name
		}
		a := iss.Spec.ACME
		account, uri := "<unregistered>", ""
		if st := iss.Status.ACME; st != nil {
			account, uri = st.AccountStatus, st.URI
		}
		solver := "http01"
		if class, legacy := a.IngressClass(); class != "" {
			if legacy {
				solver += " (class " + class + ")"
			} else {
				solver += " (ingressClassName " + class + ")"
			}
		}
		row := []string{name, a.Server, a.Email, account, solver, age(iss.CreationTimestamp.Time, now)}
		if wide {
			row = append(row, a.Profile, uri)
		}
		if allNamespaces {
			row = append([]string{iss.Namespace}, row...)
		}
		rows = append(rows, row)
	}
	return header, rows
}
