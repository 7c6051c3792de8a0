package plugin

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"

	"github.com/kubectl-acme/kubectl-acme/acme"
	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/store"
)

// Shell completion. `kubectl acme completion SHELL` and kubectl's plugin
// completion (kubectl_complete-acme) both end in cobra's hidden __complete
// command, which calls the functions registered here. Names of Issuers and
// Certificates come from the cluster: a metadata-only list of the labelled
// ConfigMaps, under a short timeout so that a slow or unreachable cluster
// never hangs the shell. Errors go to stderr, which shells discard, and
// complete nothing.

// completionTimeout bounds each list made for a completion.
const completionTimeout = 5 * time.Second

var (
	configMaps     = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	namespaces     = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	ingressClasses = schema.GroupVersionResource{Group: "networking.k8s.io", Version: "v1", Resource: "ingressclasses"}
	gateways       = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "gateways"}
)

// registerRootCompletion completes the flags every command has.
func registerRootCompletion(cmd *cobra.Command, f *Factory) {
	mustRegister(cmd, "namespace", f.completeNamespaces)
	mustRegister(cmd, "cluster-resource-namespace", f.completeNamespaces)
	mustRegister(cmd, "context", f.completeContexts)
}

// registerCreateIssuerCompletion completes `create issuer` flags; NAME is
// new, so nothing is offered for it.
func registerCreateIssuerCompletion(cmd *cobra.Command, f *Factory) {
	cmd.ValidArgsFunction = cobra.NoFileCompletions
	var servers []cobra.Completion
	for _, name := range []string{"letsencrypt", "letsencrypt-staging"} {
		servers = append(servers, cobra.CompletionWithDesc(name, acme.ResolveServer(name)))
	}
	mustRegister(cmd, "server", fixedCompletions(servers...))
	mustRegister(cmd, "ingress-class", f.completeIngressClasses)
	mustRegister(cmd, "gateway", f.completeGateways)
	mustRegister(cmd, "ca-bundle", cobra.FixedCompletions([]cobra.Completion{"pem", "crt"}, cobra.ShellCompDirectiveFilterFileExt))
}

// registerIssueCompletion completes `issue`: NAME from the existing
// Certificates (to re-issue one), --issuer from the Issuers, or the
// ClusterIssuers with --cluster-issuer.
func registerIssueCompletion(cmd *cobra.Command, f *Factory) {
	cmd.ValidArgsFunction = f.completeCertificates
	mustRegister(cmd, "issuer", f.completeIssuers)
	mustRegister(cmd, "key-algorithm", fixedCompletions("rsa", "ecdsa"))
	mustRegister(cmd, "key-encoding", fixedCompletions("PKCS1", "PKCS8"))
	mustRegister(cmd, "key-size", fixedCompletions("2048", "3072", "4096", "256", "384"))
}

// mustRegister registers a flag's completion. It fails only for a flag
// that does not exist, a mistake in this file that every test building
// the command tree catches.
func mustRegister(cmd *cobra.Command, flag string, fn cobra.CompletionFunc) {
	if err := cmd.RegisterFlagCompletionFunc(flag, fn); err != nil {
		panic(fmt.Sprintf("%s: %v", cmd.Name(), err))
	}
}

