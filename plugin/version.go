package plugin

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// VersionOptions holds `kubectl acme version` input.
type VersionOptions struct {
	Output *outputFlags

	build BuildInfo
	genericiooptions.IOStreams
}

// NewVersionOptions returns options with defaults.
func NewVersionOptions(streams genericiooptions.IOStreams, build BuildInfo) *VersionOptions {
	return &VersionOptions{IOStreams: streams, build: build, Output: newOutputFlags("", "json", "yaml")}
}

// NewCmdVersion builds `kubectl acme version`.
func NewCmdVersion(f *Factory, streams genericiooptions.IOStreams, build BuildInfo) *cobra.Command {
	o := NewVersionOptions(streams, build)
	cmd := &cobra.Command{
		Use:               "version",
		Short:             "Print the version of kubectl-acme",
		Example:           "  kubectl acme version\n  kubectl acme version -o json",
		Args:              cobra.NoArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE:              runE(f, o),
	}
	o.Output.addFlag(cmd, "Output format: json or yaml")
	return cmd
}

// Complete has nothing to fill in: the version needs no cluster.
func (o *VersionOptions) Complete(f *Factory, cmd *cobra.Command, args []string) error {
	return nil
}

// Validate checks the output format.
func (o *VersionOptions) Validate() error { return o.Output.validate() }

// Run prints the build.
func (o *VersionOptions) Run(ctx context.Context) error {
	if !o.Output.table() {
		// Not a Kubernetes object: printed as kubectl version -o prints.
		return printObject(o.Out, o.Output.Format(), o.build)
	}
	_, err := fmt.Fprintf(o.Out, "kubectl-acme %s (commit %s, built %s)\n", o.build.Version, o.build.Commit, o.build.Date)
	return err
}
