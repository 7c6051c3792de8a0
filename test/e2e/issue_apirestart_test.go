package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	testenv "github.com/kubectl-acme/kubectl-acme/test/env"
)

// TestAPIServerRestart stops the real kube-apiserver mid-issue and starts
// it again on the same port (etcd keeps the cluster's state): once while
// the solver pod starts, when the plugin watches it, and once while the CA
// holds the challenge, with the solver objects up and the Lease being
// renewed. The issue rides it out; the cluster ends correct: a valid
// Secret, no solver object, no Lease, the account key unchanged. It runs
// in an environment of its own: the shared one's other tests would see
// the outage.
func TestAPIServerRestart(t *testing.T) {
	t.Parallel()
	own, client := startOwnEnv(t, testenv.Options{})
	ca := startCAProxyFor(t, own)
	const ns = "default"
	mustACME(t, own.Kubeconfig, "create", "issuer", "pebble", "-n", ns, "--server", ca.Directory, "--ca-bundle", ca.CABundle,
		"--email", "e2e@example.com", "--ingress-class", own.IngressClass, "--agree-tos")
	accountKey := secretData(t, client, ns, "pebble")

	phases := []struct {
		name string
		hold *gate // held while the API server is down
		// reached reports that the run is in the phase.
		reached func() bool
	}{
		{name: "solver pod starting", reached: func() bool {
			pods, err := client.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "acme.kubectl.io/certificate=pod"})
			return err == nil && len(pods.Items) > 0
		}},
		{name: "challenge at the CA", hold: newGate(postTo(challengePath))},
	}
	for _, ph := range phases {
		t.Run(ph.name, func(t *testing.T) {
			cert := "pod"
			if ph.hold != nil {
				cert = "chal"
				ca.holdBefore(ph.hold)
				defer ca.holdBefore(nil)
				defer ph.hold.Release()
			}
			domain := cert + ".restart.example.test"
			start := time.Now()
			run := startACME(t, own.Kubeconfig, "issue", cert, "-n", ns, "--issuer", "pebble", "--domain", domain,
				"--connect-to", own.IngressHTTP, "--timeout", "2m")
			if ph.hold != nil {
				ph.hold.waitHeld(t, time.Minute, "the challenge")
			} else {
				waitFor(t, time.Minute, ph.name, ph.reached)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			if err := own.RestartAPIServer(ctx, 2*time.Second); err != nil {
				t.Fatal(err)
			}
			if ph.hold != nil {
				ph.hold.Release()
			}
			out, errOut, code := run.wait()
			t.Logf("issue took %s with the restart", time.Since(start).Round(100*time.Millisecond))
			if code != 0 {
				t.Errorf("issue did not ride out the API server restart: exit %d\n%s%s", code, out, errOut)
			} else {
				checkTLSSecret(t, client, own, ns, cert, domain)
			}
			checkNoLeftovers(t, client, ns, cert)
			if got := secretData(t, client, ns, "pebble"); !bytes.Equal(got, accountKey) {
				t.Error("the account key Secret changed")
			}
		})
	}
	if !own.Running() {
		t.Error("the environment is not healthy after the restarts")
	}
}

// secretData is a Secret's data, flattened for comparison.
func secretData(t *testing.T, c kubernetes.Interface, ns, name string) []byte {
	t.Helper()
	sec, err := c.CoreV1().Secrets(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get secret %s/%s: %v", ns, name, err)
	}
	var b bytes.Buffer
	for _, k := range []string{"tls.key", "tls.crt"} {
		b.WriteString(k + "\x00")
		b.Write(sec.Data[k])
		b.WriteByte(0)
	}
	return b.Bytes()
}

// checkTLSSecret checks that Secret name in e holds a certificate for
// domain that chains to e's Pebble, with its key; it returns the leaf.
func checkTLSSecret(t *testing.T, c kubernetes.Interface, e *testenv.Env, ns, name, domain string) *x509.Certificate {
	t.Helper()
	sec, err := c.CoreV1().Secrets(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get secret: %v", err)
	}
	pair, err := tls.X509KeyPair(sec.Data["tls.crt"], sec.Data["tls.key"])
	if err != nil {
		t.Fatalf("secret %s: certificate and key do not match: %v", name, err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	rootsPEM, err := os.ReadFile(e.ACMERoots)
	if err != nil {
		t.Fatal(err)
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AppendCertsFromPEM(rootsPEM)
	for _, der := range pair.Certificate[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(c)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: domain, Roots: roots, Intermediates: inter}); err != nil {
		t.Errorf("secret %s does not verify for %s: %v", name, domain, err)
	}
	return leaf
}

// checkNoLeftovers fails on any solver object or a Lease of cert in ns.
func checkNoLeftovers(t *testing.T, c kubernetes.Interface, ns, cert string) {
	t.Helper()
	ctx := t.Context()
	sel := metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=http01-solver"}
	var left []string
	if l, err := c.CoreV1().Pods(ns).List(ctx, sel); err == nil {
		for _, o := range l.Items {
			left = append(left, "pod/"+o.Name)
		}
	}
	if l, err := c.CoreV1().Services(ns).List(ctx, sel); err == nil {
		for _, o := range l.Items {
			left = append(left, "service/"+o.Name)
		}
	}
	if l, err := c.NetworkingV1().Ingresses(ns).List(ctx, sel); err == nil {
		for _, o := range l.Items {
			left = append(left, "ingress/"+o.Name)
		}
	}
	if l, err := c.CoreV1().ConfigMaps(ns).List(ctx, sel); err == nil {
		for _, o := range l.Items {
			left = append(left, "configmap/"+o.Name)
		}
	}
	if len(left) > 0 {
		t.Errorf("solver objects left in %s: %v", ns, left)
	}
	if _, err := c.CoordinationV1().Leases(ns).Get(ctx, "acme-certificate-"+cert, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("lease of certificate %s left (err %v)", cert, err)
	}
}
