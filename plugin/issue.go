package plugin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-acme/kubectl-acme/acme"
	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/issuance"
	"github.com/kubectl-acme/kubectl-acme/internal/rbac"
	"github.com/kubectl-acme/kubectl-acme/internal/store"
)

// IssueOptions holds `kubectl acme issue` input.
type IssueOptions struct {
	Name string
	// Ingress, with --ingress, issues what its spec.tls asks for instead
	// (issue_ingress.go).
	Ingress string
	issuerFlags
	Domains      []string
	IPs          []string
	CommonName   string
	SecretName   string
	KeyAlgorithm string
	KeySize      int
	KeyEncoding  string
	ReuseKey     bool
	RenewBefore  time.Duration
	Force        bool
	Profile      string
	Duration     time.Duration
	issueFlags
	namespaceFlags

	factory *Factory
	genericiooptions.IOStreams
}

// NewIssueOptions returns options with defaults.
func NewIssueOptions(streams genericiooptions.IOStreams) *IssueOptions {
	return &IssueOptions{IOStreams: streams, issueFlags: defaultIssueFlags()}
}

// NewCmdIssue builds `kubectl acme issue`.
func NewCmdIssue(f *Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewIssueOptions(streams)
	cmd := &cobra.Command{
		Use:   "issue NAME --issuer ISSUER --domain DOMAIN [--domain DOMAIN...] [--secret SECRET]",
		Short: "Issue a certificate now, solving HTTP-01 challenges inline",
		Long: `Order a certificate from the issuer's ACME CA and store it, with its private key,
in a kubernetes.io/tls Secret (default: NAME) that any Ingress can use.

For each name the command creates a solver pod, service and ingress, waits until
they serve the challenge (checking the URL itself first), lets the CA validate,
finalizes the order with a fresh private key and deletes every solver object again,
also on failure, timeout or Ctrl-C. Progress goes to stderr; the result to stdout.

Run it again with just NAME to re-issue with the stored settings.`,
		Example: `  # Two names into Secret web-tls, through the Issuer "letsencrypt"
  kubectl acme issue web --issuer letsencrypt --domain example.com --domain www.example.com --secret web-tls

  # Check the challenge through a load balancer before DNS points at it
  kubectl acme issue web --issuer letsencrypt --domain example.com --connect-to 203.0.113.10:80

  # Re-issue with the stored settings
  kubectl acme issue web`,
		Args: o.args,
		RunE: runE(f, o),
	}
	fl := cmd.Flags()
	o.issuerFlags.addFlags(fl, "Issuer to use (in the same namespace)")
	fl.StringSliceVarP(&o.Domains, "domain", "d", o.Domains, "DNS name to include (repeatable)")
	fl.StringSliceVar(&o.IPs, "ip", o.IPs, "IP address to include (repeatable; the CA must allow IP identifiers)")
	fl.StringVar(&o.CommonName, "common-name", o.CommonName, "Subject common name; must be one of the names")
	fl.StringVar(&o.SecretName, "secret", o.SecretName, "Secret to store the certificate in (default: NAME)")
	fl.StringVar(&o.KeyAlgorithm, "key-algorithm", o.KeyAlgorithm, "Private key algorithm: rsa or ecdsa (default rsa)")
	fl.IntVar(&o.KeySize, "key-size", o.KeySize, "Key size: 2048, 3072 or 4096 for RSA; 256 or 384 for ECDSA")
	fl.StringVar(&o.KeyEncoding, "key-encoding", o.KeyEncoding, "Private key encoding: PKCS1 or PKCS8 (default PKCS1)")
	fl.BoolVar(&o.ReuseKey, "reuse-key", o.ReuseKey, "Keep the Secret's existing private key (rotationPolicy: Never)")
	fl.DurationVar(&o.RenewBefore, "renew-before", o.RenewBefore, "Renew this long before expiry (default: when a third of the lifetime remains)")
	fl.BoolVar(&o.Force, "force", o.Force, "Overwrite the Secret even if kubectl-acme did not create it")
	fl.StringVar(&o.Profile, "profile", o.Profile, "ACME profile to order with (kubectl acme get profiles lists them); default: the issuer's")
	fl.DurationVar(&o.Duration, "duration", o.Duration, "Ask the CA for this lifetime (only CAs that honour an order's notAfter)")
	o.issueFlags.addFlags(fl)
	o.addIngressFlag(cmd)
	registerIssueCompletion(cmd, f)
	return cmd
}

// Complete takes NAME (none with --ingress) and fills in the namespace.
func (o *IssueOptions) Complete(f *Factory, cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		o.Name = args[0]
	}
	o.factory = f
	return o.complete(f)
}

// Validate checks flags without touching the cluster.
func (o *IssueOptions) Validate() error {
	if o.Ingress != "" {
		return o.validateIngress()
	}
	if err := certmanager.ValidateName("certificate", o.Name); err != nil {
		return err
	}
	if err := o.issueFlags.validate(); err != nil {
		return err
	}
	if err := o.issuerFlags.validate(); err != nil {
		return err
	}
	if err := notNegative("--duration", o.Duration); err != nil {
		return err
	}
	if err := notNegative("--renew-before", o.RenewBefore); err != nil {
		return err
	}
	if o.newSpec() {
		spec := o.spec()
		if err := certmanager.ValidateCertificateSpec(&spec); err != nil {
			return err
		}
	}
	return nil
}

// newSpec reports whether flags describe the certificate; otherwise the
// stored Certificate is re-issued.
func (o *IssueOptions) newSpec() bool {
	return o.Issuer != "" || len(o.Domains) > 0 || len(o.IPs) > 0
}

