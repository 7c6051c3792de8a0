package e2e

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// corpusFile reads a manifest of the corpus (test/corpus, real
// cert-manager manifests from docs and guides) and adapts it to the test
// cluster: each replacement is old, new; a missing old is a test bug.
func corpusFile(t *testing.T, name string, replace ...string) string {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join("..", "corpus", name+"-*.yaml"))
	if len(matches) != 1 {
		t.Fatalf("corpus file %s: found %v", name, matches)
	}
	data, err := os.ReadFile(matches[0])
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	for i := 0; i+1 < len(replace); i += 2 {
		if !strings.Contains(s, replace[i]) {
			t.Fatalf("corpus file %s has no %q to adapt", name, replace[i])
		}
		s = strings.ReplaceAll(s, replace[i], replace[i+1])
	}
	path := filepath.Join(t.TempDir(), filepath.Base(matches[0]))
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestApplyCorpusQuickStartIngress: the cert-manager quick start's staging
// Issuer and final Ingress (cert-manager.io/issuer annotation), pointed at
// the test CA, class and a test host, get the Ingress's certificate
// through apply -f, as cert-manager's ingress-shim would make it; the
// Ingress itself is applied only with --apply-ingress.
func TestApplyCorpusQuickStartIngress(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	v := varsFor(t, ns)
	issuer := corpusFile(t, "003",
		"server: https://acme-staging-v02.api.letsencrypt.org/directory", "server: "+v.Server+"\n    caBundle: "+v.CABundle,
		"ingressClassName: nginx", "ingressClassName: "+v.Class)
	// The quick start uses the staging issuer first (step 6), then
	// switches the annotation to letsencrypt-prod.
	ingress := corpusFile(t, "008",
		`cert-manager.io/issuer: "letsencrypt-prod"`, `cert-manager.io/issuer: "letsencrypt-staging"`,
		"example.example.com", v.Host,
		"ingressClassName: nginx", "ingressClassName: "+v.Class)

	out, errOut := mustApply(t, nil, "-n", ns, "-f", issuer, "-f", ingress, "--dry-run=client")
	wantAll(t, "client dry run", out, "certificate/quickstart-example-tls valid (dry run), made from Ingress kuard as cert-manager would",
		"kind: Certificate", "- "+v.Host, "name: letsencrypt-staging", "secretName: quickstart-example-tls")
	_ = errOut

	out, errOut = mustApply(t, nil, "-n", ns, "-f", issuer, "-f", ingress, "--agree-tos", "--connect-to", env.IngressHTTP)
	wantAll(t, "apply", out, "issuer/letsencrypt-staging registered", "certificate/quickstart-example-tls issued: secret/quickstart-example-tls")
	wantAll(t, "notes", errOut, "ingress/kuard itself was not applied", "kubectl apply -f "+ingress)
	verifySecret(t, ns, "quickstart-example-tls", []string{v.Host})
	assertNoLabeledSolverObjects(t, ns)
	if _, err := kube.NetworkingV1().Ingresses(ns).Get(t.Context(), "kuard", metav1.GetOptions{}); err == nil {
		t.Error("the Ingress was applied without --apply-ingress")
	}

	// --apply-ingress applies the Ingress too; the certificate is current.
	out, _ = mustApply(t, nil, "-n", ns, "-f", issuer, "-f", ingress, "--apply-ingress", "--connect-to", env.IngressHTTP)
	wantAll(t, "apply --apply-ingress", out, "certificate/quickstart-example-tls unchanged")
	ing, err := kube.NetworkingV1().Ingresses(ns).Get(t.Context(), "kuard", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("--apply-ingress: %v", err)
	}
	if ing.Annotations["cert-manager.io/issuer"] != "letsencrypt-staging" || len(ing.Spec.TLS) != 1 || ing.Spec.TLS[0].SecretName != "quickstart-example-tls" {
		t.Errorf("applied Ingress %+v", ing)
	}
}

