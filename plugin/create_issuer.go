package plugin

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	xacme "golang.org/x/crypto/acme"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubectl-acme/kubectl-acme/acme"
	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/issuance"
)

// CreateIssuerOptions holds `kubectl acme create issuer` input.
type CreateIssuerOptions struct {
	Name         string
	Server       string
	Email        string
	IngressClass string
	LegacyClass  bool
	// Gateway is [NAMESPACE/]NAME of a Gateway (Gateway API): the solver
	// routes through HTTPRoutes attached to it instead of an Ingress.
	Gateway          string
	AgreeTOS         bool
	CABundleFile     string
	SkipTLSVerify    bool
	Cluster          bool
	PrivateKeySecret string
	Profile          string
	PreferredChain   string
	Timeout          time.Duration
	EABKeyID         string
	EABHMACKey       string
	EABHMACSecret    string
	// IngressPathType is stored as the Issuer's AnnotationIngressPathType.
	IngressPathType string

	namespaceFlags
	caBundle []byte
	interact bool
	factory  *Factory
	genericiooptions.IOStreams
}

// NewCreateIssuerOptions returns options with defaults.
func NewCreateIssuerOptions(streams genericiooptions.IOStreams) *CreateIssuerOptions {
	return &CreateIssuerOptions{IOStreams: streams, Timeout: 2 * time.Minute}
}

// NewCmdCreateIssuer builds `kubectl acme create issuer`.
func NewCmdCreateIssuer(f *Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewCreateIssuerOptions(streams)
	cmd := &cobra.Command{
		Use:   "issuer NAME --server URL --email ADDR [--ingress-class CLASS | --gateway [NAMESPACE/]NAME] [--agree-tos]",
		Short: "Register an ACME account and store it as an Issuer",
		Long: `Register an account with an ACME CA and store it as an Issuer (or, with --cluster,
a ClusterIssuer usable from every namespace).

The account key is kept in a Secret (default: the issuer's name) and is never
replaced: running the command again with an existing key finds the existing
account instead of creating a new one. The CA's terms of service are shown and
must be agreed to, interactively or with --agree-tos.`,
		Example: `  # Let's Encrypt staging, solving HTTP-01 through the nginx ingress class
  kubectl acme create issuer staging --server letsencrypt-staging --email ops@example.com --ingress-class nginx

  # Solving HTTP-01 through HTTPRoutes attached to Gateway "public" in namespace "infra"
  kubectl acme create issuer staging --server letsencrypt-staging --email ops@example.com --gateway infra/public

  # A ClusterIssuer for Let's Encrypt production, agreeing to its terms
  kubectl acme create issuer letsencrypt --cluster --server letsencrypt --email ops@example.com --ingress-class nginx --agree-tos

  # A private CA whose API certificate is signed by your own CA
  kubectl acme create issuer internal --server https://acme.internal/directory --ca-bundle ca.pem --agree-tos`,
		Args: cobra.ExactArgs(1),
		RunE: runE(f, o),
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Server, "server", o.Server, "ACME directory URL, or letsencrypt / letsencrypt-staging")
	fl.StringVar(&o.Email, "email", o.Email, "Contact address for the account (expiry and incident notices)")
	fl.StringVar(&o.IngressClass, "ingress-class", o.IngressClass, "Ingress class of the HTTP-01 solver ingress (spec.ingressClassName); empty uses the cluster's default class")
	fl.BoolVar(&o.LegacyClass, "legacy-class-annotation", o.LegacyClass, "Set the class with the kubernetes.io/ingress.class annotation instead of spec.ingressClassName (older ingress controllers)")
	fl.StringVar(&o.Gateway, "gateway", o.Gateway, "Solve HTTP-01 through HTTPRoutes attached to this Gateway, [NAMESPACE/]NAME (Gateway API; without NAMESPACE, the certificate's namespace), instead of an Ingress")
	addIngressPathTypeFlag(fl, &o.IngressPathType, "pathType of the challenge paths the issuer's solver adds to an Ingress: Exact, Prefix or ImplementationSpecific (default: decided at each issue by the ingress class's controller); stored as annotation "+certmanager.AnnotationIngressPathType)
	fl.BoolVar(&o.AgreeTOS, "agree-tos", o.AgreeTOS, "Agree to the CA's terms of service without asking")
	fl.StringVar(&o.CABundleFile, "ca-bundle", o.CABundleFile, "PEM file with CA certificates to trust for the ACME server's API")
	fl.BoolVar(&o.SkipTLSVerify, "skip-tls-verify", o.SkipTLSVerify, "Do not verify the ACME server's TLS certificate (insecure; test CAs only)")
	fl.BoolVar(&o.Cluster, "cluster", o.Cluster, "Create a ClusterIssuer, usable from every namespace")
	fl.StringVar(&o.PrivateKeySecret, "private-key-secret", o.PrivateKeySecret, "Secret holding the account key (default: the issuer's name); an existing one is reused")
	fl.StringVar(&o.Profile, "profile", o.Profile, "ACME profile to order certificates with (e.g. shortlived), if the CA offers profiles")
	fl.StringVar(&o.PreferredChain, "preferred-chain", o.PreferredChain, "Common name of the root CA whose chain to prefer, if the CA offers alternates")
	addTimeoutFlag(fl, &o.Timeout, "How long to wait for the CA")
	fl.StringVar(&o.EABKeyID, "eab-kid", o.EABKeyID, "External Account Binding key ID, for CAs that require one")
	fl.StringVar(&o.EABHMACKey, "eab-hmac-key", o.EABHMACKey, "External Account Binding HMAC key (base64url); used once to register, never stored")
	fl.StringVar(&o.EABHMACSecret, "eab-hmac-key-secret", o.EABHMACSecret, "Secret holding the EAB HMAC key, as NAME or NAME/KEY (default key: secret)")
	registerCreateIssuerCompletion(cmd, f)
	return cmd
}

