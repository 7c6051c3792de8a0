package manifest

import (
	"reflect"
	"strings"
	"testing"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
)

const v1Docs = `# The shape of cert-manager's ACME documentation examples.
apiVersion: cert-manager.io/v1
kind: Issuer
metadata:
  name: letsencrypt-staging
  namespace: default
spec:
  acme:
    server: https://acme-staging-v02.api.letsencrypt.org/directory
    email: user@example.com
    privateKeySecretRef:
      name: letsencrypt-staging
    solvers:
    - selector: {}
      http01:
        ingress:
          ingressClassName: nginx
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata:
  name: example-com
  namespace: default
spec:
  secretName: example-com-tls
  duration: 2160h # 90d
  renewBefore: 360h # 15d
  isCA: false
  privateKey:
    algorithm: RSA
    encoding: PKCS1
    size: 2048
  commonName: example.com
  dnsNames:
  - example.com
  - www.example.com
  issuerRef:
    name: letsencrypt-staging
    kind: Issuer
    group: cert-manager.io
`

const legacyDocs = `apiVersion: certmanager.k8s.io/v1alpha1
kind: ClusterIssuer
metadata:
  name: letsencrypt-prod
spec:
  acme:
    server: https://acme-v02.api.letsencrypt.org/directory
    email: user@example.com
    privateKeySecretRef:
      name: letsencrypt-prod
    http01: {}
---
apiVersion: certmanager.k8s.io/v1alpha1
kind: Certificate
metadata:
  name: example-com
spec:
  secretName: example-com-tls
  issuerRef:
    name: letsencrypt-prod
    kind: ClusterIssuer
  commonName: example.com
  dnsNames:
  - www.example.com
  keyAlgorithm: ecdsa
  keySize: 256
  acme:
    config:
    - http01:
        ingressClass: nginx
      domains:
      - example.com
    - http01:
        ingress: my-ingress
      domains:
      - www.example.com
`

func decodeOK(t *testing.T, in string) []*Object {
	t.Helper()
	r := Decode("in.yaml", []byte(in))
	if len(r.Errors) > 0 {
		t.Fatalf("errors:\n%v", r.Errors)
	}
	return r.Objects
}

func TestDecodeV1(t *testing.T) {
	objs := decodeOK(t, v1Docs)
	if len(objs) != 2 {
		t.Fatalf("%d objects", len(objs))
	}
	iss := objs[0].Issuer
	if iss == nil || iss.Kind != "Issuer" || iss.Namespace != "default" || iss.Spec.ACME.PrivateKeySecretRef.Name != "letsencrypt-staging" {
		t.Fatalf("issuer: %+v", iss)
	}
	if s := iss.Spec.ACME.Solvers; len(s) != 1 || s[0].Selector == nil || *s[0].HTTP01.Ingress.IngressClassName != "nginx" {
		t.Errorf("solvers: %+v", s)
	}
	cert := objs[1].Certificate
	if cert == nil || cert.Spec.SecretName != "example-com-tls" || cert.Spec.Duration.Duration.Hours() != 2160 ||
		cert.Spec.RenewBefore.Duration.Hours() != 360 || cert.Spec.PrivateKey.Size != 2048 {
		t.Fatalf("certificate: %+v", cert)
	}
	if objs[1].Doc != 2 || objs[1].Item != -1 {
		t.Errorf("location %+v", objs[1].Location)
	}
}

func TestDecodeGatewayHTTPRoute(t *testing.T) {
	objs := decodeOK(t, `apiVersion: cert-manager.io/v1
kind: ClusterIssuer
metadata: {name: le}
spec:
  acme:
    server: https://acme.example/dir
    privateKeySecretRef: {name: le}
    solvers:
    - http01:
        gatewayHTTPRoute:
          serviceType: NodePort
          labels: {gateway: public}
          parentRefs:
          - name: web
            namespace: infra
            kind: Gateway
            sectionName: http
            port: 80
          podTemplate:
            spec:
              nodeSelector: {pool: edge}
`)
	sv := objs[0].Issuer.Spec.ACME.Solvers[0]
	rt := sv.HTTP01.GatewayHTTPRoute
	if !sv.IsGatewayHTTPRoute() || rt.ServiceType != "NodePort" || rt.Labels["gateway"] != "public" || rt.PodTemplate.Spec.NodeSelector["pool"] != "edge" {
		t.Fatalf("gatewayHTTPRoute: %+v", rt)
	}
	if p := rt.ParentRefs; len(p) != 1 || p[0].Name != "web" || *p[0].Namespace != "infra" || *p[0].Kind != "Gateway" || *p[0].SectionName != "http" || *p[0].Port != 80 {
		t.Errorf("parentRefs: %+v", p)
	}
}