// TestApplyCorpusV1alpha2ClusterIssuer: the cert-manager 0.12 docs'
// cert-manager.io/v1alpha2 ClusterIssuer registers, converted as cmctl
// convert does. v1alpha2 has no caBundle, so the CA is trusted through
// SSL_CERT_FILE, as a user would.
func TestApplyCorpusV1alpha2ClusterIssuer(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	v := varsFor(t, ns)
	name := ns + "-le"
	path := corpusFile(t, "075",
		"name: letsencrypt-staging", "name: "+name,
		"server: https://acme-staging-v02.api.letsencrypt.org/directory", "server: "+v.Server,
		"class: nginx", "class: "+v.Class)
	out, errOut := mustApply(t, []string{"SSL_CERT_FILE=" + env.ACMECABundle}, "--cluster-resource-namespace", ns, "-f", path, "--agree-tos")
	wantAll(t, "apply", out, "clusterissuer/"+name+" registered")
	wantAll(t, "notes", errOut, "ClusterIssuer "+name+": converted from cert-manager.io/v1alpha2 to cert-manager.io/v1 as cmctl convert does")
	if _, err := kube.CoreV1().Secrets(ns).Get(t.Context(), "example-issuer-account-key", metav1.GetOptions{}); err != nil {
		t.Errorf("account key: %v", err)
	}
	out = mustACME(t, env.Kubeconfig, "get", "issuers", "--cluster-resource-namespace", ns, "-A")
	wantAll(t, "get issuers", out, name)
}

