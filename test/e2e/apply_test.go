package e2e

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

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
