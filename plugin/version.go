package plugin

import (
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// NewCmdVersion builds `kubectl acme version`.
func NewCmdVersion(streams genericiooptions.IOStreams, build BuildInfo) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:     "version",
		Short:   "Print the version of kubectl-acme",
		Example: "  kubectl acme version\n  kubectl acme version -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validateOutput(output, "", "json", "yaml"); err != nil {
				return err
			}
			if output != "" {
				return printObject(streams.Out, output, build)
			}
			_, err := fmt.Fprintf(streams.Out, "kubectl-acme %s (commit %s, built %s)\n", build.Version, build.Commit, build.Date)
			return err
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", output, "Output format: json or yaml")
	registerVersionCompletion(cmd)
	return cmd
}