// TestApplyCorpusWaitInsteadOfSelfCheck: the cert-manager docs' issuer
// with waitInsteadOfSelfCheck issues although the self-check URL cannot be
// reached from here (--connect-to sends the self-check to a closed port,
// while the CA validates through the ingress as always): the progress says
// it waits instead. The same run without the wait fails at the self-check,
// so the wait is what made it pass.
func TestApplyCorpusWaitInsteadOfSelfCheck(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	v := varsFor(t, ns)
	name := ns + "-wait"
	issuer := corpusFile(t, "012",
		"name: letsencrypt-staging", "name: "+name,
		"server: https://acme-staging-v02.api.letsencrypt.org/directory", "server: "+v.Server+"\n    caBundle: "+v.CABundle,
		"ingressClassName: nginx-public", "ingressClassName: "+v.Class,
		"waitInsteadOfSelfCheck: 30s", "waitInsteadOfSelfCheck: 2s")
	closed := closedPort(t)
	cert := filepath.Join(t.TempDir(), "cert.yaml")
	if err := os.WriteFile(cert, []byte("apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata:\n  name: web\nspec:\n  secretName: web-tls\n  dnsNames: ["+v.Host+"]\n  issuerRef: {name: "+name+", kind: ClusterIssuer}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut := mustApply(t, nil, "-n", ns, "--cluster-resource-namespace", ns, "-f", issuer, "-f", cert, "--agree-tos", "--connect-to", closed)
	wantAll(t, "apply", out, "certificate/web issued: secret/web-tls")
	wantAll(t, "progress", errOut, "waiting 2s instead of the self-check (waitInsteadOfSelfCheck)")
	if strings.Contains(errOut, "self-check passed") {
		t.Error("the self-check ran although waitInsteadOfSelfCheck is set")
	}
	verifySecret(t, ns, "web-tls", []string{v.Host})
	assertNoLabeledSolverObjects(t, ns)

	// The flag does the same for an issue of a plain issuer; without it
	// the self-check to the closed port fails.
	plain := corpusFile(t, "003",
		"server: https://acme-staging-v02.api.letsencrypt.org/directory", "server: "+v.Server+"\n    caBundle: "+v.CABundle,
		"ingressClassName: nginx", "ingressClassName: "+v.Class)
	mustApply(t, nil, "-n", ns, "-f", plain, "--agree-tos")
	_, errOut, code := acmeCmd(t, env.Kubeconfig, "issue", "other", "-n", ns, "--issuer", "letsencrypt-staging", "-d", "other."+v.Host, "--connect-to", closed, "--self-check-timeout", "3s")
	if code == 0 {
		t.Fatalf("issue succeeded although the self-check cannot reach %s:\n%s", closed, errOut)
	}
	assertNoLabeledSolverObjects(t, ns)
	_, errOut, code = acmeCmd(t, env.Kubeconfig, "issue", "other", "-n", ns, "--issuer", "letsencrypt-staging", "-d", "other."+v.Host, "--connect-to", closed, "--wait-instead-of-self-check", "1s")
	if code != 0 {
		t.Fatalf("issue --wait-instead-of-self-check failed:\n%s", errOut)
	}
	wantAll(t, "issue progress", errOut, "waiting 1s instead of the self-check")
	verifySecret(t, ns, "other", []string{"other." + v.Host})
	assertNoLabeledSolverObjects(t, ns)
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestApplyCorpusGatewayParentRefAnnotations: the cert-manager Gateway
// guide's ClusterIssuer with gatewayHTTPRoute: {} (no parentRefs) and its
// Certificate naming the Gateway in acme.cert-manager.io/http01-parentref*
// annotations (cert-manager 1.20+), with TLS-server usages, issue through
// an HTTPRoute attached to that Gateway. The guide's other Certificate names
// a ListenerSet, which this cluster does not serve: refused saying so,
// leaving nothing behind.
func TestApplyCorpusGatewayParentRefAnnotations(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	v := varsFor(t, ns)
	name := ns + "-gw"
	issuer := corpusFile(t, "021",
		"name: letsencrypt\n", "name: "+name+"\n",
		"server: https://acme-v02.api.letsencrypt.org/directory", "server: "+v.Server+"\n    caBundle: "+v.CABundle)
	cert := corpusFile(t, "023",
		"acme.cert-manager.io/http01-parentrefname: eg", "acme.cert-manager.io/http01-parentrefname: "+v.GatewayName,
		"acme.cert-manager.io/http01-parentrefnamespace: envoy-gateway-system", "acme.cert-manager.io/http01-parentrefnamespace: "+v.GatewayNamespace,
		"namespace: dev", "namespace: "+ns,
		"echo.example.com", v.Host,
		"name: letsencrypt\n", "name: "+name+"\n")
	out, errOut := mustApply(t, nil, "--cluster-resource-namespace", ns, "-f", issuer, "-f", cert, "--agree-tos", "--connect-to", env.IngressHTTP)
	wantAll(t, "apply", out, "clusterissuer/"+name+" registered", "certificate/backend-tls issued: secret/backend-tls")
	wantAll(t, "notes", errOut, "Gateway eg skipped")
	verifySecret(t, ns, "backend-tls", []string{v.Host})
	assertNoLabeledSolverObjects(t, ns)

	ls := corpusFile(t, "022",
		"namespace: dev", "namespace: "+ns,
		"name: backend-tls", "name: ls-tls",
		"secretName: backend-tls", "secretName: ls-tls",
		"echo.example.com", "ls."+v.Host,
		"name: letsencrypt\n", "name: "+name+"\n")
	_, errOut, code := applyCmd(t, "", nil, "--cluster-resource-namespace", ns, "-f", ls, "--connect-to", env.IngressHTTP)
	if code == 0 {
		t.Fatal("a ListenerSet parent was accepted by a cluster that does not serve ListenerSets")
	}
	wantAll(t, "ListenerSet refusal", errOut, "parent ListenerSet "+ns+"/backend: the cluster does not serve ListenerSets")
	assertNoLabeledSolverObjects(t, ns)
	if _, err := kube.CoreV1().Secrets(ns).Get(t.Context(), "ls-tls", metav1.GetOptions{}); err == nil {
		t.Error("a Secret was written for the refused certificate")
	}
}
