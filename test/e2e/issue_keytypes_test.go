package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-acme/kubectl-acme/acme"
)

// TestKeyTypes: ECDSA and RSA keys of each supported size, PKCS#8 too.
func TestKeyTypes(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createIssuer(t, env.Kubeconfig, ns, "pebble", env.IngressClass)
	for _, tt := range []struct {
		name, alg, size, encoding, pemType, want string
	}{
		{name: "p256", alg: "ecdsa", size: "256", pemType: "EC PRIVATE KEY", want: "ECDSA P-256"},
		{name: "p384", alg: "ecdsa", size: "384", encoding: "pkcs8", pemType: "PRIVATE KEY", want: "ECDSA P-384"},
		{name: "rsa3072", alg: "rsa", size: "3072", pemType: "RSA PRIVATE KEY", want: "RSA 3072"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			name := tt.name + "." + ns + ".example.test"
			args := issueArgs(ns, tt.name, "pebble", "--domain", name, "--key-algorithm", tt.alg, "--key-size", tt.size, "-q")
			if tt.encoding != "" {
				args = append(args, "--key-encoding", tt.encoding)
			}
			mustACME(t, env.Kubeconfig, args...)
			verifySecret(t, ns, tt.name, []string{name})
			sec, err := kube.CoreV1().Secrets(ns).Get(t.Context(), tt.name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			block, _ := pem.Decode(sec.Data["tls.key"])
			if block == nil || block.Type != tt.pemType {
				t.Fatalf("key PEM type %v, want %s", block, tt.pemType)
			}
			key, err := acme.ParseKey(sec.Data["tls.key"])
			if err != nil {
				t.Fatal(err)
			}
			if got := acme.KeyDescription(key.Public()); got != tt.want {
				t.Errorf("key %s, want %s", got, tt.want)
			}
		})
	}
	assertNoSolverObjects(t, ns)
}

// TestIPAddressShortlived: an IP identifier with the shortlived profile.
func TestIPAddressShortlived(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createIssuer(t, env.Kubeconfig, ns, "pebble", env.IngressClass)
	out := mustACME(t, env.Kubeconfig, "get", "profiles", "--issuer", "pebble", "-n", ns)
	if !strings.Contains(out, "shortlived") || !strings.Contains(out, "default") {
		t.Errorf("profiles:\n%s", out)
	}
	mustACME(t, env.Kubeconfig, issueArgs(ns, "ip", "pebble", "--ip", "127.0.0.1", "--profile", "shortlived", "-q")...)
	sec, err := kube.CoreV1().Secrets(ns).Get(t.Context(), "ip", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(sec.Data["tls.crt"], sec.Data["tls.key"])
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(pair.Certificate[0])
	if len(leaf.IPAddresses) != 1 || leaf.IPAddresses[0].String() != "127.0.0.1" {
		t.Errorf("IP SANs %v", leaf.IPAddresses)
	}
	if sec.Annotations["cert-manager.io/ip-sans"] != "127.0.0.1" {
		t.Errorf("ip-sans annotation %q", sec.Annotations["cert-manager.io/ip-sans"])
	}
	// Pebble's lifetime includes both ends, so it may be a second over.
	if life := leaf.NotAfter.Sub(leaf.NotBefore); life < 160*time.Hour-time.Minute || life > 160*time.Hour+time.Minute {
		t.Errorf("lifetime %s, want the shortlived profile's 160h", life)
	}
	if _, _, code := acmeCmd(t, env.Kubeconfig, issueArgs(ns, "bad", "pebble", "--ip", "127.0.0.1", "--profile", "no-such-profile")...); code == 0 {
		t.Error("an unknown profile was accepted")
	}
	assertNoSolverObjects(t, ns)
}
