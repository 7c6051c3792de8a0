package plugin

import (
	"context"
	"fmt"
	"slices"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// completionShells are the shells cobra writes completion scripts for.
var completionShells = []string{"bash", "zsh", "fish", "powershell"}

// CompletionOptions holds `kubectl acme completion` input.
type CompletionOptions struct {
	Shell          string
	NoDescriptions bool

	root *cobra.Command
	genericiooptions.IOStreams
}

// NewCompletionOptions returns options with defaults.
func NewCompletionOptions(streams genericiooptions.IOStreams) *CompletionOptions {
	return &CompletionOptions{IOStreams: streams}
}

// NewCmdCompletion builds `kubectl acme completion SHELL`, one command
// with the shell as its argument, as kubectl's own completion command is
// (k8s.io/kubectl pkg/cmd/completion), in place of cobra's default.
func NewCmdCompletion(f *Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewCompletionOptions(streams)
	cmd := &cobra.Command{
		Use:   "completion SHELL",
		Short: "Print the shell completion script of kubectl-acme (bash, zsh, fish or powershell)",
		Long: `Print the completion script for the kubectl-acme binary run by itself, for bash,
zsh, fish or powershell. Load it in your shell's startup file.

Completing "kubectl acme ..." needs no script from this command: kubectl (1.26 or
later) asks the kubectl_complete-acme executable beside kubectl-acme on your PATH
(see the README). Both end in the same completions of names from the cluster.`,
		Example: `  # bash, in the current shell (needs the bash-completion package)
  source <(kubectl-acme completion bash)

  # zsh, for every new shell
  kubectl-acme completion zsh > "${fpath[1]}/_kubectl-acme"

  # fish
  kubectl-acme completion fish > ~/.config/fish/completions/kubectl-acme.fish`,
		Args:                  cobra.ExactArgs(1),
		ValidArgs:             completionShells,
		DisableFlagsInUseLine: true,
		RunE:                  runE(f, o),
	}
	cmd.Flags().BoolVar(&o.NoDescriptions, "no-descriptions", o.NoDescriptions, "Leave the candidates' descriptions out")
	return cmd
}

// Complete takes the shell and the command tree to write the script of.
func (o *CompletionOptions) Complete(f *Factory, cmd *cobra.Command, args []string) error {
	o.Shell, o.root = args[0], cmd.Root()
	return nil
}

// Validate checks the shell.
func (o *CompletionOptions) Validate() error {
	if !slices.Contains(completionShells, o.Shell) {
		return fmt.Errorf("unsupported shell %q: use one of %q", o.Shell, completionShells)
	}
	return nil
}

// Run writes the script.
func (o *CompletionOptions) Run(ctx context.Context) error {
	desc := !o.NoDescriptions
	switch o.Shell {
	case "bash":
		return o.root.GenBashCompletionV2(o.Out, desc)
	case "zsh":
		if desc {
			return o.root.GenZshCompletion(o.Out)
		}
		return o.root.GenZshCompletionNoDesc(o.Out)
	case "fish":
		return o.root.GenFishCompletion(o.Out, desc)
	default:
		if desc {
			return o.root.GenPowerShellCompletionWithDesc(o.Out)
		}
		return o.root.GenPowerShellCompletion(o.Out)
	}
}