func TestDecodeLegacy(t *testing.T) {
	objs := decodeOK(t, legacyDocs)
	if len(objs) != 2 {
		t.Fatalf("%d objects", len(objs))
	}
	iss := objs[0].Issuer
	if iss.Kind != "ClusterIssuer" || iss.APIVersion != certmanager.GroupVersion || objs[0].APIVersion != LegacyVersion {
		t.Errorf("issuer %+v", iss)
	}
	// http01: {} becomes a catch-all ingress solver.
	if s := iss.Spec.ACME.Solvers; len(s) != 1 || s[0].Selector != nil || s[0].HTTP01.Ingress == nil {
		t.Errorf("solvers %+v", s)
	}
	o := objs[1]
	cert := o.Certificate
	if cert.Spec.PrivateKey == nil || cert.Spec.PrivateKey.Algorithm != "ECDSA" || cert.Spec.PrivateKey.Size != 256 {
		t.Errorf("private key %+v", cert.Spec.PrivateKey)
	}
	// The common name is ordered as one more name, as cert-manager does.
	if dns, _ := cert.Spec.Identifiers(); !reflect.DeepEqual(dns, []string{"example.com", "www.example.com"}) {
		t.Errorf("names %v", dns)
	}
	if len(o.LegacySolvers) != 2 ||
		*o.LegacySolvers[0].HTTP01.Ingress.Class != "nginx" || o.LegacySolvers[0].Selector.DNSNames[0] != "example.com" ||
		o.LegacySolvers[1].HTTP01.Ingress.Name != "my-ingress" || o.LegacySolvers[1].Selector.DNSNames[0] != "www.example.com" {
		t.Errorf("legacy solvers %+v", o.LegacySolvers)
	}

	// Merging puts them ahead of the catch-all, so cert-manager's picker
	// chooses them for their names.
	n, err := MergeSolvers(iss, o.LegacySolvers)
	if err != nil || n != 2 || len(iss.Spec.ACME.Solvers) != 3 {
		t.Fatalf("merge: %d, %v, %+v", n, err, iss.Spec.ACME.Solvers)
	}
	if got := certmanager.SelectSolver(iss.Spec.ACME.Solvers, nil, "www.example.com"); got != 1 {
		t.Errorf("www.example.com solved by solver %d", got)
	}
	if got := certmanager.SelectSolver(iss.Spec.ACME.Solvers, nil, "other.example.com"); got != 2 {
		t.Errorf("other.example.com solved by solver %d", got)
	}
	// Merging again adds nothing; a conflicting configuration fails.
	if n, err := MergeSolvers(iss, o.LegacySolvers); n != 0 || err != nil {
		t.Errorf("second merge: %d, %v", n, err)
	}
	other := "traefik"
	conflict := []certmanager.ACMEChallengeSolver{{
		Selector: &certmanager.CertificateDNSNameSelector{DNSNames: []string{"example.com"}},
		HTTP01:   &certmanager.ACMEChallengeSolverHTTP01{Ingress: &certmanager.ACMEChallengeSolverHTTP01Ingress{Class: &other}},
	}}
	if _, err := MergeSolvers(iss, conflict); err == nil || !strings.Contains(err.Error(), "different") {
		t.Errorf("conflicting merge: %v", err)
	}
}

func TestDecodeAlternateLegacyGroup(t *testing.T) {
	in := strings.ReplaceAll(legacyDocs, "certmanager.k8s.io", "certmanager.io")
	if objs := decodeOK(t, in); len(objs) != 2 {
		t.Fatalf("%d objects", len(objs))
	}
}

