package plugin

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-acme/kubectl-acme/acme"
	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/issuance"
	"github.com/kubectl-acme/kubectl-acme/internal/manifest"
	"github.com/kubectl-acme/kubectl-acme/internal/store"
	"github.com/kubectl-acme/kubectl-acme/solver"
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
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(f); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
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
func (o *ApplyOptions) Complete(f *Factory) error {
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

// applyPlan is what apply will do, in order.
type applyPlan struct {
	issuers []*manifest.Object
	// storedIssuers are Issuers not in the input whose solvers a legacy
	// Certificate extends; they are saved, not registered again.
	storedIssuers []*certmanager.Issuer
	certs         []*manifest.Object
	notes         []string
}

// issuerKey identifies an Issuer or ClusterIssuer.
func issuerKey(kind, ns, name string) string {
	if kind == certmanager.KindClusterIssuer {
		ns = ""
	}
	return kind + "/" + ns + "/" + name
}

func certIssuerKey(c *certmanager.Certificate) string {
	kind := c.Spec.IssuerRef.Kind
	if kind == "" {
		kind = certmanager.KindIssuer
	}
	return issuerKey(kind, c.Namespace, c.Spec.IssuerRef.Name)
}

// planApply orders the objects (Issuers first, in input order) and merges
// legacy Certificates' solvers into the Issuers of the input. It returns
// the Certificates whose Issuer is not in the input, for the caller to
// look up.
func planApply(objs []*manifest.Object) (*applyPlan, map[string][]*manifest.Object, error) {
	p := &applyPlan{}
	inInput := map[string]*certmanager.Issuer{}
	for _, o := range objs {
		if o.Issuer != nil {
			p.issuers = append(p.issuers, o)
			inInput[issuerKey(o.Kind, o.Issuer.Namespace, o.Issuer.Name)] = o.Issuer
		}
	}
	external := map[string][]*manifest.Object{}
	for _, o := range objs {
		if o.Certificate == nil {
			continue
		}
		p.certs = append(p.certs, o)
		key := certIssuerKey(o.Certificate)
		iss := inInput[key]
		if iss == nil {
			external[key] = append(external[key], o)
			continue
		}
		if len(o.LegacySolvers) > 0 {
			n, err := manifest.MergeSolvers(iss, o.LegacySolvers)
			if err != nil {
				return nil, nil, fmt.Errorf("%s (%s): %w", o, o.Location, err)
			}
			if n > 0 {
				p.notes = append(p.notes, legacyNote(iss, o, n))
			}
		}
	}
	return p, external, nil
}

func legacyNote(iss *certmanager.Issuer, o *manifest.Object, n int) string {
	return fmt.Sprintf("%s: added %d solver(s) from certificate/%s's spec.acme.config (cert-manager v0.11 moved per-domain solver settings to the issuer)",
		kindName(iss), n, o.Name())
}

func kindName(iss *certmanager.Issuer) string {
	return strings.ToLower(iss.Kind) + "/" + iss.Name
}

// Run applies the manifests.
func (o *ApplyOptions) Run(ctx context.Context) error {
	for _, s := range append(o.decoded.Notes, o.decoded.Skipped...) {
		fmt.Fprintln(o.ErrOut, "note:", s)
	}
	if len(o.decoded.Objects) == 0 {
		fmt.Fprintln(o.ErrOut, "nothing to issue")
		return nil
	}
	plan, external, err := planApply(o.decoded.Objects)
	if err != nil {
		return err
	}
	if o.DryRun == dryRunClient {
		return o.runClientDryRun(plan, external)
	}
	st, err := o.store(o.factory)
	if err != nil {
		return err
	}

	// Everything that can fail without the CA is checked before anything
	// changes: issuers of the Certificates, solvers for every name.
	issuers := map[string]*certmanager.Issuer{}
	for _, obj := range plan.issuers {
		issuers[issuerKey(obj.Kind, obj.Issuer.Namespace, obj.Issuer.Name)] = obj.Issuer
	}
	var problems []string
	for key, certs := range external {
		ref := certs[0].Certificate.Spec.IssuerRef
		iss, err := st.GetIssuer(ctx, certs[0].Certificate.Namespace, ref.Name, ref.Kind == certmanager.KindClusterIssuer)
		if err != nil {
			for _, c := range certs {
				problems = append(problems, fmt.Sprintf("%s (%s, %s): %v", c, c.File, c.Location, err))
			}
			continue
		}
		issuers[key] = iss
		merged := 0
		for _, c := range certs {
			if len(c.LegacySolvers) == 0 {
				continue
			}
			n, err := manifest.MergeSolvers(iss, c.LegacySolvers)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s (%s, %s): %v", c, c.File, c.Location, err))
				continue
			}
			if n > 0 {
				merged += n
				plan.notes = append(plan.notes, legacyNote(iss, c, n))
			}
		}
		if merged > 0 {
			plan.storedIssuers = append(plan.storedIssuers, iss)
		}
	}
	for _, c := range plan.certs {
		iss := issuers[certIssuerKey(c.Certificate)]
		if iss == nil {
			continue
		}
		if _, err := certmanager.SolversFor(iss, c.Certificate); err != nil {
			problems = append(problems, fmt.Sprintf("%s (%s, %s): %v", c, c.File, c.Location, err))
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return fmt.Errorf("nothing was changed:\n%s", strings.Join(problems, "\n"))
	}
	for _, n := range plan.notes {
		fmt.Fprintln(o.ErrOut, "note:", n)
	}
	if o.DryRun == dryRunServer {
		return o.runServerDryRun(ctx, st, plan, issuers)
	}

	if o.ApplyIngress {
		if err := applyShims(ctx, st, o.decoded.Shims, o.namespace); err != nil {
			return err
		}
	}
	failed := 0
	badIssuers := map[string]error{}
	for _, obj := range plan.issuers {
		iss := obj.Issuer
		if err := o.registerIssuer(ctx, st, iss); err != nil {
			failed++
			badIssuers[issuerKey(iss.Kind, iss.Namespace, iss.Name)] = err
			fmt.Fprintf(o.ErrOut, "error: %s: %v\n", kindName(iss), err)
			continue
		}
		acct := iss.Status.ACME
		o.printf("%s registered (account %s, %s)\n", kindName(iss), acct.URI, acct.AccountStatus)
	}
	for _, iss := range plan.storedIssuers {
		if err := st.SaveIssuer(ctx, iss); err != nil {
			failed++
			badIssuers[issuerKey(iss.Kind, iss.Namespace, iss.Name)] = err
			fmt.Fprintf(o.ErrOut, "error: %s: %v\n", kindName(iss), err)
			continue
		}
		o.printf("%s configured (solvers of legacy certificates added)\n", kindName(iss))
	}

	certs := make([]*certmanager.Certificate, len(plan.certs))
	for i, c := range plan.certs {
		certs[i] = c.Certificate
	}
	failed += o.issueAll(ctx, st, certs, issuers, badIssuers)
	if !o.ApplyIngress {
		for _, sh := range o.decoded.Shims {
			fmt.Fprintln(o.ErrOut, "note:", shimHint(sh))
		}
	}
	if failed > 0 {
		total := len(plan.issuers) + len(plan.storedIssuers) + len(plan.certs)
		return &ExitError{Code: 1, Err: fmt.Errorf("%d of %d objects failed", failed, total)}
	}
	return nil
}

func (o *ApplyOptions) printf(format string, args ...any) {
	o.outMu.Lock()
	defer o.outMu.Unlock()
	fmt.Fprintf(o.Out, format, args...)
}

func (o *ApplyOptions) registerIssuer(ctx context.Context, st *store.Store, iss *certmanager.Issuer) error {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	err := issuance.RegisterIssuer(ctx, issuance.Options{Store: st, UserAgent: o.factory.UserAgent}, iss, o.agree)
	if errors.Is(err, acme.ErrTermsNotAgreed) && !o.interact && !o.AgreeTOS {
		return fmt.Errorf("%w: read them and re-run with --agree-tos", err)
	}
	return err
}

// agree asks on a terminal, or uses --agree-tos.
func (o *ApplyOptions) agree(tos string) bool {
	return agreeToTerms(tos, o.AgreeTOS, o.interact, o.In, o.ErrOut)
}

// issueAll issues the certificates through the one runner, from the
// issuers already read (by issuerKey; others are read as needed), and
// returns how many failed. A Certificate whose issuer failed to register
// is not issued.
func (o *ApplyOptions) issueAll(ctx context.Context, st *store.Store, certs []*certmanager.Certificate, issuers map[string]*certmanager.Issuer, badIssuers map[string]error) int {
	jobs := make([]*issuance.Job, len(certs))
	for i, c := range certs {
		reconcile := issuance.Reconcile(st, c, o.Reissue)
		jobs[i] = &issuance.Job{Cert: c, Issuer: issuers[certIssuerKey(c)], Prepare: func(ctx context.Context, j *issuance.Job) (string, error) {
			if badIssuers[certIssuerKey(c)] != nil {
				return "", fmt.Errorf("not issued: its issuer %s failed (see above)", store.IssuerRefString(c.Spec.IssuerRef))
			}
			return reconcile(ctx, j)
		}}
	}
	r := o.runner(st, o.factory, o.ErrOut, len(certs))
	r.Options.Force = o.Force
	return r.Run(ctx, jobs, func(out issuance.Outcome) {
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
	})
}

func (o *ApplyOptions) runClientDryRun(plan *applyPlan, external map[string][]*manifest.Object) error {
	for _, n := range plan.notes {
		fmt.Fprintln(o.ErrOut, "note:", n)
	}
	for _, obj := range plan.issuers {
		o.printf("%s valid (dry run)\n", kindName(obj.Issuer))
	}
	for _, c := range plan.certs {
		note := ""
		if len(external[certIssuerKey(c.Certificate)]) > 0 {
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

// runServerDryRun checks, without changing anything, what the cluster
// decides: Secrets the Issuers need, and each Certificate's Secret.
func (o *ApplyOptions) runServerDryRun(ctx context.Context, st *store.Store, plan *applyPlan, issuers map[string]*certmanager.Issuer) error {
	var problems []string
	fail := func(what string, err error) { problems = append(problems, fmt.Sprintf("%s: %v", what, err)) }
	for _, obj := range plan.issuers {
		before := len(problems)
		iss := obj.Issuer
		a := iss.Spec.ACME
		if a.DisableAccountKeyGeneration {
			if _, err := st.ExistingAccountKey(ctx, iss); err != nil {
				fail(kindName(iss), fmt.Errorf("disableAccountKeyGeneration is set, so the account key must exist: %w", err))
			}
		}
		if a.ExternalAccountBinding != nil {
			if _, err := st.ExternalAccountBinding(ctx, iss); err != nil {
				fail(kindName(iss), err)
			}
		}
		ns := st.IssuerNamespace(iss)
		if iss.IsCluster() {
			if _, err := st.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); apierrors.IsNotFound(err) {
				fail(kindName(iss), fmt.Errorf("namespace %q, where ClusterIssuers and their account keys are kept (--cluster-resource-namespace), does not exist: create it", ns))
			}
		}
		if err := o.canWrite(ctx, st, ns, "configmaps"); err != nil {
			fail(kindName(iss), err)
		}
		if len(problems) == before {
			o.printf("%s valid (dry run: server)\n", kindName(iss))
		}
	}
	for _, c := range plan.certs {
		before := len(problems)
		cert := c.Certificate
		if err := st.CheckSecretWritable(ctx, cert, o.Force); err != nil {
			fail("certificate/"+cert.Name, err)
		}
		if err := o.canWrite(ctx, st, cert.Namespace, "secrets"); err != nil {
			fail("certificate/"+cert.Name, err)
		}
		iss := issuers[certIssuerKey(cert)]
		for _, sv := range iss.Spec.ACME.Solvers {
			if sv.IsGatewayHTTPRoute() {
				if err := solver.HTTPRoutesServed(ctx, st.Dynamic, cert.Namespace); err != nil {
					fail("certificate/"+cert.Name, err)
				}
				continue
			}
			if sv.HTTP01 == nil || sv.HTTP01.Ingress == nil || sv.HTTP01.Ingress.Name == "" {
				continue
			}
			name := sv.HTTP01.Ingress.Name
			if _, err := st.Client.NetworkingV1().Ingresses(cert.Namespace).Get(ctx, name, metav1.GetOptions{}); err != nil {
				if apierrors.IsNotFound(err) {
					err = fmt.Errorf("ingress %s/%s (http01.ingress.name of %s) does not exist", cert.Namespace, name, kindName(iss))
				}
				fail("certificate/"+cert.Name, err)
			}
		}
		// The admission chain and the NetworkPolicies judge the solver
		// objects, as issue does before ordering.
		if len(problems) == before {
			opts := o.options(st, o.factory)
			if err := issuance.Admit(ctx, opts, iss, cert); err != nil {
				fail("certificate/"+cert.Name, err)
			}
		}
		if len(problems) == before {
			o.printf("certificate/%s valid (dry run: server)\n", cert.Name)
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%d problem(s) found (dry run, nothing was changed):\n%s", len(problems), strings.Join(problems, "\n"))
	}
	return nil
}

// canWrite asks the API server whether the user may create and update
// resource in ns.
func (o *ApplyOptions) canWrite(ctx context.Context, st *store.Store, ns, resource string) error {
	for _, verb := range []string{"create", "update"} {
		r, err := st.Client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: ns, Verb: verb, Resource: resource,
			}},
		}, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("review access: %w", err)
		}
		if !r.Status.Allowed {
			return fmt.Errorf("forbidden: you may not %s %s in namespace %q", verb, resource, ns)
		}
	}
	return nil
}
