package plugin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-acme/kubectl-acme/acme"
	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/issuance"
	"github.com/kubectl-acme/kubectl-acme/internal/manifest"
	"github.com/kubectl-acme/kubectl-acme/internal/store"
)

// Dry-run modes of apply, as kubectl names them.
const (
	dryRunNone   = "none"
	dryRunClient = "client"
	dryRunServer = "server"
)

// ApplyOptions holds `kubectl acme apply` input.
type ApplyOptions struct {
	Filenames []string
	Recursive bool
	DryRun    string
	AgreeTOS  bool
	Force     bool
	Reissue   bool
	issueFlags
	shimFlags

	namespace  string
	explicitNS bool
	decoded    *manifest.Result
	interact   bool
	factory    *Factory
	outMu      sync.Mutex
	genericiooptions.IOStreams
}

// NewApplyOptions returns options with defaults.
func NewApplyOptions(streams genericiooptions.IOStreams) *ApplyOptions {
	return &ApplyOptions{
		IOStreams:  streams,
		DryRun:     dryRunNone,
		issueFlags: defaultIssueFlags(),
		shimFlags:  shimFlags{DefaultIssuerKind: certmanager.KindIssuer},
	}
}

// NewCmdApply builds `kubectl acme apply`.
func NewCmdApply(f *Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewApplyOptions(streams)
	cmd := &cobra.Command{
		Use:   "apply -f FILENAME [-f FILENAME...] [-R]",
		Short: "Register Issuers and issue Certificates from cert-manager manifests",
		Long: `Read cert-manager Issuer, ClusterIssuer and Certificate manifests (cert-manager.io/v1;
v1alpha2, v1alpha3 and v1beta1, converted as cmctl convert does; or the legacy
certmanager.k8s.io/v1alpha1 form), register the Issuers' ACME accounts and issue the
Certificates inline, several at a time, as 'kubectl acme issue' does.

Ingresses (networking.k8s.io/v1, and the older extensions/v1beta1 and
networking.k8s.io/v1beta1 for their annotations and spec.tls) and Gateways or
ListenerSets annotated for cert-manager's ingress-shim or gateway-shim
(cert-manager.io/issuer, cert-manager.io/cluster-issuer, kubernetes.io/tls-acme with
--default-issuer-name, the legacy certmanager.k8s.io/* names, and the settings
annotations) give one Certificate per TLS entry or listener Secret, made as cert-manager
would make it; --dry-run prints them. The Ingress or Gateway itself is applied only
with --apply-ingress; otherwise apply says which kubectl apply to run. An Ingress
without such annotations has nothing to issue.

Input is YAML (several documents) or JSON, files, directories (their .yaml, .yml and
.json files; -R for subdirectories) or - for stdin; v1 Lists are unpacked. Objects of
other kinds are skipped with a note. Every field cert-manager does not know, or that
kubectl-acme cannot honour, is reported with its file, line, document and field path,
and nothing is changed until the input is free of them.

Issuers are applied first. A Certificate is issued when it is new, when its spec
changed, when its last attempt failed, when it is due for renewal or when its Secret
is missing; otherwise it is left unchanged (--reissue issues it anyway).

A legacy Certificate's spec.acme.config (per-domain ingress class or ingress) is
moved into its Issuer's solvers with a dnsNames selector, as cert-manager v0.11
required; a stored Issuer is updated so.

--dry-run=client checks the manifests only; --dry-run=server also checks, in the
cluster, that each Certificate's issuer exists and selects a solver for every name,
that its Secret may be written, and that Secrets an Issuer refers to exist.`,
		Example: `  # Register the issuer and issue the certificates of a directory
  kubectl acme apply -f manifests/ --agree-tos

  # Check manifests written for cert-manager, without changing anything
  kubectl acme apply -f cert-manager.yaml --dry-run=server

  # From stdin, checking the challenge through a load balancer before DNS points at it
  cat certs.yaml | kubectl acme apply -f - --connect-to 203.0.113.10:80`,
		Args: cobra.NoArgs,
		RunE: runE(f, o),
	}
	fl := cmd.Flags()
	fl.StringSliceVarP(&o.Filenames, "filename", "f", o.Filenames, "File, directory or - (stdin) with manifests (repeatable)")
	fl.BoolVarP(&o.Recursive, "recursive", "R", o.Recursive, "Read directories given with -f recursively")
	fl.StringVar(&o.DryRun, "dry-run", o.DryRun, `"none", "client" (check the manifests) or "server" (also check against the cluster); changes nothing`)
	fl.Lookup("dry-run").NoOptDefVal = dryRunClient
	fl.BoolVar(&o.AgreeTOS, "agree-tos", o.AgreeTOS, "Agree to the CA's terms of service without asking, for new accounts")
	fl.BoolVar(&o.Force, "force", o.Force, "Overwrite Secrets even if kubectl-acme did not create them")
	fl.BoolVar(&o.Reissue, "reissue", o.Reissue, "Issue every Certificate, also those that are valid and unchanged")
	o.issueFlags.addFlags(fl)
	fl.StringVar(&o.DefaultIssuerName, "default-issuer-name", o.DefaultIssuerName, "Issuer of Ingresses annotated only with kubernetes.io/tls-acme: \"true\" (cert-manager's flag of that name)")
	fl.StringVar(&o.DefaultIssuerKind, "default-issuer-kind", o.DefaultIssuerKind, "Kind of --default-issuer-name: Issuer or ClusterIssuer")
	fl.BoolVar(&o.ApplyIngress, "apply-ingress", o.ApplyIngress, "Also apply the Ingresses and Gateways whose annotations ask for certificates (server-side apply), before issuing")
	return cmd
}

