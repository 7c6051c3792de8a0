package plugin

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/issuance"
	"github.com/kubectl-acme/kubectl-acme/internal/kube"
	"github.com/kubectl-acme/kubectl-acme/internal/manifest"
	"github.com/kubectl-acme/kubectl-acme/internal/rbac"
)

// `kubectl acme issue --ingress NAME`: the certificates an Ingress's
// spec.tls asks for, made as cert-manager's ingress-shim makes them
// (manifest.FromIngress) and issued with the issue flags through the one
// runner.

func (o *IssueOptions) addIngressFlag(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.Ingress, "ingress", o.Ingress, "Issue what this Ingress's spec.tls asks for, as cert-manager would: one certificate per entry, named after its secretName, issuer from --issuer or the cert-manager.io/issuer or cert-manager.io/cluster-issuer annotation")
	cmd.Use += "\n  kubectl acme issue --ingress INGRESS [--issuer ISSUER]"
	cmd.Example += `

  # The certificates an Ingress's spec.tls asks for, issuer from its cert-manager.io/issuer annotation
  kubectl acme issue --ingress web`
}

// args is NAME, or nothing with --ingress.
func (o *IssueOptions) args(cmd *cobra.Command, args []string) error {
	if o.Ingress != "" {
		if len(args) > 0 {
			return fmt.Errorf("--ingress takes the certificates' names from the Ingress's spec.tls: give no NAME (got %q)", strings.Join(args, " "))
		}
		return nil
	}
	return cobra.ExactArgs(1)(cmd, args)
}

// validateIngress rejects flags that describe a certificate: with
// --ingress the Ingress and its cert-manager.io annotations do.
func (o *IssueOptions) validateIngress() error {
	var set []string
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"--domain", len(o.Domains) > 0}, {"--ip", len(o.IPs) > 0}, {"--common-name", o.CommonName != ""},
		{"--secret", o.SecretName != ""}, {"--key-algorithm", o.KeyAlgorithm != ""}, {"--key-size", o.KeySize != 0},
		{"--key-encoding", o.KeyEncoding != ""}, {"--reuse-key", o.ReuseKey}, {"--renew-before", o.RenewBefore != 0},
		{"--duration", o.Duration != 0},
	} {
		if f.set {
			set = append(set, f.name)
		}
	}
	if len(set) > 0 {
		return fmt.Errorf("%s cannot be used with --ingress: the Ingress's spec.tls and its cert-manager.io annotations (cert-manager.io/common-name, cert-manager.io/private-key-algorithm, cert-manager.io/renew-before, ...) describe the certificates", strings.Join(set, ", "))
	}
	if err := o.issuerFlags.validate(); err != nil {
		return err
	}
	return o.issueFlags.validate()
}

// runIngress reads the Ingress, checks every certificate's issuer and
// solvers, then issues them all, several at a time.
func (o *IssueOptions) runIngress(ctx context.Context) error {
	ns := o.Namespace
	st, err := o.store(o.factory)
	if err != nil {
		return err
	}
	ing, err := st.Client.NetworkingV1().Ingresses(ns).Get(ctx, o.Ingress, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("ingress %q not found in namespace %q", o.Ingress, ns)
	}
	if err != nil {
		return kube.Describe(err, "get", "ingresses.networking.k8s.io", ns)
	}
	var ref *certmanager.IssuerRef
	if o.Issuer != "" {
		r := o.ref()
		ref = &r
	}
	certs, err := manifest.FromIngress(ing, ref)
	if err != nil {
		return err
	}
	for _, c := range certs {
		o.setProfile(c)
	}

	// Before anything is created: permissions, issuers, a solver per name.
	r := certs[0].Spec.IssuerRef
	scope, _ := rbac.AccessScope(ctx, st, ns, r.Name, r.Kind == certmanager.KindClusterIssuer, certs[0])
	cmds := []rbac.Command{rbac.Issue}
	if len(certs) > 1 {
		cmds = append(cmds, rbac.Several) // the run's Leases go at once
	}
	if err := o.checkAccess(ctx, st, scope, r, cmds...); err != nil {
		return fmt.Errorf("ingress %q: %w", o.Ingress, err)
	}
	// issue issues: a stored, current certificate is issued again too.
	jobs, err := issuance.JobsFor(ctx, st, certs, true)
	if err != nil {
		return err
	}
	run := o.runner(st, o.factory, o.ErrOut, len(certs))
	run.Options.Force = o.Force
	failed := run.Run(ctx, jobs, func(out issuance.Outcome) {
		if out.Err != nil {
			fmt.Fprintf(o.ErrOut, "error: certificate %q: %v\n", out.Job.Cert.Name, out.Err)
			return
		}
		fmt.Fprintln(o.Out, issuedLine(out.Job.Cert))
	})
	if failed > 0 {
		return &ExitError{Code: 1, Err: fmt.Errorf("%d of %d certificates of ingress %q failed", failed, len(certs), o.Ingress)}
	}
	return nil
}
