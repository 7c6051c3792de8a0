package e2e

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// manifestVars fill the templates in testdata/apply: the test CA, the
// served ingress class and a host name unique to the test.
type manifestVars struct {
	Server, CABundle, Class, Host string
	// The Gateway the HTTPRoute solver's routes attach to.
	GatewayNamespace, GatewayName string
}

func varsFor(t *testing.T, ns string) manifestVars {
	t.Helper()
	pemCA, err := os.ReadFile(env.ACMECABundle)
	if err != nil {
		t.Fatal(err)
	}
	return manifestVars{
		Server:   env.ACMEServer,
		CABundle: base64.StdEncoding.EncodeToString(pemCA),
		Class:    env.IngressClass,
		Host:     ns + ".example.test",

		GatewayNamespace: env.GatewayNamespace,
		GatewayName:      env.GatewayName,
	}
}

// renderManifest writes testdata/apply/NAME, filled with v, into dir (a
// new temporary directory if empty) and returns its path.
func renderManifest(t *testing.T, dir, name string, v manifestVars) string {
	t.Helper()
	tmpl, err := template.ParseFiles(filepath.Join("testdata", "apply", name))
	if err != nil {
		t.Fatal(err)
	}
	if dir == "" {
		dir = t.TempDir()
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, v); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// applyCmd runs `kubectl acme apply ARGS` as the cluster admin, with extra
// environment variables and stdin.
func applyCmd(t *testing.T, stdin string, extraEnv []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kubectl", append([]string{"acme", "apply"}, args...)...)
	cmd.Env = append(append(os.Environ(), "KUBECONFIG="+env.Kubeconfig), extraEnv...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("kubectl acme apply %s: %v", strings.Join(args, " "), err)
	}
	t.Logf("$ kubectl acme apply %s  # exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errOut.String())
	return out.String(), errOut.String(), code
}

func mustApply(t *testing.T, extraEnv []string, args ...string) (stdout, stderr string) {
	t.Helper()
	out, errOut, code := applyCmd(t, "", extraEnv, args...)
	if code != 0 {
		t.Fatalf("kubectl acme apply %s failed (exit %d):\n%s", strings.Join(args, " "), code, errOut)
	}
	return out, errOut
}

func wantAll(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, got)
		}
	}
}

// assertNoLabeledSolverObjects is assertNoSolverObjects for namespaces
// that hold the user's own objects: only solver-labelled ones count.
func assertNoLabeledSolverObjects(t *testing.T, ns string) {
	t.Helper()
	ctx := t.Context()
	sel := metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=http01-solver"}
	var left []string
	pods, err := kube.CoreV1().Pods(ns).List(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		left = append(left, "pod/"+p.Name)
	}
	svcs, _ := kube.CoreV1().Services(ns).List(ctx, sel)
	for _, s := range svcs.Items {
		left = append(left, "service/"+s.Name)
	}
	ings, _ := kube.NetworkingV1().Ingresses(ns).List(ctx, sel)
	for _, i := range ings.Items {
		left = append(left, "ingress/"+i.Name)
	}
	cms, _ := kube.CoreV1().ConfigMaps(ns).List(ctx, sel)
	for _, c := range cms.Items {
		left = append(left, "configmap/"+c.Name)
	}
	left = append(left, solverHTTPRoutes(t, ns, sel.LabelSelector)...)
	if len(left) > 0 {
		t.Errorf("solver objects left in %s: %v", ns, left)
	}
}

