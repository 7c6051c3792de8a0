package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// acmeCmd runs `kubectl acme ARGS` through the real kubectl, which finds
// kubectl-acme in PATH, with the given kubeconfig.
func acmeCmd(t *testing.T, kubeconfig string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kubectl", append([]string{"acme"}, args...)...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("kubectl acme %s: %v", strings.Join(args, " "), err)
	}
	recordOutput(out.String(), errOut.String())
	t.Logf("$ kubectl acme %s  # exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errOut.String())
	return out.String(), errOut.String(), code
}

func mustACME(t *testing.T, kubeconfig string, args ...string) string {
	t.Helper()
	out, errOut, code := acmeCmd(t, kubeconfig, args...)
	if code != 0 {
		t.Fatalf("kubectl acme %s failed (exit %d):\n%s", strings.Join(args, " "), code, errOut)
	}
	return out
}

// createIssuer registers an Issuer against Pebble in ns.
func createIssuer(t *testing.T, kubeconfig, ns, name, class string) string {
	t.Helper()
	return mustACME(t, kubeconfig, "create", "issuer", name, "-n", ns,
		"--server", env.ACMEServer, "--ca-bundle", env.ACMECABundle,
		"--email", "e2e@example.com", "--ingress-class", class, "--agree-tos")
}

// issueArgs are the flags every e2e issue needs: the self-check goes to
// the simulated ingress, as it would to a load balancer before DNS.
func issueArgs(ns, name, issuer string, extra ...string) []string {
	return append([]string{"issue", name, "-n", ns, "--issuer", issuer, "--connect-to", env.IngressHTTP}, extra...)
}

// assertNoSolverObjects fails if any solver Pod, Service, Ingress,
// ConfigMap or HTTPRoute remains in ns.
func assertNoSolverObjects(t *testing.T, ns string) {
	t.Helper()
	ctx := t.Context()
	sel := metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=http01-solver"}
	pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svcs, _ := kube.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
	ings, _ := kube.NetworkingV1().Ingresses(ns).List(ctx, metav1.ListOptions{})
	cms, _ := kube.CoreV1().ConfigMaps(ns).List(ctx, sel)
	var left []string
	for _, p := range pods.Items {
		left = append(left, "pod/"+p.Name)
	}
	for _, s := range svcs.Items {
		left = append(left, "service/"+s.Name)
	}
	for _, i := range ings.Items {
		left = append(left, "ingress/"+i.Name)
	}
	for _, c := range cms.Items {
		left = append(left, "configmap/"+c.Name)
	}
	left = append(left, solverHTTPRoutes(t, ns, "")...)
	if len(left) > 0 {
		t.Errorf("solver objects left in %s: %v", ns, left)
	}
}

// verifySecret checks the issued Secret: a kubernetes.io/tls Secret whose
// chain verifies against Pebble's roots for every name, and whose key
// matches the certificate.
func verifySecret(t *testing.T, ns, name string, dnsNames []string) *x509.Certificate {
	t.Helper()
	sec, err := kube.CoreV1().Secrets(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get secret: %v", err)
	}
	if sec.Type != corev1.SecretTypeTLS {
		t.Errorf("secret type %s", sec.Type)
	}
	pair, err := tls.X509KeyPair(sec.Data["tls.crt"], sec.Data["tls.key"])
	if err != nil {
		t.Fatalf("certificate and key do not match: %v", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	rootsPEM, err := os.ReadFile(env.ACMERoots)
	if err != nil {
		t.Fatal(err)
	}
	roots.AppendCertsFromPEM(rootsPEM)
	inter := x509.NewCertPool()
	for _, der := range pair.Certificate[1:] {
		c, _ := x509.ParseCertificate(der)
		inter.AddCert(c)
	}
	for _, d := range dnsNames {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: d, Roots: roots, Intermediates: inter}); err != nil {
			t.Errorf("certificate does not verify for %s: %v", d, err)
		}
	}
	if got := leaf.DNSNames; !sameSet(got, dnsNames) {
		t.Errorf("SANs %v, want %v", got, dnsNames)
	}
	if sec.Annotations["cert-manager.io/certificate-name"] == "" || sec.Annotations["cert-manager.io/alt-names"] != strings.Join(dnsNames, ",") {
		t.Errorf("cert-manager annotations missing: %v", sec.Annotations)
	}
	return leaf
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
