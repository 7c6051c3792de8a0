package plugin

import (
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

func TestIssueValidate(t *testing.T) {
	d := []string{"a.example.com"}
	tests := []struct {
		name string
		set  func(o *IssueOptions)
		err  string
	}{
		{"ok", func(o *IssueOptions) { o.Name, o.Issuer, o.Domains = "web", "le", d }, ""},
		{"reissue stored", func(o *IssueOptions) { o.Name = "web" }, ""},
		{"cluster issuer", func(o *IssueOptions) { o.Name, o.Issuer, o.ClusterIssuer, o.Domains = "web", "le", true, d }, ""},
		{"bad name", func(o *IssueOptions) { o.Name, o.Issuer, o.Domains = "Web", "le", d }, "invalid certificate name"},
		{"wildcard", func(o *IssueOptions) { o.Name, o.Issuer, o.Domains = "web", "le", []string{"*.example.com"} }, "wildcard"},
		{"no names", func(o *IssueOptions) { o.Name, o.Issuer = "web", "le" }, "at least one"},
		{"connect-to", func(o *IssueOptions) { o.Name, o.Issuer, o.Domains, o.ConnectTo = "web", "le", d, "lb" }, "HOST:PORT"},
		{"cluster issuer without name", func(o *IssueOptions) { o.Name, o.ClusterIssuer, o.Domains = "web", true, d }, "--cluster-issuer needs --issuer NAME"},
		{"key size", func(o *IssueOptions) {
			o.Name, o.Issuer, o.Domains, o.KeyAlgorithm, o.KeySize = "web", "le", d, "ecdsa", 2048
		}, "256 or 384"},
		{"zero timeout", func(o *IssueOptions) { o.Name, o.Timeout = "web", 0 }, "--timeout must be positive"},
		{"self-check timeout", func(o *IssueOptions) { o.Name, o.SelfCheckTimeout = "web", -1 }, "--self-check-timeout must be positive"},
		{"concurrency", func(o *IssueOptions) { o.Name, o.Concurrency = "web", 0 }, "--concurrency must be at least 1"},
		{"negative duration", func(o *IssueOptions) { o.Name, o.Duration = "web", -1 }, "--duration must not be negative"},
		{"negative renew-before", func(o *IssueOptions) { o.Name, o.RenewBefore = "web", -1 }, "--renew-before must not be negative"},
		{"path type", func(o *IssueOptions) { o.Name, o.IngressPathType = "web", "Regex" }, "--ingress-path-type"},
		{"solver image", func(o *IssueOptions) { o.Name, o.SolverImage = "web", "Bad Image" }, "is not an image reference"},
		// --ingress: the Ingress describes the certificates.
		{"ingress", func(o *IssueOptions) { o.Ingress = "web" }, ""},
		{"ingress with issuer", func(o *IssueOptions) { o.Ingress, o.Issuer, o.ClusterIssuer = "web", "le", true }, ""},
		{"ingress with domains", func(o *IssueOptions) { o.Ingress, o.Domains, o.SecretName = "web", d, "s" }, "--domain, --secret cannot be used with --ingress"},
		{"ingress cluster without issuer", func(o *IssueOptions) { o.Ingress, o.ClusterIssuer = "web", true }, "--cluster-issuer needs --issuer"},
		{"ingress connect-to", func(o *IssueOptions) { o.Ingress, o.ConnectTo = "web", "lb" }, "HOST:PORT"},
		{"ingress timeout", func(o *IssueOptions) { o.Ingress, o.Timeout = "web", 0 }, "--timeout must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := NewIssueOptions(genericiooptions.NewTestIOStreamsDiscard())
			tt.set(o)
			wantErr(t, o.Validate(), tt.err)
		})
	}
}

func TestIssueArgs(t *testing.T) {
	o := NewIssueOptions(genericiooptions.NewTestIOStreamsDiscard())
	wantErr(t, o.args(nil, []string{"web"}), "")
	wantErr(t, o.args(nil, nil), "accepts 1 arg(s), received 0")
	o.Ingress = "web"
	wantErr(t, o.args(nil, nil), "")
	wantErr(t, o.args(nil, []string{"web"}), "give no NAME")
}