// Complete reads and decodes the manifests and fills in the namespace.
func (o *ApplyOptions) Complete(f *Factory, cmd *cobra.Command, args []string) error {
	o.factory = f
	ns, explicit, err := f.Namespace()
	if err != nil {
		return err
	}
	o.namespace, o.explicitNS = ns, explicit
	o.interact = isTerminal(o.In) && isTerminal(o.ErrOut)
	if len(o.Filenames) == 0 {
		return nil
	}
	inputs, err := manifest.ReadInputs(o.Filenames, o.Recursive, o.In)
	if err != nil {
		return err
	}
	o.decoded = manifest.DecodeAllWith(inputs, manifest.Options{Shim: manifest.ShimOptions{DefaultIssuer: o.defaultIssuer()}})
	o.decoded.Errors = append(o.decoded.Errors, manifest.SetNamespaces(o.decoded.Objects, o.namespace, o.explicitNS)...)
	return nil
}

// Validate checks flags and the decoded manifests without touching the
// cluster.
func (o *ApplyOptions) Validate() error {
	if len(o.Filenames) == 0 {
		return errors.New("give the manifests with -f FILE, -f DIR or -f -")
	}
	switch o.DryRun {
	case dryRunNone, dryRunClient, dryRunServer:
	default:
		return fmt.Errorf("--dry-run %q: use none, client or server", o.DryRun)
	}
	if err := o.issueFlags.validate(); err != nil {
		return err
	}
	if err := o.shimFlags.validate(o.decoded); err != nil {
		return err
	}
	if o.decoded == nil {
		return nil
	}
	if errs := o.decoded.Errors; len(errs) > 0 {
		noun := "problems"
		if len(errs) == 1 {
			noun = "problem"
		}
		return fmt.Errorf("%d %s in the manifests; nothing was changed:\n%w", len(errs), noun, errs)
	}
	if len(o.decoded.Objects) == 0 && len(o.decoded.Notes) == 0 {
		return errors.New("the manifests hold no Issuer, ClusterIssuer or Certificate, and no Ingress or Gateway with cert-manager annotations")
	}
	return nil
}

