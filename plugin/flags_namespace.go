package plugin

import (
	"errors"
	"fmt"

	"github.com/spf13/pflag"
)

// namespaceFlags is where a command works: the namespace of -n or the
// kubeconfig context, and, for commands that have -A, every namespace.
type namespaceFlags struct {
	// Namespace is set by complete: -n, else the context's namespace.
	Namespace     string
	AllNamespaces bool
}

// addAllNamespacesFlag adds -A, --all-namespaces (-n is the root's).
func (n *namespaceFlags) addAllNamespacesFlag(fl *pflag.FlagSet, usage string) {
	fl.BoolVarP(&n.AllNamespaces, "all-namespaces", "A", n.AllNamespaces, usage)
}

// complete reads the namespace from -n or the kubeconfig.
func (n *namespaceFlags) complete(f *Factory) error {
	ns, _, err := f.Namespace()
	if err != nil {
		return err
	}
	n.Namespace = ns
	return nil
}

// listNamespace is the namespace to list in: "" (every one) with -A.
func (n *namespaceFlags) listNamespace() string {
	if n.AllNamespaces {
		return ""
	}
	return n.Namespace
}

// where names the namespaces listed, for "No ... found" messages.
func (n *namespaceFlags) where() string {
	if n.AllNamespaces {
		return "in any namespace"
	}
	return fmt.Sprintf("in %s namespace", n.Namespace)
}

// requireAll checks -A on commands where it widens --all only.
func (n *namespaceFlags) requireAll(all bool) error {
	if n.AllNamespaces && !all {
		return errors.New("--all-namespaces needs --all")
	}
	return nil
}