// Complete fills in the namespace and reads files.
func (o *CreateIssuerOptions) Complete(f *Factory, cmd *cobra.Command, args []string) error {
	o.Name = args[0]
	o.factory = f
	if err := o.complete(f); err != nil {
		return err
	}
	o.Server = acme.ResolveServer(o.Server)
	if o.PrivateKeySecret == "" {
		o.PrivateKeySecret = o.Name
	}
	if o.CABundleFile != "" {
		var err error
		if o.caBundle, err = os.ReadFile(o.CABundleFile); err != nil {
			return fmt.Errorf("--ca-bundle: %w", err)
		}
	}
	o.interact = isTerminal(o.In) && isTerminal(o.ErrOut)
	return nil
}

// Validate checks the options without touching the cluster or the CA.
func (o *CreateIssuerOptions) Validate() error {
	if err := certmanager.ValidateName("issuer", o.Name); err != nil {
		return err
	}
	if o.Server == "" {
		return errors.New("--server is required: an ACME directory URL, or letsencrypt / letsencrypt-staging")
	}
	u, err := url.Parse(o.Server)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("--server %q: want an https:// ACME directory URL, or letsencrypt / letsencrypt-staging", o.Server)
	}
	if err := certmanager.ValidateEmail(o.Email); err != nil {
		return fmt.Errorf("--email: %w", err)
	}
	if err := certmanager.ValidateName("--private-key-secret", o.PrivateKeySecret); err != nil {
		return err
	}
	if o.IngressClass != "" {
		if err := validateIngressClass(o.IngressClass); err != nil {
			return err
		}
	}
	if o.IngressPathType != "" {
		if o.Gateway != "" {
			return errors.New("--ingress-path-type is for Ingress solvers; an HTTPRoute (--gateway) matches the challenge path exactly")
		}
		if err := certmanager.ValidateIngressPathType("--ingress-path-type", o.IngressPathType); err != nil {
			return err
		}
	}
	if o.Gateway != "" {
		if o.IngressClass != "" || o.LegacyClass {
			return errors.New("--gateway routes through HTTPRoutes, not an Ingress: give it without --ingress-class and --legacy-class-annotation")
		}
		if err := validateGateway(o.Gateway); err != nil {
			return err
		}
	}
	if o.CABundleFile != "" {
		if err := validateCABundle(o.CABundleFile, o.caBundle); err != nil {
			return err
		}
	}
	if o.EABHMACSecret != "" {
		if err := validateSecretKeyRef("--eab-hmac-key-secret", o.EABHMACSecret); err != nil {
			return err
		}
	}
	if err := positive("--timeout", o.Timeout); err != nil {
		return err
	}
	hasKey := o.EABHMACKey != "" || o.EABHMACSecret != ""
	switch {
	case o.EABHMACKey != "" && o.EABHMACSecret != "":
		return errors.New("give --eab-hmac-key or --eab-hmac-key-secret, not both")
	case o.EABKeyID != "" && !hasKey:
		return errors.New("--eab-kid needs --eab-hmac-key or --eab-hmac-key-secret")
	case o.EABKeyID == "" && hasKey:
		return errors.New("an EAB HMAC key needs --eab-kid")
	}
	if o.EABHMACKey != "" {
		if _, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(o.EABHMACKey, "=")); err != nil {
			return errors.New("--eab-hmac-key is not base64url (copy it exactly as your CA shows it)")
		}
	}
	return nil
}