// Run applies the manifests: the plan (internal/issuance) says what,
// the runner issues, and Run reports.
func (o *ApplyOptions) Run(ctx context.Context) error {
	acme.PreloadSystemRoots()
	for _, s := range append(o.decoded.Notes, o.decoded.Skipped...) {
		fmt.Fprintln(o.ErrOut, "note:", s)
	}
	if len(o.decoded.Objects) == 0 {
		fmt.Fprintln(o.ErrOut, "nothing to issue")
		return nil
	}
	plan, err := issuance.NewPlan(o.decoded.Objects)
	if err != nil {
		return err
	}
	if o.DryRun == dryRunClient {
		return o.runClientDryRun(plan)
	}
	st, err := o.store(o.factory)
	if err != nil {
		return err
	}
	// Everything that can fail without the CA is checked before anything
	// changes: issuers of the Certificates, solvers for every name.
	if err := plan.Resolve(ctx, st); err != nil {
		return err
	}
	for _, n := range plan.Notes {
		fmt.Fprintln(o.ErrOut, "note:", n)
	}
	if o.DryRun == dryRunServer {
		return o.runServerDryRun(ctx, st, plan)
	}

	r := o.runner(st, o.factory, o.ErrOut, len(plan.Certs))
	r.Options.Force = o.Force
	// The issuers already stored get their account client and the CA's
	// directory while the input's are registered and the run starts; the
	// input's share the client that registered them.
	for _, iss := range plan.StoredIssuersOfCerts() {
		r.Options.Accounts.Prefetch(ctx, r.Options, iss)
	}
	if o.ApplyIngress {
		if err := issuance.ApplyShims(ctx, st.Dynamic, o.decoded.Shims, o.namespace); err != nil {
			return err
		}
	}
	opts := issuance.Options{Store: st, UserAgent: o.factory.UserAgent, Accounts: r.Options.Accounts}
	failed := 0
	badIssuers := plan.PrepareIssuers(ctx, opts, o.Timeout, o.agree, func(out issuance.IssuerOutcome) {
		if out.Err != nil {
			failed++
			fmt.Fprintf(o.ErrOut, "error: %s: %v\n", issuance.KindName(out.Issuer), o.explainRegistration(out.Err))
			return
		}
		if out.Stored {
			o.printf("%s configured (solvers of legacy certificates added)\n", issuance.KindName(out.Issuer))
			return
		}
		acct := out.Issuer.Status.ACME
		o.printf("%s registered (account %s, %s)\n", issuance.KindName(out.Issuer), acct.URI, acct.AccountStatus)
	})
	failed += r.Run(ctx, plan.Jobs(st, o.Reissue, badIssuers), o.report)
	if !o.ApplyIngress {
		for _, sh := range o.decoded.Shims {
			fmt.Fprintln(o.ErrOut, "note:", shimHint(sh))
		}
	}
	if failed > 0 {
		total := len(plan.Issuers) + len(plan.StoredIssuers) + len(plan.Certs)
		return &ExitError{Code: 1, Err: fmt.Errorf("%d of %d objects failed", failed, total)}
	}
	return nil
}

// report prints how a Certificate's job ended.
func (o *ApplyOptions) report(out issuance.Outcome) {
	o.outMu.Lock()
	defer o.outMu.Unlock()
	switch c := out.Job.Cert; {
	case out.Err != nil:
		fmt.Fprintf(o.ErrOut, "error: certificate %q: %v\n", c.Name, out.Err)
	case out.Skip != "":
		fmt.Fprintf(o.Out, "certificate/%s %s (--reissue to issue anyway)\n", c.Name, out.Skip)
	default:
		fmt.Fprintln(o.Out, issuedLine(c))
	}
}

func (o *ApplyOptions) printf(format string, args ...any) {
	o.outMu.Lock()
	defer o.outMu.Unlock()
	fmt.Fprintf(o.Out, format, args...)
}

// explainRegistration says how to agree to the CA's terms without a
// terminal.
func (o *ApplyOptions) explainRegistration(err error) error {
	if errors.Is(err, acme.ErrTermsNotAgreed) && !o.interact && !o.AgreeTOS {
		return fmt.Errorf("%w: read them and re-run with --agree-tos", err)
	}
	return err
}

// agree asks on a terminal, or uses --agree-tos.
func (o *ApplyOptions) agree(tos string) bool {
	return agreeToTerms(tos, o.AgreeTOS, o.interact, o.In, o.ErrOut)
}

func (o *ApplyOptions) runClientDryRun(plan *issuance.Plan) error {
	for _, n := range plan.Notes {
		fmt.Fprintln(o.ErrOut, "note:", n)
	}
	for _, obj := range plan.Issuers {
		o.printf("%s valid (dry run)\n", issuance.KindName(obj.Issuer))
	}
	for _, c := range plan.Certs {
		note := ""
		if len(plan.External[issuance.CertIssuerKey(c.Certificate)]) > 0 {
			note = fmt.Sprintf("; its issuer %s is not in the input and was not checked (use --dry-run=server)", store.IssuerRefString(c.Certificate.Spec.IssuerRef))
		}
		if c.From == "" {
			o.printf("certificate/%s valid (dry run)%s\n", c.Name(), note)
			continue
		}
		y, err := derivedYAML(c.Certificate)
		if err != nil {
			return err
		}
		o.printf("certificate/%s valid (dry run), made from %s as cert-manager would%s:\n---\n%s", c.Name(), c.From, note, y)
	}
	return nil
}

// runServerDryRun reports the server dry run's verdict on each object.
func (o *ApplyOptions) runServerDryRun(ctx context.Context, st *store.Store, plan *issuance.Plan) error {
	var problems []string
	for _, v := range issuance.ServerDryRun(ctx, o.options(st, o.factory), plan, o.Force) {
		if len(v.Problems) == 0 {
			o.printf("%s valid (dry run: server)\n", v.Object)
			continue
		}
		for _, err := range v.Problems {
			problems = append(problems, fmt.Sprintf("%s: %v", v.Object, err))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%d problem(s) found (dry run, nothing was changed):\n%s", len(problems), strings.Join(problems, "\n"))
	}
	return nil
}