// fixedCompletions offers the choices (each may carry a description after
// a tab) that start with the word being completed.
func fixedCompletions(choices ...cobra.Completion) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		var out []cobra.Completion
		for _, c := range choices {
			if strings.HasPrefix(c, toComplete) {
				out = append(out, c)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeCertificates offers the names of the namespace's Certificates,
// described by their names (domains), for the first argument.
func (f *Factory) completeCertificates(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ns, _, err := f.Namespace()
	if err != nil {
		return completionError(err)
	}
	items, err := f.listForCompletion(cmd, configMaps, ns, store.CertificateSelector)
	if err != nil {
		return completionError(err)
	}
	return labelledNames(items, toComplete, store.AnnotationDomains), cobra.ShellCompDirectiveNoFileComp
}

// completeIssuers offers the names of the namespace's Issuers, or of the
// ClusterIssuers when --cluster-issuer is set, described by their server.
func (f *Factory) completeIssuers(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	kind, ns := certmanager.KindIssuer, ""
	if cluster, _ := cmd.Flags().GetBool("cluster-issuer"); cluster {
		kind, ns = certmanager.KindClusterIssuer, f.ClusterNamespace
	} else {
		var err error
		if ns, _, err = f.Namespace(); err != nil {
			return completionError(err)
		}
	}
	selector := store.LabelManagedBy + "=" + store.ManagedBy + "," + store.LabelKind + "=" + kind
	items, err := f.listForCompletion(cmd, configMaps, ns, selector)
	if err != nil {
		return completionError(err)
	}
	return labelledNames(items, toComplete, store.AnnotationServer), cobra.ShellCompDirectiveNoFileComp
}

// completeNamespaces offers namespace names; users who may not list
// namespaces get none.
func (f *Factory) completeNamespaces(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	items, err := f.listForCompletion(cmd, namespaces, "", "")
	if err != nil {
		return completionError(err)
	}
	return objectNames(items, toComplete), cobra.ShellCompDirectiveNoFileComp
}

// completeIngressClasses offers the cluster's IngressClasses.
func (f *Factory) completeIngressClasses(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	items, err := f.listForCompletion(cmd, ingressClasses, "", "")
	if err != nil {
		return completionError(err)
	}
	return objectNames(items, toComplete), cobra.ShellCompDirectiveNoFileComp
}

// completeGateways offers the cluster's Gateways as NAMESPACE/NAME, for
// --gateway; nothing where the Gateway API is not installed.
func (f *Factory) completeGateways(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	items, err := f.listForCompletion(cmd, gateways, "", "")
	if err != nil {
		return completionError(err)
	}
	for i := range items {
		items[i].Name = items[i].Namespace + "/" + items[i].Name
	}
	return objectNames(items, toComplete), cobra.ShellCompDirectiveNoFileComp
}

// completeContexts offers the kubeconfig's contexts.
func (f *Factory) completeContexts(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	cfg, err := f.ConfigFlags.ToRawKubeConfigLoader().RawConfig()
	if err != nil {
		return completionError(err)
	}
	var out []cobra.Completion
	for name := range cfg.Contexts {
		if strings.HasPrefix(name, toComplete) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out, cobra.ShellCompDirectiveNoFileComp
}

// listForCompletion lists the metadata of a resource in ns ("" for all or
// a cluster-scoped resource), bounded by completionTimeout.
func (f *Factory) listForCompletion(cmd *cobra.Command, gvr schema.GroupVersionResource, ns, selector string) ([]metav1.PartialObjectMetadata, error) {
	cfg, err := f.RESTConfig()
	if err != nil {
		return nil, err
	}
	cfg.Timeout = completionTimeout
	mc, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, completionTimeout)
	defer cancel()
	list, err := mc.Resource(gvr).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", gvr.Resource, err)
	}
	return list.Items, nil
}

// labelledNames returns the names in the objects' acme.kubectl.io/name
// label that start with prefix, sorted, each described by an annotation.
func labelledNames(items []metav1.PartialObjectMetadata, prefix, descAnnotation string) []cobra.Completion {
	var out []cobra.Completion
	for _, it := range items {
		name := it.Labels[store.LabelName]
		if name == "" || !strings.HasPrefix(name, prefix) {
			continue
		}
		if desc := it.Annotations[descAnnotation]; desc != "" {
			out = append(out, cobra.CompletionWithDesc(name, desc))
		} else {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// objectNames returns the objects' names that start with prefix, sorted.
func objectNames(items []metav1.PartialObjectMetadata, prefix string) []cobra.Completion {
	var out []cobra.Completion
	for _, it := range items {
		if strings.HasPrefix(it.Name, prefix) {
			out = append(out, it.Name)
		}
	}
	sort.Strings(out)
	return out
}

func completionError(err error) ([]cobra.Completion, cobra.ShellCompDirective) {
	cobra.CompErrorln(err.Error())
	return nil, cobra.ShellCompDirectiveNoFileComp
}
