// Command gendocs writes kubectl-acme's command reference from its cobra
// command tree: a README.md index and one Markdown file per command,
// replacing every .md file already in DIR.
//
//	go run ./hack/gendocs docs/reference
//
// The output depends only on the source: no dates, and defaults that would
// name this machine's home directory show $HOME. `make verify-docs` checks
// that the checked-in reference is current.
package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-acme/kubectl-acme/plugin"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gendocs DIR")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	files, err := Generate(rootCommand())
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	old, err := filepath.Glob(filepath.Join(dir, "*.md"))
	if err != nil {
		return err
	}
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return err
		}
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// rootCommand builds the command tree as users see it, with defaults that
// do not depend on who runs the generator.
func rootCommand() *cobra.Command {
	// The kubeconfig flags' --cache-dir default is read from HOME (or
	// KUBECACHEDIR) when the tree is built.
	os.Setenv("HOME", "$HOME")
	os.Unsetenv("KUBECACHEDIR")
	streams := genericiooptions.IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: io.Discard}
	root := plugin.NewCmdACME(streams, plugin.BuildInfo{Version: "dev", Commit: "unknown", Date: "unknown"})
	// cobra adds these while executing; the reference documents them too.
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	return root
}

// Generate renders the reference for root and its available subcommands,
// keyed by file name.
func Generate(root *cobra.Command) (map[string][]byte, error) {
	files := map[string][]byte{}
	var index bytes.Buffer
	fmt.Fprintf(&index, "# Command reference\n\n")
	fmt.Fprintf(&index, "Generated from the commands' help by `make docs`; do not edit.\n\n")
	var walk func(c *cobra.Command, depth int)
	walk = func(c *cobra.Command, depth int) {
		c.InitDefaultHelpFlag()
		files[fileName(c)] = commandPage(c)
		fmt.Fprintf(&index, "%s- [%s](%s): %s\n", strings.Repeat("  ", depth), c.CommandPath(), fileName(c), c.Short)
		for _, sub := range c.Commands() {
			if documented(sub) {
				walk(sub, depth+1)
			}
		}
	}
	walk(root, 0)
	files["README.md"] = index.Bytes()
	return files, nil
}

func documented(c *cobra.Command) bool {
	return c.IsAvailableCommand() && !c.IsAdditionalHelpTopicCommand()
}

// fileName is the command path with underscores: kubectl_acme_issue.md.
func fileName(c *cobra.Command) string {
	return strings.ReplaceAll(c.CommandPath(), " ", "_") + ".md"
}

func commandPage(c *cobra.Command) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# %s\n\n", c.CommandPath())
	fmt.Fprintf(&b, "%s\n\n", sentence(c.Short))
	if c.Long != "" {
		fmt.Fprintf(&b, "%s\n\n", strings.TrimSpace(c.Long))
	}
	if c.Runnable() {
		fmt.Fprintf(&b, "## Usage\n\n```\n%s\n```\n\n", c.UseLine())
	}
	if len(c.Aliases) > 0 {
		fmt.Fprintf(&b, "Aliases: `%s`\n\n", strings.Join(c.Aliases, "`, `"))
	}
	if c.Example != "" {
		fmt.Fprintf(&b, "## Examples\n\n```sh\n%s\n```\n\n", dedent(c.Example))
	}
	if fs := c.NonInheritedFlags(); fs.HasAvailableFlags() {
		fmt.Fprintf(&b, "## Flags\n\n```\n%s```\n\n", flagUsages(fs))
	}
	if c.HasParent() && c.InheritedFlags().HasAvailableFlags() {
		root := c.Root()
		fmt.Fprintf(&b, "Global flags (kubeconfig, namespace, ...): see [%s](%s#flags).\n\n", root.CommandPath(), fileName(root))
	}
	var subs []*cobra.Command
	for _, sub := range c.Commands() {
		if documented(sub) {
			subs = append(subs, sub)
		}
	}
	if len(subs) > 0 {
		fmt.Fprintf(&b, "## Commands\n\n")
		for _, sub := range subs {
			fmt.Fprintf(&b, "- [%s](%s): %s\n", sub.CommandPath(), fileName(sub), sub.Short)
		}
		fmt.Fprintln(&b)
	}
	if c.HasParent() {
		p := c.Parent()
		fmt.Fprintf(&b, "## See also\n\n- [%s](%s): %s\n", p.CommandPath(), fileName(p), p.Short)
	}
	return append(bytes.TrimRight(b.Bytes(), "\n"), '\n')
}

// flagUsages is pflag's usage table, unwrapped.
func flagUsages(fs *pflag.FlagSet) string {
	return fs.FlagUsagesWrapped(0)
}

// sentence ends s with a full stop.
func sentence(s string) string {
	if s == "" || strings.HasSuffix(s, ".") {
		return s
	}
	return s + "."
}

// dedent removes the indentation that all non-blank lines of s share, and
// surrounding blank lines: help text indents examples by two spaces.
func dedent(s string) string {
	lines := strings.Split(strings.Trim(s, "\n"), "\n")
	indent := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		n := len(l) - len(strings.TrimLeft(l, " \t"))
		if indent < 0 || n < indent {
			indent = n
		}
	}
	for i, l := range lines {
		if len(l) >= indent && indent > 0 {
			lines[i] = l[indent:]
		} else {
			lines[i] = strings.TrimLeft(l, " \t")
		}
	}
	return strings.Join(lines, "\n")
}
