package plugin

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/metadata"

	"github.com/kubectl-acme/kubectl-acme/acme"
	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/status"
	"github.com/kubectl-acme/kubectl-acme/internal/store"
)

// StatusOptions holds `kubectl acme status` input.
type StatusOptions struct {
	// Name is the certificate to describe; "" lists them.
	Name string
	namespaceFlags
	Output *outputFlags

	factory *Factory
	now     func() time.Time
	genericiooptions.IOStreams
}

// NewStatusOptions returns the defaults of `kubectl acme status`.
func NewStatusOptions(streams genericiooptions.IOStreams) *StatusOptions {
	return &StatusOptions{IOStreams: streams, Output: newOutputFlags("", "wide", "json", "yaml"), now: time.Now}
}

// NewCmdStatus builds `kubectl acme status`.
func NewCmdStatus(f *Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewStatusOptions(streams)
	cmd := &cobra.Command{
		Use:   "status [NAME]",
		Short: "Show certificates: expiry, renewal time and the outcome of the last order",
		Long: `Without NAME, list certificates with their Secret, names, issuer, expiry, renewal
time and state (Ready, Expiring, Expired, Pending, or Failed with the reason).
With NAME, show one certificate in detail: issuer, key, serial, chain, and the
last order with each challenge's outcome.`,
		Example: `  kubectl acme status
  kubectl acme status -A -o wide
  kubectl acme status web
  kubectl acme status web -o yaml`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: f.completeCertificates,
		RunE:              runE(f, o),
	}
	o.addAllNamespacesFlag(cmd.Flags(), "List certificates in all namespaces")
	o.Output.addFlag(cmd, "Output format: wide, json or yaml")
	return cmd
}

// Complete takes NAME and the namespace.
func (o *StatusOptions) Complete(f *Factory, cmd *cobra.Command, args []string) error {
	if len(args) == 1 {
		o.Name = args[0]
	}
	o.factory = f
	return o.complete(f)
}

// Validate checks flag combinations.
func (o *StatusOptions) Validate() error {
	if err := o.Output.validate(); err != nil {
		return err
	}
	if o.Name != "" && o.AllNamespaces {
		return fmt.Errorf("a certificate NAME cannot be combined with --all-namespaces; use -n NAMESPACE")
	}
	return nil
}

// Run prints the status.
func (o *StatusOptions) Run(ctx context.Context) error {
	if o.Name != "" {
		return o.runOne(ctx)
	}
	ns := o.listNamespace()
	st, err := o.factory.Store()
	if err != nil {
		return err
	}
	if !o.Output.table() {
		certs, err := status.Certificates(ctx, st.Client, ns)
		if err != nil {
			return err
		}
		return printObject(o.Out, o.Output.Format(), list(certs))
	}
	cfg, err := o.factory.RESTConfig()
	if err != nil {
		return err
	}
	mc, err := metadata.NewForConfig(cfg)
	if err != nil {
		return err
	}
	rows, err := status.Rows(ctx, mc, ns)
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		if _, err := fmt.Fprintf(o.ErrOut, "No certificates found %s.\n", o.where()); err != nil {
			return err
		}
	} else {
		header, table := CertificateTable(rows, o.AllNamespaces, o.Output.wide(), o.now())
		if err := printTable(o.Out, header, table); err != nil {
			return err
		}
	}
	return printSchedules(ctx, o.Out, st.Client, ns, o.now())
}

// CertificateTable renders rows sorted by namespace and name.
func CertificateTable(rows []status.Row, allNamespaces, wide bool, now time.Time) ([]string, [][]string) {
	status.SortRows(rows)
	header := []string{"NAME", "SECRET", "DOMAINS", "ISSUER", "NOT AFTER", "RENEW AFTER", "STATUS", "AGE"}
	if allNamespaces {
		header = append([]string{"NAMESPACE"}, header...)
	}
	out := make([][]string, 0, len(rows))
	for _, r := range rows {
		domains := r.Domains
		if !wide {
			domains = abbreviateList(domains, 2)
		}
		s := r.Summary(now)
		state := string(s.State)
		if s.State == certmanager.StateFailed && r.NotAfter != nil && now.Before(*r.NotAfter) {
			// The stored certificate still serves: say how long is left to
			// fix the renewal.
			state += " (renewal failing, expires in " + duration.HumanDuration(r.NotAfter.Sub(now)) + ")"
		}
		if s.State == certmanager.StateFailed || (wide && s.Reason != "") {
			state += ": " + s.Reason
		}
		if !wide {
			state = truncateDetail(state)
		}
		row := []string{r.Name, r.Secret, domains, r.Issuer, formatTime(r.NotAfter), formatTime(r.RenewAfter), state, age(r.Created, now)}
		if allNamespaces {
			row = append([]string{r.Namespace}, row...)
		}
		out = append(out, row)
	}
	return header, out
}

// abbreviateList keeps the first n comma-separated items and counts the rest.
func abbreviateList(s string, n int) string {
	parts := strings.Split(s, ",")
	if len(parts) <= n {
		return s
	}
	return fmt.Sprintf("%s +%d more", strings.Join(parts[:n], ","), len(parts)-n)
}

func formatTime(t *time.Time) string {
	if t == nil {
		return "<none>"
	}
	return t.UTC().Format(time.RFC3339)
}

func (o *StatusOptions) runOne(ctx context.Context) error {
	st, err := o.factory.Store()
	if err != nil {
		return err
	}
	cert, err := st.GetCertificate(ctx, o.Namespace, o.Name)
	if err != nil {
		return err
	}
	if !o.Output.table() {
		return printObject(o.Out, o.Output.Format(), cert)
	}
	sec, err := st.GetSecret(ctx, cert)
	if err != nil {
		return err
	}
	var iss *certmanager.Issuer
	ref := cert.Spec.IssuerRef
	iss, issErr := st.GetIssuer(ctx, cert.Namespace, ref.Name, ref.Kind == certmanager.KindClusterIssuer)
	return describeCertificate(o.Out, cert, iss, issErr, sec, o.now())
}