// TestDecodeErrors checks that each problem names the line, the object,
// the field path and why.
func TestDecodeErrors(t *testing.T) {
	cert := func(spec string) string {
		return "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata:\n  name: web\nspec:\n  secretName: web-tls\n  issuerRef: {name: le}\n" + spec
	}
	issuer := func(acme string) string {
		return "apiVersion: cert-manager.io/v1\nkind: Issuer\nmetadata:\n  name: le\nspec:\n  acme:\n    server: https://acme.example/dir\n    privateKeySecretRef: {name: le}\n" + acme
	}
	tests := []struct {
		name string
		in   string
		want []string // each a substring of one error, in order
	}{
		{"usages", cert("  dnsNames: [a.example.com]\n  usages: [server auth, client auth]\n"),
			[]string{"in.yaml:9: Certificate web (document 1): spec.usages[1]: \"client auth\": not possible with an ACME CA"}},
		{"subject", cert("  dnsNames: [a.example.com]\n  subject:\n    organizations: [ACME]\n"),
			[]string{"in.yaml:9: Certificate web (document 1): spec.subject: not possible with an ACME CA"}},
		{"uris, emailAddresses, isCA", cert("  dnsNames: [a.example.com]\n  uris: [spiffe://x]\n  emailAddresses: [a@b.c]\n  isCA: true\n"),
			[]string{":9: Certificate web (document 1): spec.uris: not possible with an ACME CA", ":10:", "spec.emailAddresses: not possible", ":11:", "spec.isCA: not possible with an ACME CA"}},
		{"isCA false is fine", cert("  dnsNames: [a.example.com]\n  isCA: false\n"), nil},
		{"unknown field", cert("  dnsNames: [a.example.com]\n  privateKey:\n    algoritm: RSA\n"),
			[]string{"in.yaml:10: Certificate web (document 1): spec.privateKey.algoritm: unknown field: cert-manager has no such field here; did you mean algorithm?"}},
		{"case matters", cert("  DNSNames: [a.example.com]\n"),
			[]string{"in.yaml:8:", "spec.DNSNames: unknown field: cert-manager has no such field here; did you mean dnsNames?"}},
		{"unknown field in a list, embedded struct", issuer("    solvers:\n    - http01:\n        ingress:\n          podTemplate:\n            spec:\n              nodeSelektor: {a: b}\n"),
			[]string{"in.yaml:14:", "spec.acme.solvers[0].http01.ingress.podTemplate.spec.nodeSelektor: unknown field: cert-manager has no such field here; did you mean nodeSelector?"}},
		{"no suggestion", cert("  dnsNames: [a.example.com]\n  frobnicate: true\n"),
			[]string{"spec.frobnicate: unknown field: cert-manager has no such field here"}},
		{"wrong type", cert("  dnsNames: a.example.com\n"),
			[]string{"in.yaml:8: Certificate web (document 1): spec.dnsNames: want a list, got a string"}},
		{"bad duration", cert("  dnsNames: [a.example.com]\n  duration: 90d\n"),
			[]string{"in.yaml:9:", "spec.duration: \"90d\" is not a duration"}},
		{"wildcard", cert("  dnsNames: [a.example.com, '*.example.com']\n"),
			[]string{"in.yaml:8:", "spec.dnsNames[1]: domain \"*.example.com\": wildcard names need DNS-01"}},
		{"IP in dnsNames", cert("  dnsNames: [192.0.2.1]\n"),
			[]string{"spec.dnsNames[0]: \"192.0.2.1\" is an IP address: list it in ipAddresses"}},
		{"duplicate name", cert("  dnsNames: [a.example.com, A.example.com]\n"),
			[]string{"spec.dnsNames[1]: \"A.example.com\" is already given at spec.dnsNames[0]"}},
		{"no names", cert(""), []string{"spec: at least one of commonName, dnsNames and ipAddresses"}},
		{"both renewBefore", cert("  dnsNames: [a.example.com]\n  renewBefore: 24h\n  renewBeforePercentage: 20\n"),
			[]string{"spec.renewBeforePercentage: set either renewBefore or renewBeforePercentage"}},
		{"output format", cert("  dnsNames: [a.example.com]\n  additionalOutputFormats:\n  - type: PKCS12\n"),
			[]string{"in.yaml:10:", "spec.additionalOutputFormats[0].type: \"PKCS12\": use DER or CombinedPEM"}},
		{"keystores", cert("  dnsNames: [a.example.com]\n  keystores:\n    pkcs12: {create: true}\n"),
			[]string{"spec.keystores: not supported"}},
		{"external issuer", "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: web}\nspec:\n  secretName: s\n  dnsNames: [a.example.com]\n  issuerRef: {name: x, group: awspca.cert-manager.io, kind: AWSPCAIssuer}\n",
			[]string{"spec.issuerRef.kind: \"AWSPCAIssuer\"", "spec.issuerRef.group: \"awspca.cert-manager.io\": external issuers are not supported"}},
		{"dotted name", strings.Replace(cert("  dnsNames: [a.example.com]\n"), "name: web", "name: web.example.com", 1),
			[]string{"in.yaml:4:", "metadata.name: invalid certificate name"}},
		{"dns01 solver", issuer("    solvers:\n    - dns01:\n        route53: {region: x}\n"),
			[]string{"in.yaml:10: Issuer le (document 1): spec.acme.solvers[0].dns01: not supported: kubectl-acme solves HTTP-01"}},
		{"parentRef annotations apart", "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata:\n  name: web\n  annotations: {acme.cert-manager.io/http01-parentrefname: gw}\nspec:\n  secretName: web\n  issuerRef: {name: le}\n  dnsNames: [a.example.com]\n",
			[]string{"metadata.annotations: the annotations acme.cert-manager.io/http01-parentrefname and acme.cert-manager.io/http01-parentrefkind go together"}},
		{"negative wait", issuer("    solvers:\n    - http01:\n        ingress: {}\n      waitInsteadOfSelfCheck: -1s\n"),
			[]string{"spec.acme.solvers[0].waitInsteadOfSelfCheck: must not be negative"}},
		{"gateway solver with a bad parentRef", issuer("    solvers:\n    - http01:\n        gatewayHTTPRoute:\n          parentRefs: [{namespace: Infra}]\n          serviceType: LoadBalancer\n"),
			[]string{"gatewayHTTPRoute.parentRefs[0].name: required", "gatewayHTTPRoute.parentRefs[0].namespace: \"Infra\" is not a valid namespace", "gatewayHTTPRoute.serviceType: \"LoadBalancer\""}},
		{"ingress and gateway solver", issuer("    solvers:\n    - http01:\n        ingress: {}\n        gatewayHTTPRoute: {parentRefs: [{name: gw}]}\n"),
			[]string{"spec.acme.solvers[0].http01: exactly one of ingress and gatewayHTTPRoute is required"}},
		{"unknown gateway solver field", issuer("    solvers:\n    - http01:\n        gatewayHTTPRoute: {parentRefs: [{name: gw}], hostnames: [a]}\n"),
			[]string{"gatewayHTTPRoute.hostnames"}},
		{"class and name", issuer("    solvers:\n    - http01:\n        ingress: {class: nginx, name: web}\n"),
			[]string{"spec.acme.solvers[0].http01.ingress: only one of class, ingressClassName and name"}},
		{"service type", issuer("    solvers:\n    - http01:\n        ingress: {serviceType: LoadBalancer}\n"),
			[]string{"spec.acme.solvers[0].http01.ingress.serviceType: \"LoadBalancer\": use ClusterIP or NodePort"}},
		{"http server", strings.Replace(issuer(""), "https://", "http://", 1),
			[]string{"in.yaml:7:", "spec.acme.server: \"http://acme.example/dir\": want an https://"}},
		{"bad caBundle", issuer("    caBundle: bm90IFBFTQ==\n"),
			[]string{"in.yaml:9:", "spec.acme.caBundle: holds no PEM certificate"}},
		{"not acme", "apiVersion: cert-manager.io/v1\nkind: ClusterIssuer\nmetadata: {name: ca}\nspec:\n  ca: {secretName: ca}\n",
			[]string{"in.yaml:5: ClusterIssuer ca (document 1): spec.ca: not supported: kubectl-acme implements ACME issuers only"}},
		{"eab", issuer("    externalAccountBinding:\n      keyID: kid\n      keySecretRef: {name: eab, key: secret}\n      keyAlgorithm: HS512\n"),
			[]string{"spec.acme.externalAccountBinding.keyAlgorithm: \"HS512\""}},
		{"old version", "apiVersion: cert-manager.io/v1alpha1\nkind: Certificate\nmetadata: {name: a}\n",
			[]string{"in.yaml:1:", "apiVersion: cert-manager.io/v1alpha1 is not supported"}},
		{"other cert-manager kind", "apiVersion: cert-manager.io/v1\nkind: CertificateRequest\nmetadata: {name: a}\n",
			[]string{"kind: cert-manager.io/v1 CertificateRequest is not supported"}},
		{"no kind", "apiVersion: v1\nmetadata: {name: a}\n", []string{"kind: required: apiVersion and kind say what the object is"}},
		{"scalar document", "just text\n", []string{"in.yaml:1:", "not a Kubernetes object"}},
		{"yaml syntax, second document", "apiVersion: v1\nkind: List\n---\napiVersion: cert-manager.io/v1\nkind: Issuer\nmetadata:\n  name: x\n   bad: indent\n",
			[]string{"in.yaml:8: document 2: YAML syntax error: mapping values are not allowed"}},
		{"yaml syntax on a document's first line", "---\n\tkind: x\n", []string{"in.yaml:2: document 1: YAML syntax error"}},
		{"duplicate key", "apiVersion: cert-manager.io/v1\nkind: Issuer\nkind: Issuer\n", []string{"in.yaml:3:", "already set"}},
		{"legacy dns01 config", "apiVersion: certmanager.k8s.io/v1alpha1\nkind: Certificate\nmetadata: {name: web}\nspec:\n  secretName: s\n  issuerRef: {name: le}\n  dnsNames: [a.example.com]\n  acme:\n    config:\n    - dns01: {provider: route53}\n      domains: [a.example.com]\n",
			[]string{"in.yaml:10:", "spec.acme.config[0].dns01: not supported"}},
		{"legacy config for a foreign name", "apiVersion: certmanager.k8s.io/v1alpha1\nkind: Certificate\nmetadata: {name: web}\nspec:\n  secretName: s\n  issuerRef: {name: le}\n  dnsNames: [a.example.com]\n  acme:\n    config:\n    - http01: {ingressClass: nginx}\n      domains: [b.example.com]\n",
			[]string{"in.yaml:11:", "spec.acme.config[0].domains[0]: \"b.example.com\" is not one of the certificate's names"}},
		{"legacy organization", "apiVersion: certmanager.k8s.io/v1alpha1\nkind: Certificate\nmetadata: {name: web}\nspec:\n  secretName: s\n  issuerRef: {name: le}\n  dnsNames: [a.example.com]\n  organization: [ACME]\n",
			[]string{"in.yaml:8:", "spec.organization: not possible with an ACME CA"}},
		{"legacy issuer dns01", "apiVersion: certmanager.k8s.io/v1alpha1\nkind: Issuer\nmetadata: {name: le}\nspec:\n  acme:\n    server: https://acme.example/dir\n    privateKeySecretRef: {name: le}\n    dns01:\n      providers: [{name: x}]\n",
			[]string{"in.yaml:8:", "spec.acme.dns01: not supported"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Decode("in.yaml", []byte(tt.in))
			got := r.Errors.Error()
			if tt.want == nil {
				if len(r.Errors) > 0 {
					t.Fatalf("unexpected errors:\n%s", got)
				}
				return
			}
			if len(r.Objects) > 0 {
				t.Errorf("an object with errors was returned: %+v", r.Objects[0])
			}
			rest := got
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("errors lack %q (in order):\n%s", w, got)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}

func TestDecodeReportsEveryProblem(t *testing.T) {
	in := "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: a}\nspec:\n  secretName: s\n  issuerRef: {name: le}\n  dnsNames: [a.example.com]\n  usages: [any]\n  bogus: 1\n" +
		"---\napiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: b}\nspec:\n  secretName: s\n  issuerRef: {name: le}\n  dnsNames: [b.example.com]\n  isCA: true\n"
	r := Decode("in.yaml", []byte(in))
	if len(r.Errors) != 3 {
		t.Fatalf("want 3 errors, got:\n%v", r.Errors)
	}
}

func TestDecodeJSONAndLists(t *testing.T) {
	in := `{"apiVersion": "v1", "kind": "List", "items": [
  {"apiVersion": "cert-manager.io/v1", "kind": "Issuer", "metadata": {"name": "le"},
   "spec": {"acme": {"server": "https://acme.example/dir", "privateKeySecretRef": {"name": "le"}, "solvers": [{"http01": {"ingress": {}}}]}}},
  {"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "web"},
   "spec": {"secretName": "web", "issuerRef": {"name": "le"}, "dnsNames": ["a.example.com"], "usages": ["any"]}}
]}
{"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "web2"},
 "spec": {"secretName": "web2", "issuerRef": {"name": "le"}, "dnsNames": ["b.example.com"]}}
`
	r := Decode("in.json", []byte(in))
	if len(r.Objects) != 2 || r.Objects[0].Kind != "Issuer" || r.Objects[1].Name() != "web2" || r.Objects[1].Doc != 2 {
		t.Fatalf("objects %+v", r.Objects)
	}
	if len(r.Errors) != 1 || !strings.Contains(r.Errors[0].Error(), "in.json:5: Certificate web (document 1, item 1): spec.usages[0]: \"any\": not possible") {
		t.Fatalf("errors:\n%v", r.Errors)
	}
	if r := Decode("in.json", []byte(`{"apiVersion": "v1",`+"\n"+`"kind": }`)); len(r.Errors) != 1 || !strings.Contains(r.Errors[0].Error(), "in.json:2: document 1: JSON syntax error") {
		t.Fatalf("syntax error: %v", r.Errors)
	}
	// A YAML List works too, with lines inside the items.
	y := "apiVersion: v1\nkind: List\nitems:\n- apiVersion: cert-manager.io/v1\n  kind: Certificate\n  metadata: {name: c}\n  spec:\n    secretName: c\n    issuerRef: {name: le}\n    dnsNames: [c.example.com]\n    uris: [x]\n"
	if r := Decode("l.yaml", []byte(y)); len(r.Errors) != 1 || !strings.Contains(r.Errors[0].Error(), "l.yaml:11: Certificate c (document 1, item 0): spec.uris") {
		t.Fatalf("list errors: %v", r.Errors)
	}
}

func TestDecodeSkipsOtherKinds(t *testing.T) {
	r := Decode("app.yaml", []byte("apiVersion: v1\nkind: Service\nmetadata: {name: web}\n---\n---\n# only a comment\n"))
	if len(r.Errors) > 0 || len(r.Objects) > 0 || len(r.Skipped) != 1 || !strings.Contains(r.Skipped[0], "v1 Service web skipped") {
		t.Fatalf("%+v", r)
	}
}

func TestSetNamespaces(t *testing.T) {
	objs := decodeOK(t, v1Docs+"---\n"+strings.ReplaceAll(v1Docs, "  namespace: default\n", ""))
	if errs := SetNamespaces(objs, "default", false); len(errs) != 2 || !strings.Contains(errs[0].Reason, "given twice") {
		t.Fatalf("duplicates: %v", errs)
	}
	objs = decodeOK(t, v1Docs)
	if errs := SetNamespaces(objs, "other", true); len(errs) != 2 || errs[0].Path != "metadata.namespace" {
		t.Fatalf("namespace mismatch: %v", errs)
	}
	objs = decodeOK(t, strings.Replace(v1Docs, "  namespace: default\n", "", -1))
	if errs := SetNamespaces(objs, "team", true); len(errs) != 0 || objs[0].Namespace() != "team" || objs[1].Namespace() != "team" {
		t.Fatalf("defaulting: %v", errs)
	}
}