// eab is the binding given with --eab-kid and --eab-hmac-key, or nil.
func (o *CreateIssuerOptions) eab() *xacme.ExternalAccountBinding {
	if o.EABHMACKey == "" {
		return nil
	}
	key, _ := base64.RawURLEncoding.DecodeString(strings.TrimRight(o.EABHMACKey, "="))
	return &xacme.ExternalAccountBinding{KID: o.EABKeyID, Key: key}
}

// Issuer is the Issuer the options describe.
func (o *CreateIssuerOptions) Issuer() *certmanager.Issuer {
	iss := &certmanager.Issuer{}
	iss.APIVersion, iss.Kind = certmanager.GroupVersion, certmanager.KindIssuer
	iss.Name, iss.Namespace = o.Name, o.Namespace
	if o.Cluster {
		iss.Kind, iss.Namespace = certmanager.KindClusterIssuer, ""
	}
	if o.IngressPathType != "" {
		iss.Annotations = map[string]string{certmanager.AnnotationIngressPathType: o.IngressPathType}
	}
	ing := &certmanager.ACMEChallengeSolverHTTP01Ingress{}
	if o.IngressClass != "" {
		class := o.IngressClass
		if o.LegacyClass {
			ing.Class = &class
		} else {
			ing.IngressClassName = &class
		}
	}
	solver := certmanager.ACMEChallengeSolver{HTTP01: &certmanager.ACMEChallengeSolverHTTP01{Ingress: ing}}
	if o.Gateway != "" {
		solver.HTTP01 = &certmanager.ACMEChallengeSolverHTTP01{GatewayHTTPRoute: &certmanager.ACMEChallengeSolverHTTP01GatewayHTTPRoute{
			ParentRefs: []gatewayv1.ParentReference{gatewayRef(o.Gateway)},
		}}
	}
	iss.Spec.ACME = &certmanager.ACMEIssuer{
		Server:              o.Server,
		Email:               o.Email,
		PrivateKeySecretRef: certmanager.SecretKeySelector{Name: o.PrivateKeySecret},
		SkipTLSVerify:       o.SkipTLSVerify,
		CABundle:            o.caBundle,
		Profile:             o.Profile,
		PreferredChain:      o.PreferredChain,
		Solvers:             []certmanager.ACMEChallengeSolver{solver},
	}
	if o.EABHMACSecret != "" {
		name, key, _ := strings.Cut(o.EABHMACSecret, "/")
		iss.Spec.ACME.ExternalAccountBinding = &certmanager.ACMEExternalAccountBinding{KeyID: o.EABKeyID, Key: certmanager.SecretKeySelector{Name: name, Key: key}}
	}
	return iss
}

// Run registers the account and stores the Issuer.
func (o *CreateIssuerOptions) Run(ctx context.Context) error {
	st, err := o.factory.Store()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	iss := o.Issuer()
	err = issuance.RegisterIssuer(ctx, issuance.Options{Store: st, UserAgent: o.factory.UserAgent, EAB: o.eab()}, iss, o.agree)
	if errors.Is(err, acme.ErrTermsNotAgreed) && !o.interact && !o.AgreeTOS {
		return fmt.Errorf("%w: read them and re-run with --agree-tos", err)
	}
	if err != nil {
		return fmt.Errorf("issuer %q: %w", o.Name, err)
	}
	kind := "issuer"
	if o.Cluster {
		kind = "clusterissuer"
	}
	fmt.Fprintf(o.Out, "%s/%s registered (account %s, %s)\n", kind, o.Name, iss.Status.ACME.URI, iss.Status.ACME.AccountStatus)
	return nil
}

// agree asks on a terminal, or uses --agree-tos.
func (o *CreateIssuerOptions) agree(tos string) bool {
	return agreeToTerms(tos, o.AgreeTOS, o.interact, o.In, o.ErrOut)
}

// agreeToTerms agrees to a CA's terms of service with --agree-tos, asks on
// a terminal, and otherwise shows where they are and declines.
func agreeToTerms(tos string, agreeTOS, interact bool, in io.Reader, errOut io.Writer) bool {
	if agreeTOS {
		return true
	}
	if !interact {
		fmt.Fprintf(errOut, "The CA's terms of service: %s\n", tos)
		return false
	}
	fmt.Fprintf(errOut, "The CA's terms of service: %s\nDo you agree to them? [y/N]: ", tos)
	line, _ := bufio.NewReader(in).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true
	}
	return false
}
