package manifest

import (
	"strings"
	"testing"
)

// FuzzDecode feeds arbitrary input to the decoder: it must never panic,
// and what it returns must be consistent. Run it with
// go test -fuzz FuzzDecode ./internal/manifest/; testdata/fuzz keeps the corpus.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		v1Docs, legacyDocs,
		`{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"cert-manager.io/v1","kind":"Certificate","metadata":{"name":"a"},"spec":{"secretName":"a","issuerRef":{"name":"le"},"dnsNames":["a.example.com"]}}]}`,
		"apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: List\n  items: []\n",
		"---\n---\n# nothing\n",
		"apiVersion: cert-manager.io/v1\nkind: Issuer\nmetadata: {name: x}\nspec: {acme: {server: 'https://a/b', privateKeySecretRef: {name: k}, caBundle: '!!', solvers: [{http01: {ingress: {podTemplate: {spec: {resources: {limits: {cpu: lots}}}}}}}]}}\n",
		"a: b: c\n",
		"[1, 2]\n",
		"apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata:\n  name: &n web\n  labels: {a: *n}\nspec:\n  secretName: *n\n  <<: {dnsNames: [x.example.com]}\n  issuerRef: {name: le}\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		r := Decode("f.yaml", []byte(in))
		for _, e := range r.Errors {
			if e.File != "f.yaml" || e.Doc < 1 || e.Reason == "" {
				t.Fatalf("malformed error %+v", e)
			}
			// YAML also breaks lines at a lone CR.
			lines := strings.Count(strings.ReplaceAll(in, "\r\n", "\n"), "\n") + strings.Count(strings.ReplaceAll(in, "\r\n", ""), "\r") + 1
			if e.Line < 0 || e.Line > lines {
				t.Fatalf("error line %d outside the input: %v", e.Line, e)
			}
		}
		for _, o := range r.Objects {
			if (o.Issuer == nil) == (o.Certificate == nil) {
				t.Fatalf("object %+v has not exactly one of Issuer and Certificate", o)
			}
			if o.Name() == "" {
				t.Fatalf("object without name: %+v", o)
			}
			if o.Certificate != nil {
				if dns, ips := o.Certificate.Spec.Identifiers(); len(dns)+len(ips) == 0 {
					t.Fatalf("certificate without names accepted: %+v", o.Certificate)
				}
			}
			if o.Issuer != nil && o.Issuer.Spec.ACME == nil {
				t.Fatalf("issuer without acme accepted: %+v", o.Issuer)
			}
		}
	})
}