// TestApplyDocsV1 applies the Issuer and Certificate of cert-manager's
// documentation (cert-manager.io/v1) as they are, but for the CA.
func TestApplyDocsV1(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	v := varsFor(t, ns)
	dir := t.TempDir()
	path := renderManifest(t, dir, "v1-docs.yaml", v)
	names := []string{v.Host, "www." + v.Host}

	// Dry runs change nothing: from a file, from stdin, from a directory.
	out, _ := mustApply(t, nil, "-n", ns, "-f", path, "--dry-run=client")
	wantAll(t, "client dry run", out, "issuer/letsencrypt-staging valid (dry run)", "certificate/example-com valid (dry run)")
	data, _ := os.ReadFile(path)
	out, _, code := applyCmd(t, string(data), nil, "-n", ns, "-f", "-", "--dry-run=server")
	if code != 0 {
		t.Fatalf("server dry run from stdin failed")
	}
	wantAll(t, "server dry run", out, "issuer/letsencrypt-staging valid (dry run: server)", "certificate/example-com valid (dry run: server)")
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, filepath.Join(sub, "v1-docs.yaml")); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := applyCmd(t, "", nil, "-n", ns, "-f", dir, "--dry-run"); code == 0 || !strings.Contains(errOut, "use -R") {
		t.Errorf("a directory without -R read its subdirectory (exit %d): %s", code, errOut)
	}
	mustApply(t, nil, "-n", ns, "-f", dir, "-R", "--dry-run")
	cms, err := kube.CoreV1().ConfigMaps(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=kubectl-acme"})
	if err != nil || len(cms.Items) > 0 {
		t.Fatalf("dry runs stored something: %v %v", cms, err)
	}

	out, _ = mustApply(t, nil, "-n", ns, "-f", dir, "-R", "--agree-tos", "--connect-to", env.IngressHTTP)
	wantAll(t, "apply", out, "issuer/letsencrypt-staging registered", "certificate/example-com issued: secret/example-com-tls")
	verifySecret(t, ns, "example-com-tls", names)
	assertNoSolverObjects(t, ns)

	sec, err := kube.CoreV1().Secrets(ns).Get(t.Context(), "example-com-tls", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sec.Labels["my-secret-label"] != "foo" || sec.Annotations["my-secret-annotation-1"] != "foo" || sec.Annotations["my-secret-annotation-2"] != "bar" {
		t.Errorf("secretTemplate not applied: labels %v annotations %v", sec.Labels, sec.Annotations)
	}
	if want := string(sec.Data["tls.key"]) + "\n" + string(sec.Data["tls.crt"]); string(sec.Data["tls-combined.pem"]) != want {
		t.Errorf("tls-combined.pem is not the key followed by the chain")
	}
	if _, err := x509.ParsePKCS1PrivateKey(sec.Data["key.der"]); err != nil {
		t.Errorf("key.der is not the PKCS#1 DER key: %v", err)
	}

	// Applying again leaves a valid certificate alone.
	out, _ = mustApply(t, nil, "-n", ns, "-f", dir, "-R", "--connect-to", env.IngressHTTP)
	wantAll(t, "second apply", out, "certificate/example-com unchanged")
	if again, _ := kube.CoreV1().Secrets(ns).Get(t.Context(), "example-com-tls", metav1.GetOptions{}); !bytes.Equal(again.Data["tls.crt"], sec.Data["tls.crt"]) {
		t.Error("an unchanged certificate was issued again")
	}
	out = mustACME(t, env.Kubeconfig, "status", "-n", ns)
	wantAll(t, "status", out, "example-com", "Ready")
}

// TestApplyLegacyV1alpha1 applies the certmanager.k8s.io/v1alpha1 example
// as old docs show it. That API has no caBundle, so the CA is trusted the
// way a user would: SSL_CERT_FILE.
func TestApplyLegacyV1alpha1(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	v := varsFor(t, ns)
	path := renderManifest(t, "", "v1alpha1-docs.yaml", v)
	out, errOut := mustApply(t, []string{"SSL_CERT_FILE=" + env.ACMECABundle}, "-n", ns, "-f", path, "--agree-tos", "--connect-to", env.IngressHTTP)
	wantAll(t, "apply", out, "issuer/letsencrypt-staging registered", "certificate/example-com issued: secret/example-com-tls")
	wantAll(t, "notes", errOut, "issuer/letsencrypt-staging: added 1 solver(s) from certificate/example-com's spec.acme.config")
	// The commonName is ordered as a name too, as cert-manager does.
	verifySecret(t, ns, "example-com-tls", []string{v.Host, "www." + v.Host})
	assertNoSolverObjects(t, ns)

	// The Issuer is stored as cert-manager.io/v1, with the Certificate's
	// per-domain solver in front of the catch-all from http01: {}.
	cm, err := kube.CoreV1().ConfigMaps(ns).Get(t.Context(), "acme-issuer-letsencrypt-staging", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantAll(t, "stored issuer", cm.Data["issuer.yaml"], "apiVersion: cert-manager.io/v1", "class: "+v.Class, "- www."+v.Host, "ingress: {}")
}

// TestApplySolverSelection: each name is solved by the solver cert-manager
// would pick; every other solver uses a class nobody serves, so a wrong
// pick fails the self-check.
func TestApplySolverSelection(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	v := varsFor(t, ns)
	path := renderManifest(t, "", "selectors.yaml", v)
	out, _ := mustApply(t, nil, "-n", ns, "-f", path, "--agree-tos", "--connect-to", env.IngressHTTP, "--concurrency", "2", "--self-check-timeout", "20s")
	wantAll(t, "apply", out, "certificate/zones issued", "certificate/labels issued")
	verifySecret(t, ns, "zones", []string{"www.zone." + v.Host, "a.deep.zone." + v.Host})
	verifySecret(t, ns, "labels", []string{"labels." + v.Host})
	assertNoSolverObjects(t, ns)

	// A name no solver selects stops everything before any order.
	path = renderManifest(t, "", "no-solver.yaml", v)
	_, errOut, code := applyCmd(t, "", nil, "-n", ns, "-f", path, "--agree-tos", "--connect-to", env.IngressHTTP)
	if code == 0 {
		t.Fatal("apply succeeded with a name no solver selects")
	}
	wantAll(t, "error", errOut, "nothing was changed", `no HTTP-01 solver of issuer "strict" selects other.`+v.Host)
	if _, err := kube.CoreV1().ConfigMaps(ns).Get(t.Context(), "acme-issuer-strict", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the issuer was stored although the apply failed: %v", err)
	}
}

// TestApplyExistingIngress: with http01.ingress.name the user's Ingress
// gets the challenge paths and, after success and after failure, is
// exactly as it was.
func TestApplyExistingIngress(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	v := varsFor(t, ns)
	prefix := networkingv1.PathTypePrefix
	ing := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Annotations: map[string]string{"nginx.ingress.kubernetes.io/ssl-redirect": "false"}},
		Spec: networkingv1.IngressSpec{
			IngressClassName: ptr.To(v.Class),
			TLS:              []networkingv1.IngressTLS{{Hosts: []string{v.Host, "www." + v.Host}, SecretName: "web-tls"}},
			Rules: []networkingv1.IngressRule{{
				Host: v.Host,
				IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
					Path: "/", PathType: &prefix,
					Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}},
				}}}},
			}},
		},
	}
	ings := kube.NetworkingV1().Ingresses(ns)
	if _, err := ings.Create(t.Context(), ing, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	spec := func() string {
		got, err := ings.Get(t.Context(), "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(got.Spec)
		return string(b)
	}
	before := spec()
	path := renderManifest(t, "", "existing-ingress.yaml", v)
	mustApply(t, nil, "-n", ns, "-f", path, "--agree-tos", "--connect-to", env.IngressHTTP)
	verifySecret(t, ns, "web-tls", []string{v.Host, "www." + v.Host})
	if after := spec(); after != before {
		t.Errorf("ingress spec changed:\nbefore %s\nafter  %s", before, after)
	}
	assertNoLabeledSolverObjects(t, ns)

	// Failure: the Ingress's class is served by nobody, so the self-check
	// fails; the Ingress is still restored.
	got, err := ings.Get(t.Context(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got.Spec.IngressClassName = ptr.To("no-such-class")
	if _, err := ings.Update(t.Context(), got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	before = spec()
	_, errOut, code := applyCmd(t, "", nil, "-n", ns, "-f", path, "--connect-to", env.IngressHTTP, "--reissue", "--self-check-timeout", "3s")
	if code == 0 {
		t.Fatal("apply succeeded through an ingress class nobody serves")
	}
	wantAll(t, "error", errOut, `certificate "web"`, "HTTP 404")
	if after := spec(); after != before {
		t.Errorf("ingress spec changed by a failed apply:\nbefore %s\nafter  %s", before, after)
	}
	assertNoLabeledSolverObjects(t, ns)
}

// TestApplyErrors: every unsupported or unknown field is reported with
// file, line, document and path, a YAML syntax error with file and line,
// and nothing is changed.
func TestApplyErrors(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	v := varsFor(t, ns)
	dir := t.TempDir()
	path := renderManifest(t, dir, "broken.yaml", v)
	_, errOut, code := applyCmd(t, "", nil, "-n", ns, "-f", path, "--agree-tos")
	if code == 0 {
		t.Fatal("apply of broken manifests succeeded")
	}
	wantAll(t, "errors", errOut,
		"error: 3 problems in the manifests; nothing was changed",
		path+":9: Certificate web (document 1): spec.usages[0]: \"client auth\": not possible with an ACME CA",
		path+":13: Certificate web (document 1): spec.privateKey.algoritm: unknown field",
		path+":25: Issuer letsencrypt-staging (document 2): spec.acme.solvers[0].dns01: not supported: kubectl-acme solves HTTP-01 challenges only")

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: cert-manager.io/v1\nkind: Issuer\nmetadata:\n  name: x\n   oops: indented\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = applyCmd(t, "", nil, "-n", ns, "-f", bad)
	if code == 0 || !strings.Contains(errOut, bad+":5: document 1: YAML syntax error") {
		t.Errorf("YAML syntax error (exit %d): %s", code, errOut)
	}
	cms, err := kube.CoreV1().ConfigMaps(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=kubectl-acme"})
	if err != nil || len(cms.Items) > 0 {
		t.Errorf("something was stored: %v %v", cms, err)
	}
	secrets, err := kube.CoreV1().Secrets(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil || len(secrets.Items) > 0 {
		t.Errorf("a secret was created: %v %v", secrets, err)
	}
}

// TestIssueIngress: `issue --ingress` issues one certificate per TLS entry
// of an Ingress, with the issuer from its cert-manager.io annotations, and
// with acme.cert-manager.io/http01-edit-in-place solves through the
// Ingress itself, leaving it as it was.
func TestIssueIngress(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createIssuer(t, env.Kubeconfig, ns, "pebble", env.IngressClass)
	host := ns + ".example.test"
	prefix := networkingv1.PathTypePrefix
	backend := networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "shop", Port: networkingv1.ServiceBackendPort{Number: 80}}}
	rule := func(h string) networkingv1.IngressRule {
		return networkingv1.IngressRule{Host: h, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
			Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: &prefix, Backend: backend}},
		}}}
	}
	ings := kube.NetworkingV1().Ingresses(ns)
	shop := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Annotations: map[string]string{
			"cert-manager.io/issuer":                "pebble",
			"cert-manager.io/private-key-algorithm": "ECDSA",
		}},
		Spec: networkingv1.IngressSpec{
			IngressClassName: ptr.To(env.IngressClass),
			TLS: []networkingv1.IngressTLS{
				{Hosts: []string{"shop." + host, "www.shop." + host}, SecretName: "shop-tls"},
				{Hosts: []string{"api." + host}, SecretName: "api-tls"},
			},
			Rules: []networkingv1.IngressRule{rule("shop." + host), rule("www.shop." + host), rule("api." + host)},
		},
	}
	if _, err := ings.Create(t.Context(), shop, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	out := mustACME(t, env.Kubeconfig, "issue", "--ingress", "shop", "-n", ns, "--connect-to", env.IngressHTTP)
	wantAll(t, "issue --ingress", out, "certificate/shop-tls issued: secret/shop-tls", "certificate/api-tls issued: secret/api-tls")
	leaf := verifySecret(t, ns, "shop-tls", []string{"shop." + host, "www.shop." + host})
	if leaf.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("cert-manager.io/private-key-algorithm ignored: %v", leaf.PublicKeyAlgorithm)
	}
	verifySecret(t, ns, "api-tls", []string{"api." + host})
	out = mustACME(t, env.Kubeconfig, "status", "-n", ns)
	wantAll(t, "status", out, "shop-tls", "api-tls", "Issuer/pebble")

	// Edit in place, issuer from the flag: the challenge goes through the
	// Ingress itself, which ends as it was.
	inplace := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "inplace", Annotations: map[string]string{"acme.cert-manager.io/http01-edit-in-place": "true"}},
		Spec: networkingv1.IngressSpec{
			IngressClassName: ptr.To(env.IngressClass),
			TLS:              []networkingv1.IngressTLS{{Hosts: []string{"inplace." + host}, SecretName: "inplace"}},
			Rules:            []networkingv1.IngressRule{rule("inplace." + host)},
		},
	}
	if _, err := ings.Create(t.Context(), inplace, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, _ := ings.Get(t.Context(), "inplace", metav1.GetOptions{})
	before, _ := json.Marshal(got.Spec)
	_, errOut, code := acmeCmd(t, env.Kubeconfig, "issue", "--ingress", "inplace", "-n", ns, "--issuer", "pebble", "--connect-to", env.IngressHTTP)
	if code != 0 {
		t.Fatalf("issue --ingress inplace: %s", errOut)
	}
	wantAll(t, "progress", errOut, "challenge path(s) to ingress "+ns+"/inplace")
	verifySecret(t, ns, "inplace", []string{"inplace." + host})
	got, _ = ings.Get(t.Context(), "inplace", metav1.GetOptions{})
	if after, _ := json.Marshal(got.Spec); !bytes.Equal(after, before) {
		t.Errorf("ingress spec changed:\nbefore %s\nafter  %s", before, after)
	}
	assertNoLabeledSolverObjects(t, ns)

	// No issuer anywhere.
	if _, err := ings.Create(t.Context(), &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "bare"},
		Spec:       networkingv1.IngressSpec{TLS: []networkingv1.IngressTLS{{Hosts: []string{"bare." + host}, SecretName: "bare"}}, Rules: []networkingv1.IngressRule{rule("bare." + host)}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = acmeCmd(t, env.Kubeconfig, "issue", "--ingress", "bare", "-n", ns)
	if code == 0 || !strings.Contains(errOut, "no issuer: give --issuer, or annotate the Ingress with cert-manager.io/issuer") {
		t.Errorf("exit %d: %s", code, errOut)
	}
}

// certManagerVersion is the cert-manager release whose CRDs check what
// export prints.
const certManagerVersion = "v1.21.2"

// installCertManagerCRDs installs cert-manager's Issuer, ClusterIssuer and
// Certificate CRDs from the module source (go mod download), and removes
// them when the test ends if it installed them.
func installCertManagerCRDs(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "mod", "download", "-json", "github.com/cert-manager/cert-manager@"+certManagerVersion).Output()
	if err != nil {
		t.Skipf("cert-manager's module source is not available (go mod download: %v); it holds the CRDs this test checks against", err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		t.Skipf("go mod download gave no directory: %s", out)
	}
	names := []string{"issuers.cert-manager.io", "clusterissuers.cert-manager.io", "certificates.cert-manager.io"}
	_, _, existed := kubectl(t, "get", "crd", names[0])
	args := []string{"apply"}
	for _, n := range names {
		args = append(args, "-f", filepath.Join(mod.Dir, "deploy", "crds", "cert-manager.io_"+strings.TrimSuffix(n, ".cert-manager.io")+".yaml"))
	}
	if _, errOut, code := kubectl(t, args...); code != 0 {
		t.Fatalf("install cert-manager CRDs: %s", errOut)
	}
	if existed != 0 {
		t.Cleanup(func() {
			cmd := exec.Command("kubectl", append([]string{"delete", "crd", "--wait=false"}, names...)...)
			cmd.Env = append(os.Environ(), "KUBECONFIG="+env.Kubeconfig)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("delete cert-manager CRDs: %v: %s", err, out)
			}
		})
	}
	if _, errOut, code := kubectl(t, append([]string{"wait", "--for", "condition=Established", "--timeout", "60s"}, prefixEach("crd/", names)...)...); code != 0 {
		t.Fatalf("cert-manager CRDs not established: %s", errOut)
	}
}