func (o *IssueOptions) spec() certmanager.CertificateSpec {
	s := certmanager.CertificateSpec{
		SecretName:  o.SecretName,
		CommonName:  o.CommonName,
		DNSNames:    append([]string(nil), o.Domains...),
		IPAddresses: append([]string(nil), o.IPs...),
		IssuerRef:   o.ref(),
	}
	if s.SecretName == "" {
		s.SecretName = o.Name
	}
	if o.KeyAlgorithm != "" || o.KeySize != 0 || o.KeyEncoding != "" || o.ReuseKey {
		s.PrivateKey = &certmanager.CertificatePrivateKey{Algorithm: strings.ToUpper(o.KeyAlgorithm), Size: o.KeySize, Encoding: strings.ToUpper(o.KeyEncoding)}
		if o.ReuseKey {
			s.PrivateKey.RotationPolicy = "Never"
		}
	}
	if o.RenewBefore > 0 {
		s.RenewBefore = &metav1.Duration{Duration: o.RenewBefore}
	}
	if o.Duration > 0 {
		s.Duration = &metav1.Duration{Duration: o.Duration}
	}
	return s
}

// Run issues the certificate through the one runner, which gives the
// permission check and the order one --timeout.
func (o *IssueOptions) Run(ctx context.Context) error {
	acme.PreloadSystemRoots()
	if o.Ingress != "" {
		return o.runIngress(ctx)
	}
	st, err := o.store(o.factory)
	if err != nil {
		return err
	}
	lctx, cancel := context.WithTimeout(ctx, o.Timeout)
	cert, iss, err := o.load(lctx, st)
	cancel()
	if err != nil {
		return err
	}
	o.setProfile(cert)
	r := o.runner(st, o.factory, o.ErrOut, 1)
	r.Options.Force = o.Force
	job := &issuance.Job{Cert: cert, Issuer: iss, Prepare: o.preflight(st)}
	var res issuance.Outcome
	r.Run(ctx, []*issuance.Job{job}, func(out issuance.Outcome) { res = out })
	if res.Err != nil {
		return fmt.Errorf("certificate %q: %w", o.Name, res.Err)
	}
	fmt.Fprintln(o.Out, issuedLine(job.Cert))
	return nil
}

// setProfile asks for --profile's ACME profile, if given, in cert's
// annotation, as the issuer's profile is overridden per certificate.
func (o *IssueOptions) setProfile(cert *certmanager.Certificate) {
	if o.Profile == "" {
		return
	}
	if cert.Annotations == nil {
		cert.Annotations = map[string]string{}
	}
	cert.Annotations[certmanager.AnnotationProfile] = o.Profile
}

// preflight fails fast, before anything is created, when permissions are
// missing, and reads the issuer when load could not.
func (o *IssueOptions) preflight(st *store.Store) func(ctx context.Context, j *issuance.Job) (string, error) {
	return func(ctx context.Context, j *issuance.Job) (string, error) {
		ref := j.Cert.Spec.IssuerRef
		cluster := ref.Kind == certmanager.KindClusterIssuer
		var scope rbac.Scope
		if j.Issuer != nil {
			scope = rbac.IssuerScope(st.ClusterNamespace, o.Namespace, j.Issuer, j.Cert)
		} else {
			scope, j.Issuer = rbac.AccessScope(ctx, st, o.Namespace, ref.Name, cluster, j.Cert)
		}
		if err := o.checkAccess(ctx, st, scope, ref, rbac.Issue); err != nil {
			return "", err
		}
		// A nil Issuer is read again by the runner, for the reason it
		// could not be read.
		return "", nil
	}
}

// checkAccess fails, before anything is created, when the user lacks a
// permission that cmds (issuing through ref with scope) need, and keeps
// the IngressClass lookups from reads the review shows would be forbidden.
func (o *IssueOptions) checkAccess(ctx context.Context, st *store.Store, scope rbac.Scope, ref certmanager.IssuerRef, cmds ...rbac.Command) error {
	cluster := ref.Kind == certmanager.KindClusterIssuer
	scope.SolverTraffic = scope.SolverTraffic || o.AllowSolverTraffic
	rules, err := preflightRules(ctx, st.Client, scope, roleHint(o.Namespace, ref.Name, cluster), cmds...)
	if err != nil {
		return err
	}
	rbac.DenyIngressClassReads(o.classes, rules)
	return nil
}

// load reads the stored Certificate, or makes it from the flags, and, when
// the flags name an Issuer of the namespace, that Issuer with it in one
// request; iss is nil when it is still to be read.
func (o *IssueOptions) load(ctx context.Context, st *store.Store) (cert *certmanager.Certificate, iss *certmanager.Issuer, err error) {
	listed := false
	if o.newSpec() && !o.ClusterIssuer {
		cert, iss, err = st.GetCertificateAndIssuer(ctx, o.Namespace, o.Name, o.Issuer)
		// Listing is an optimization the minimal Role need not grant.
		listed = !apierrors.IsForbidden(err)
		if listed && err == nil && cert == nil {
			err = fmt.Errorf("certificate %q %w in namespace %q", o.Name, store.ErrNotFound, o.Namespace)
		}
	}
	if !listed {
		cert, err = st.GetCertificate(ctx, o.Namespace, o.Name)
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		if !o.newSpec() {
			return nil, nil, fmt.Errorf("certificate %q does not exist in namespace %q: give --issuer and --domain to create it", o.Name, o.Namespace)
		}
		cert = &certmanager.Certificate{}
		cert.APIVersion, cert.Kind = certmanager.GroupVersion, certmanager.KindCertificate
		cert.Name, cert.Namespace = o.Name, o.Namespace
		cert.Spec = o.spec()
	case err != nil:
		return nil, nil, err
	case o.newSpec():
		cert.Spec = o.spec()
	}
	return cert, iss, nil
}
