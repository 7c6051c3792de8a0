// Package plugin is kubectl-acme's command layer: cobra commands that turn
// flags into options and call the libraries in acme/ and solver/.
package plugin

import (
	"errors"
	"net/http"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubectl-acme/kubectl-acme/internal/store"
)

// BuildInfo is stamped into the binary at release time.
type BuildInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Date    string `json:"date"`
	// Image is the release's container image by digest (hack/release.sh
	// stamps it); `schedule` needs --image without it.
	Image string `json:"image,omitempty"`
}

// ExitError carries a specific exit code out of a command; main exits
// with it.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// ExitCode is the process exit code for err.
func ExitCode(err error) int {
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return 1
}

// NewCmdACME builds the kubectl-acme command tree.
func NewCmdACME(streams genericiooptions.IOStreams, build BuildInfo) *cobra.Command {
	cf := genericclioptions.NewConfigFlags(true)
	f := &Factory{ConfigFlags: cf, UserAgent: "kubectl-acme/" + build.Version}
	cmd := &cobra.Command{
		Use:   "kubectl-acme",
		Short: "Issue and renew ACME (Let's Encrypt) certificates for Ingresses, inline, without a controller",
		Long: `kubectl acme gets browser-trusted certificates from an ACME CA such as Let's Encrypt
into ordinary kubernetes.io/tls Secrets. It solves HTTP-01 challenges from your
terminal with your own kubeconfig: it creates a solver pod, service and ingress,
checks that they are reachable, lets the CA validate them, and deletes them again.
No CRDs, no controller and no cluster-admin are needed.`,
		Example: `  # Register an account with Let's Encrypt staging
  kubectl acme create issuer staging --server letsencrypt-staging --email ops@example.com --ingress-class nginx

  # Get a certificate for two names into the Secret "web-tls"
  kubectl acme issue web --issuer staging --domain example.com --domain www.example.com --secret web-tls

  # See every certificate and when it needs renewing
  kubectl acme status -A`,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl acme"},
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.SetIn(streams.In)
	cmd.SetOut(streams.Out)
	cmd.SetErr(streams.ErrOut)
	// create issuer's own --server and --cluster shadow these two kubeconfig
	// flags in that command only (cert-manager's names win there).
	cf.AddFlags(cmd.PersistentFlags())
	addLogFlags(cmd.PersistentFlags(), streams.ErrOut)
	cmd.PersistentFlags().StringVar(&f.ClusterNamespace, "cluster-resource-namespace", store.DefaultClusterNamespace,
		"Namespace holding ClusterIssuers and their account keys")

	create := &cobra.Command{Use: "create", Short: "Create an ACME issuer"}
	create.AddCommand(NewCmdCreateIssuer(f, streams))
	get := &cobra.Command{Use: "get", Short: "List ACME issuers and the profiles their CAs offer"}
	get.AddCommand(NewCmdGetIssuers(f, streams), NewCmdGetProfiles(f, streams))
	update := &cobra.Command{Use: "update", Short: "Update an issuer's ACME account"}
	update.AddCommand(NewCmdUpdateIssuer(f, streams))
	del := &cobra.Command{Use: "delete", Short: "Delete an issuer or a certificate"}
	del.AddCommand(NewCmdDeleteIssuer(f, streams), NewCmdDeleteCertificate(f, streams))
	cmd.AddCommand(create, get, update, del,
		NewCmdIssue(f, streams),
		NewCmdApply(f, streams),
		NewCmdExport(f, streams),
		NewCmdRenew(f, streams),
		NewCmdRevoke(f, streams),
		NewCmdStatus(f, streams),
		NewCmdCleanup(f, streams),
		NewCmdCheck(f, streams),
		NewCmdSchedule(f, streams, build),
		NewCmdUnschedule(f, streams),
		NewCmdVersion(f, streams, build),
		NewCmdCompletion(f, streams),
	)
	cmd.CompletionOptions.DisableDefaultCmd = true
	registerRootCompletion(cmd, f)
	return cmd
}

// Factory builds clients from the standard kubectl flags.
type Factory struct {
	ConfigFlags      *genericclioptions.ConfigFlags
	ClusterNamespace string
	UserAgent        string
	// Workers is how many issuances run at once, to size the client's rate
	// limit.
	Workers int
}

// Namespace is the namespace from -n or the kubeconfig context, and
// whether -n was given.
func (f *Factory) Namespace() (string, bool, error) {
	return f.ConfigFlags.ToRawKubeConfigLoader().Namespace()
}

// RESTConfig is the client configuration.
func (f *Factory) RESTConfig() (*rest.Config, error) {
	cfg, err := f.ConfigFlags.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	cfg.UserAgent = f.UserAgent
	// An issuance makes a few dozen requests in a burst; client-go's
	// default 5 QPS would add seconds. Concurrent issuance (apply) scales
	// it, or the client-side limit, not the API server, sets the pace.
	workers := max(f.Workers, 1)
	cfg.QPS, cfg.Burst = float32(50*workers), 100*workers
	// Ride out an API server restart or a dropped connection.
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return &retryTransport{rt: rt, budget: apiRetryBudget} })
	return cfg, nil
}

// Store returns a store over a fresh clientset.
func (f *Factory) Store() (*store.Store, error) {
	cfg, err := f.RESTConfig()
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &store.Store{Client: cs, Dynamic: dc, ClusterNamespace: f.ClusterNamespace, Cluster: cfg.Host}, nil
}

// isTerminal reports whether w is a terminal.
func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