func prefixEach(p string, list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = p + s
	}
	return out
}

// TestExportToCertManager: what export prints for issued certificates is
// accepted by an API server with cert-manager's CRDs, names the same
// Secrets, and carries no status.
func TestExportToCertManager(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	v := varsFor(t, ns)
	path := renderManifest(t, "", "v1-docs.yaml", v)
	mustApply(t, nil, "-n", ns, "-f", path, "--agree-tos", "--connect-to", env.IngressHTTP, "-q")
	createIssuer(t, env.Kubeconfig, ns, "pebble", env.IngressClass)
	mustACME(t, env.Kubeconfig, issueArgs(ns, "plain", "pebble", "--domain", "plain."+v.Host, "--ip", "127.0.0.1", "-q")...)

	out := mustACME(t, env.Kubeconfig, "export", "--all", "-n", ns)
	wantAll(t, "export", out, "kind: Issuer", "name: letsencrypt-staging", "name: pebble", "kind: Certificate",
		"secretName: example-com-tls", "enableDurationFeature: true", "privateKeySecretRef:", "127.0.0.1")
	if strings.Contains(out, "status:") {
		t.Errorf("export carries status:\n%s", out)
	}
	one := mustACME(t, env.Kubeconfig, "export", "plain", "-n", ns, "-o", "json")
	wantAll(t, "export plain -o json", one, `"kind": "List"`, `"name": "pebble"`, `"name": "plain"`)
	if strings.Contains(one, "letsencrypt-staging") {
		t.Errorf("export of one certificate printed other issuers:\n%s", one)
	}

	installCertManagerCRDs(t)
	file := filepath.Join(t.TempDir(), "export.yaml")
	if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, errOut, code := kubectl(t, "apply", "--dry-run=server", "-f", file)
	if code != 0 {
		t.Fatalf("cert-manager's CRDs refuse the export: %s", errOut)
	}
	wantAll(t, "kubectl apply --dry-run=server", stdout, "issuer.cert-manager.io/letsencrypt-staging created (server dry run)",
		"certificate.cert-manager.io/example-com created (server dry run)", "certificate.cert-manager.io/plain created (server dry run)")
	cmd := exec.Command("kubectl", "apply", "--dry-run=server", "-f", "-")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+env.Kubeconfig)
	cmd.Stdin = strings.NewReader(one)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("cert-manager's CRDs refuse the JSON export: %v: %s", err, b)
	}
}
