package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// namespaceObjects names every object in ns of the kinds kubectl-acme
// creates.
func namespaceObjects(t *testing.T, ns string) []string {
	t.Helper()
	ctx, opts := t.Context(), metav1.ListOptions{}
	var out []string
	cms, err := kube.CoreV1().ConfigMaps(ns).List(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range cms.Items {
		out = append(out, "configmap/"+o.Name+"@"+o.ResourceVersion)
	}
	secrets, err := kube.CoreV1().Secrets(ns).List(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range secrets.Items {
		out = append(out, "secret/"+o.Name+"@"+o.ResourceVersion)
	}
	pods, err := kube.CoreV1().Pods(ns).List(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range pods.Items {
		out = append(out, "pod/"+o.Name)
	}
	svcs, err := kube.CoreV1().Services(ns).List(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range svcs.Items {
		out = append(out, "service/"+o.Name)
	}
	ings, err := kube.NetworkingV1().Ingresses(ns).List(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range ings.Items {
		out = append(out, "ingress/"+o.Name)
	}
	leases, err := kube.CoordinationV1().Leases(ns).List(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range leases.Items {
		out = append(out, "lease/"+o.Name)
	}
	slices.Sort(out)
	return out
}

// TestBadInput: every bad flag or value fails with a message that starts
// with "error: " and names the problem, exits non-zero, and changes
// nothing: no object is created or updated in the namespace, and the CA
// (a counting proxy in front of Pebble) sees no order.
func TestBadInput(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ca := startCAProxy(t)
	createIssuerVia(t, ca, ns, "pebble")
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	keyPEM := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A key where a CA bundle belongs: the message must not echo it.
	if err := os.WriteFile(keyPEM, []byte("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBlNMTHbsKnvwgOXxmaoAoGCCqGSM49\n-----END EC PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	d := "bad." + ns + ".example.test"
	issue := func(extra ...string) []string {
		return append([]string{"issue", "web", "--issuer", "pebble", "--connect-to", env.IngressHTTP}, extra...)
	}
	createIssuer := func(extra ...string) []string {
		return append([]string{"create", "issuer", "other", "--server", ca.Directory, "--ca-bundle", ca.CABundle, "--agree-tos"}, extra...)
	}
	long := func(n int) string { return strings.Repeat("a", n) }

	cases := []struct {
		name string
		args []string
		want string // in the message, besides the leading "error: "
	}{
		// Names.
		{"wildcard", issue("-d", "*."+d), "wildcard names need DNS-01"},
		{"wildcard inside", issue("-d", "a.*."+d), `"a.*.` + d + `"`},
		{"label too long", issue("-d", long(64)+".example.test"), "longer than 63 characters"},
		{"name too long", issue("-d", strings.Repeat("abcdefghi.", 26)+"example.test"), "no more than 253 characters"},
		{"space in name", issue("-d", "exa mple.example.test"), "disallowed rune U+0020"},
		{"underscore", issue("-d", "a_b.example.test"), "disallowed rune U+005F"},
		{"bad punycode", issue("-d", "xn--zz.example.test"), `invalid label`},
		{"bad IDN", issue("-d", "a\u200d.example.test"), `domain "a`},
		{"not fully qualified", issue("-d", "localhost"), "fully qualified"},
		{"duplicate", issue("-d", d, "-d", strings.ToUpper(d)), "is given twice"},
		{"duplicate after IDN", issue("-d", "bücher.example.test", "-d", "xn--bcher-kva.example.test"), "is given twice"},
		{"IP as domain", issue("-d", "192.0.2.1"), "is an IP address: pass it with --ip"},
		{"bad IPv4", issue("--ip", "256.1.1.1"), `invalid IP address "256.1.1.1"`},
		{"bad IPv6", issue("--ip", "2001:db8::g"), `invalid IP address "2001:db8::g"`},
		{"name as IP", issue("--ip", d), "invalid IP address"},
		{"duplicate IP", issue("--ip", "::1", "--ip", "0:0::1"), `IP address "0:0::1" is given twice`},
		{"no names", issue(), "at least one --domain or --ip"},
		{"too many names", issue(manyDomains(ns, 101)...), "at most 100"},
		{"common name not a SAN", issue("-d", d, "--common-name", "other."+d), "must also be one of the domains"},
		{"common name too long", issue("-d", long(60)+".example.test", "--common-name", long(60)+".example.test"), "longer than 64 bytes"},
		// Objects and references.
		{"certificate name", []string{"issue", "Web", "--issuer", "pebble", "-d", d}, `invalid certificate name "Web"`},
		{"certificate name too long", []string{"issue", long(64), "--issuer", "pebble", "-d", d}, "no more than 63 characters"},
		{"secret name", issue("-d", d, "--secret", "Bad_Secret"), `invalid secret name "Bad_Secret"`},
		{"unknown issuer", []string{"issue", "web", "--issuer", "missing", "-d", d}, `Issuer "missing" not found`},
		{"unknown cluster issuer", []string{"issue", "web", "--issuer", "missing", "--cluster-issuer", "-d", d}, `ClusterIssuer "missing" not found`},
		{"unknown certificate", []string{"issue", "nosuch"}, `certificate "nosuch" does not exist`},
		{"no certificate name", []string{"issue", "--issuer", "pebble", "-d", d}, "accepts 1 arg(s), received 0"},
		// Flags and values.
		{"cluster issuer without issuer", []string{"issue", "web", "-d", d, "--cluster-issuer"}, "--cluster-issuer needs --issuer"},
		{"zero timeout", issue("-d", d, "--timeout", "0s"), "--timeout must be positive"},
		{"bad timeout", issue("-d", d, "--timeout", "forever"), `invalid argument "forever" for "--timeout"`},
		{"negative self-check timeout", issue("-d", d, "--self-check-timeout", "-1s"), "--self-check-timeout must be positive"},
		{"RSA key size", issue("-d", d, "--key-size", "1024"), "RSA key size 1024"},
		{"ECDSA key size", issue("-d", d, "--key-algorithm", "ecdsa", "--key-size", "2048"), "ECDSA key size 2048"},
		{"key algorithm", issue("-d", d, "--key-algorithm", "dsa"), `key algorithm "DSA"`},
		{"key encoding", issue("-d", d, "--key-encoding", "der"), `key encoding "DER"`},
		{"connect-to without port", []string{"issue", "web", "--issuer", "pebble", "-d", d, "--connect-to", "lb"}, `--connect-to "lb": want HOST:PORT`},
		{"connect-to port name", []string{"issue", "web", "--issuer", "pebble", "-d", d, "--connect-to", "lb:http"}, `port "http" is not a number`},
		{"connect-to port range", []string{"issue", "web", "--issuer", "pebble", "-d", d, "--connect-to", "lb:99999"}, `port "99999"`},
		{"negative duration", issue("-d", d, "--duration", "-1h"), "--duration must not be negative"},
		{"renew-before beyond duration", issue("-d", d, "--duration", "1h", "--renew-before", "2h"), "must be shorter than duration"},
		{"solver image", issue("-d", d, "--solver-image", "Bad Image"), `--solver-image "Bad Image" is not an image reference`},
		{"unknown flag", issue("-d", d, "--no-such-flag"), "unknown flag: --no-such-flag"},
		// create issuer.
		{"issuer name", []string{"create", "issuer", "X", "--server", ca.Directory}, `invalid issuer name "X"`},
		{"no server", []string{"create", "issuer", "other"}, "--server is required"},
		{"http server", []string{"create", "issuer", "other", "--server", "http://127.0.0.1:1/dir"}, "want an https:// ACME directory URL"},
		{"email syntax", createIssuer("--email", "not-an-email"), `invalid email "not-an-email"`},
		{"email with a name", createIssuer("--email", "Ops <ops@example.com>"), "want a plain address"},
		{"ingress class", createIssuer("--ingress-class", "Bad Class"), `--ingress-class "Bad Class"`},
		{"CA bundle not PEM", []string{"create", "issuer", "other", "--server", ca.Directory, "--ca-bundle", notPEM, "--agree-tos"}, "no PEM certificate"},
		{"CA bundle is a key", []string{"create", "issuer", "other", "--server", ca.Directory, "--ca-bundle", keyPEM, "--agree-tos"}, "block 1 is a private key"},
		{"CA bundle missing", []string{"create", "issuer", "other", "--server", ca.Directory, "--ca-bundle", filepath.Join(dir, "nope.pem")}, "no such file"},
		{"EAB kid alone", createIssuer("--eab-kid", "kid"), "--eab-kid needs --eab-hmac-key"},
		{"EAB HMAC not base64url", createIssuer("--eab-kid", "kid", "--eab-hmac-key", "!!!"), "is not base64url"},
		{"EAB both keys", createIssuer("--eab-kid", "kid", "--eab-hmac-key", "abcd", "--eab-hmac-key-secret", "s"), "not both"},
		{"EAB secret ref", createIssuer("--eab-kid", "kid", "--eab-hmac-key-secret", "Bad/key"), `secret name "Bad"`},
		{"EAB secret missing", createIssuer("--eab-kid", "kid", "--eab-hmac-key-secret", "nosuch"), `secrets "nosuch" not found`},
		{"account key secret name", createIssuer("--private-key-secret", "Bad_Name"), `invalid --private-key-secret name "Bad_Name"`},
		// Other commands.
		{"status output", []string{"status", "-o", "xml"}, `unsupported output format "xml"`},
		{"status name and -A", []string{"status", "web", "-A"}, "cannot be combined with --all-namespaces"},
		{"renew nothing", []string{"renew"}, "give certificate names, or --all"},
		{"renew names and --all", []string{"renew", "web", "--all"}, "not both"},
		{"renew connect-to", []string{"renew", "--all", "--connect-to", "lb"}, "want HOST:PORT"},
		{"revoke reason", []string{"revoke", "web", "--reason", "bogus"}, `--reason "bogus"`},
		{"cleanup age", []string{"cleanup", "--older-than", "-1h"}, "--older-than -1h0m0s: must not be negative"},
		{"check output", []string{"check", "-o", "xml"}, `unsupported output format "xml"`},
		{"get issuers output", []string{"get", "issuers", "-o", "xml"}, `unsupported output format "xml"`},
	}
	if len(cases) < 30 {
		t.Fatalf("only %d cases", len(cases))
	}
	before := namespaceObjects(t, ns)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append(slices.Clone(tc.args), "-n", ns)
			out, errOut, code := acmeCmd(t, env.Kubeconfig, args...)
			if code == 0 {
				t.Errorf("exit 0, want a failure")
			}
			if !strings.HasPrefix(errOut, "error: ") || !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr %q, want \"error: ...%s...\"", errOut, tc.want)
			}
			if strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
				t.Errorf("want a one-line message, got:\n%s", errOut)
			}
			if strings.Contains(errOut, "PRIVATE KEY") || strings.Contains(errOut, "MHcCAQEEIBkg") {
				t.Errorf("the message echoes key material: %s", errOut)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing", out)
			}
			if after := namespaceObjects(t, ns); !slices.Equal(after, before) {
				t.Fatalf("the cluster changed:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
	if n := ca.NewOrders(); n != 0 {
		t.Errorf("the CA saw %d new orders, want none", n)
	}
}

func manyDomains(ns string, n int) []string {
	var args []string
	for i := range n {
		args = append(args, "-d", fmt.Sprintf("n%d.%s.example.test", i, ns))
	}
	return args
}
