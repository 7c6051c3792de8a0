package plugin

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-acme/kubectl-acme/acme"
	"github.com/kubectl-acme/kubectl-acme/internal/status"
)

func TestCertificateTable(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { v := now.Add(d); return &v }
	rows := []status.Row{
		{Namespace: "b", Name: "web", Secret: "web-tls", Domains: "a.example.com,b.example.com,c.example.com", Issuer: "Issuer/le",
			NotAfter: at(60 * 24 * time.Hour), RenewAfter: at(30 * 24 * time.Hour), Created: now.Add(-time.Hour)},
		{Namespace: "a", Name: "api", Secret: "api", Domains: "api.example.com", Issuer: "ClusterIssuer/le",
			LastFailure: "challenge failed: api.example.com: unauthorized: 404", Created: now.Add(-2 * time.Minute)},
	}
	var b bytes.Buffer
	header, table := CertificateTable(rows, true, false, now)
	if err := printTable(&b, header, table); err != nil {
		t.Fatal(err)
	}
	want := `NAMESPACE   NAME   SECRET    DOMAINS                               ISSUER             NOT AFTER              RENEW AFTER            STATUS                                                         AGE
a           api    api       api.example.com                       ClusterIssuer/le   <none>                 <none>                 Failed: challenge failed: api.example.com: unauthorized: 404   2m
b           web    web-tls   a.example.com,b.example.com +1 more   Issuer/le          2026-07-31T00:00:00Z   2026-07-01T00:00:00Z   Ready                                                          60m
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestCreateIssuerValidate(t *testing.T) {
	ok := CreateIssuerOptions{Name: "le", Server: "https://acme.example/dir", Email: "ops@example.com", PrivateKeySecret: "le", Timeout: time.Minute}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(*CreateIssuerOptions){
		"http server":               func(o *CreateIssuerOptions) { o.Server = "http://acme.example/dir" },
		"no server":                 func(o *CreateIssuerOptions) { o.Server = "" },
		"bad email":                 func(o *CreateIssuerOptions) { o.Email = "ops at example" },
		"bad name":                  func(o *CreateIssuerOptions) { o.Name = "LE" },
		"gateway and ingress class": func(o *CreateIssuerOptions) { o.Gateway, o.IngressClass = "infra/public", "nginx" },
		"gateway and legacy class":  func(o *CreateIssuerOptions) { o.Gateway, o.LegacyClass = "public", true },
		"bad gateway namespace":     func(o *CreateIssuerOptions) { o.Gateway = "In.fra/public" },
		"bad gateway name":          func(o *CreateIssuerOptions) { o.Gateway = "infra/Public" },
		"empty gateway name":        func(o *CreateIssuerOptions) { o.Gateway = "infra/" },
	} {
		o := ok
		mutate(&o)
		if err := o.Validate(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestCreateIssuerGateway(t *testing.T) {
	for gw, wantNS := range map[string]string{"infra/public": "infra", "public": ""} {
		o := CreateIssuerOptions{Name: "le", Server: "https://acme.example/dir", Email: "ops@example.com", PrivateKeySecret: "le", Timeout: time.Minute, Gateway: gw}
		if err := o.Validate(); err != nil {
			t.Fatalf("--gateway %s: %v", gw, err)
		}
		sv := o.Issuer().Spec.ACME.Solvers[0]
		if !sv.IsGatewayHTTPRoute() || sv.HTTP01.Ingress != nil {
			t.Fatalf("--gateway %s: solver %+v", gw, sv.HTTP01)
		}
		p := sv.HTTP01.GatewayHTTPRoute.ParentRefs
		if len(p) != 1 || p[0].Name != "public" || (wantNS == "") != (p[0].Namespace == nil) || (p[0].Namespace != nil && string(*p[0].Namespace) != wantNS) {
			t.Errorf("--gateway %s: parentRefs %+v", gw, p)
		}
	}
}

func TestPlainProgress(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b, false)
	p.now = func() time.Time { return p.start.Add(1500 * time.Millisecond) }
	p.Observe(acme.Event{Identifier: "a.example.com", State: acme.StateValid})
	if got := b.String(); got != "[   1.5s] a.example.com            valid\n" {
		t.Errorf("got %q", got)
	}
}

func TestRootHelpReadsAsKubectlACME(t *testing.T) {
	var out bytes.Buffer
	cmd := NewCmdACME(genericiooptions.IOStreams{Out: &out, ErrOut: &out}, BuildInfo{Version: "v0"})
	cmd.SetArgs([]string{"issue", "--help"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "kubectl acme issue NAME") {
		t.Errorf("help does not read as kubectl acme:\n%s", out.String())
	}
}

func TestCreateIssuerFlagsShadowKubeconfigFlags(t *testing.T) {
	var out bytes.Buffer
	cmd := NewCmdACME(genericiooptions.IOStreams{Out: &out, ErrOut: &out}, BuildInfo{})
	sub, _, err := cmd.Find([]string{"create", "issuer"})
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.ParseFlags([]string{"--server", "letsencrypt", "--cluster"}); err != nil {
		t.Fatal(err)
	}
	if v := sub.Flags().Lookup("server").Value.String(); v != "letsencrypt" {
		t.Errorf("--server = %q", v)
	}
	if v := sub.Flags().Lookup("cluster").Value.String(); v != "true" {
		t.Errorf("--cluster = %q", v)
	}
}

func TestLiveProgressRedrawsInPlace(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b, true)
	p.Observe(acme.Event{State: acme.StatePending, Detail: "order https://ca/order/1"})
	p.Observe(acme.Event{Identifier: "a.example.com", State: acme.StatePresenting})
	first := b.Len()
	p.Observe(acme.Event{Identifier: "a.example.com", State: acme.StateValid})
	out := b.String()
	if !strings.Contains(out[:first], "DOMAIN") || !strings.Contains(out, "order: pending: order https://ca/order/1") {
		t.Errorf("no table:\n%s", out)
	}
	// The second draw moves the cursor up over the first (table: header,
	// one row, order line) and clears it.
	if !strings.Contains(out[first:], "\x1b[3A\x1b[J") {
		t.Errorf("second draw does not replace the first: %q", out[first:])
	}
}