// describeCertificate prints the detailed view of one Certificate.
func describeCertificate(w io.Writer, c *certmanager.Certificate, iss *certmanager.Issuer, issErr error, sec *corev1.Secret, now time.Time) error {
	var fields [][]string
	p := func(k, v string) { fields = append(fields, []string{k + ":", v}) }
	s := certmanager.Summarize(&c.Status, now)
	status := string(s.State)
	if s.Reason != "" {
		status += ": " + s.Reason
	}
	p("Name", c.Name)
	p("Namespace", c.Namespace)
	p("Status", status)
	issuer := store.IssuerRefString(c.Spec.IssuerRef)
	if iss != nil && iss.Spec.ACME != nil {
		issuer += " (" + iss.Spec.ACME.Server + ")"
	} else if issErr != nil {
		issuer += " (" + issErr.Error() + ")"
	}
	p("Issuer", issuer)
	dns, ips := c.Spec.Identifiers()
	p("DNS Names", orNone(strings.Join(dns, ", ")))
	if len(ips) > 0 {
		p("IP Addresses", strings.Join(ips, ", "))
	}
	if c.Spec.CommonName != "" {
		p("Common Name", c.Spec.CommonName)
	}
	secret := c.Spec.SecretName
	if sec == nil {
		secret += " (missing)"
	}
	p("Secret", secret)
	if c.Status.NotAfter != nil {
		p("Not Before", c.Status.NotBefore.UTC().Format(time.RFC3339))
		p("Not After", fmt.Sprintf("%s (%s)", c.Status.NotAfter.UTC().Format(time.RFC3339), relative(c.Status.NotAfter.Time, now)))
	}
	if c.Status.RenewalTime != nil {
		p("Renew After", fmt.Sprintf("%s (%s)", c.Status.RenewalTime.UTC().Format(time.RFC3339), relative(c.Status.RenewalTime.Time, now)))
	}
	if ri := c.Status.RenewalInfo; ri != nil {
		p("Renewal Window", fmt.Sprintf("%s to %s (the CA's, ARI; asked again after %s)", ri.WindowStart.UTC().Format(time.RFC3339),
			ri.WindowEnd.UTC().Format(time.RFC3339), ri.NextCheck.UTC().Format(time.RFC3339)))
	}
	if c.Status.Serial != "" {
		p("Serial", c.Status.Serial)
	}
	if sec != nil {
		if chain := parseChain(sec.Data[corev1.TLSCertKey]); len(chain) > 0 {
			p("Key", acme.KeyDescription(chain[0].PublicKey))
			var names []string
			for _, cert := range chain {
				names = append(names, certName(cert))
			}
			if top := chain[len(chain)-1]; top.Issuer.CommonName != top.Subject.CommonName {
				names = append(names, top.Issuer.CommonName)
			}
			p("Chain", strings.Join(names, " <- "))
		}
	}
	if c.Status.LastFailure != "" {
		p("Last Failure", fmt.Sprintf("%s (%s)", c.Status.LastFailure, c.Status.LastFailureTime.UTC().Format(time.RFC3339)))
	}
	if o := c.Status.LastOrder; o != nil {
		took := ""
		if o.Finished != nil {
			took = fmt.Sprintf(", took %.1fs", o.Finished.Sub(o.Started.Time).Seconds())
		}
		p("Last Order", fmt.Sprintf("%s (%s, started %s%s)", orNone(o.URL), o.State, o.Started.UTC().Format(time.RFC3339), took))
	}
	if err := printFields(w, fields); err != nil {
		return err
	}
	if o := c.Status.LastOrder; o != nil && len(o.Challenges) > 0 {
		rows := make([][]string, 0, len(o.Challenges))
		for _, ch := range o.Challenges {
			rows = append(rows, []string{ch.Identifier, ch.Type, ch.State, ch.Detail})
		}
		fmt.Fprintln(w, "Challenges:")
		return printTable(&indent{w: w}, []string{"DOMAIN", "CHALLENGE", "STATE", "DETAIL"}, rows)
	}
	return nil
}

// indent starts every line with two spaces. A write may end inside a line
// (the table's buffer fills where it fills): the next one goes on with it.
type indent struct {
	w       io.Writer
	midLine bool
}

func (i *indent) Write(p []byte) (int, error) {
	lines := strings.SplitAfter(string(p), "\n")
	for _, l := range lines {
		if l == "" {
			continue
		}
		if !i.midLine {
			l = "  " + l
		}
		if _, err := io.WriteString(i.w, l); err != nil {
			return 0, err
		}
		i.midLine = !strings.HasSuffix(l, "\n")
	}
	return len(p), nil
}

func parseChain(data []byte) []*x509.Certificate {
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return out
		}
		if c, err := x509.ParseCertificate(b.Bytes); err == nil {
			out = append(out, c)
		}
	}
}

func relative(t, now time.Time) string {
	if t.After(now) {
		return "in " + age(now, t)
	}
	return age(t, now) + " ago"
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

// certName names a certificate for the chain line: its common name, or its
// first SAN for leaves without one (short-lived profiles omit the CN).
func certName(c *x509.Certificate) string {
	switch {
	case c.Subject.CommonName != "":
		return c.Subject.CommonName
	case len(c.DNSNames) > 0:
		return c.DNSNames[0]
	case len(c.IPAddresses) > 0:
		return c.IPAddresses[0].String()
	}
	return c.SerialNumber.Text(16)
}
