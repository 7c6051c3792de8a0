package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-acme/kubectl-acme/acme"
	testenv "github.com/kubectl-acme/kubectl-acme/test/env"
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

// TestRenewFollowsARI: renew --all renews exactly the certificates whose
// ARI window has started, sends "replaces", and leaves the others.
func TestRenewFollowsARI(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createIssuer(t, env.Kubeconfig, ns, "pebble", env.IngressClass)
	for _, n := range []string{"due", "fresh"} {
		mustACME(t, env.Kubeconfig, issueArgs(ns, n, "pebble", "--domain", n+"."+ns+".example.test", "--profile", "default", "-q")...)
	}
	out, _, code := acmeCmd(t, env.Kubeconfig, "renew", "--all", "-n", ns, "--connect-to", env.IngressHTTP, "-q")
	if code != 0 || !strings.Contains(out, "not due (ARI window") {
		t.Fatalf("fresh certificates: exit %d, want 0 (nothing due)\n%s", code, out)
	}

	// Move "due"'s window into the past.
	dueSecret, _ := kube.CoreV1().Secrets(ns).Get(t.Context(), "due", metav1.GetOptions{})
	oldLeaf := leafOf(t, dueSecret.Data["tls.crt"])
	now := time.Now().UTC()
	// The whole window in the past: the point picked inside it has passed.
	setRenewalInfo(t, dueSecret.Data["tls.crt"], now.Add(-2*time.Hour), now.Add(-time.Minute))
	freshBefore, _ := kube.CoreV1().Secrets(ns).Get(t.Context(), "fresh", metav1.GetOptions{})
	// The window stored at issue holds until Pebble's Retry-After (6h): the
	// move is not seen yet (renew_timing_test.go); pass that time.
	assertRenewalInfoCached(t, ns, "due")
	expireRenewalInfo(t, ns, "due")

	out, _, code = acmeCmd(t, env.Kubeconfig, "renew", "--all", "-n", ns, "--connect-to", env.IngressHTTP, "-q")
	if code != 10 {
		t.Fatalf("renew exit %d, want 10 (renewed)\n%s", code, out)
	}
	if !strings.Contains(out, "certificate/"+ns+"/due renewed") || !strings.Contains(out, "certificate/"+ns+"/fresh not due") {
		t.Errorf("renew output:\n%s", out)
	}
	dueAfter, _ := kube.CoreV1().Secrets(ns).Get(t.Context(), "due", metav1.GetOptions{})
	if newLeaf := leafOf(t, dueAfter.Data["tls.crt"]); newLeaf.SerialNumber.Cmp(oldLeaf.SerialNumber) == 0 {
		t.Error("due certificate was not replaced")
	}
	freshAfter, _ := kube.CoreV1().Secrets(ns).Get(t.Context(), "fresh", metav1.GetOptions{})
	if !bytes.Equal(freshBefore.Data["tls.crt"], freshAfter.Data["tls.crt"]) {
		t.Error("a certificate outside its window was renewed")
	}

	// The renewal order named the certificate it replaces: Pebble logs it.
	out = mustACME(t, env.Kubeconfig, "status", "due", "-n", ns, "-o", "json")
	var cert struct {
		Status struct {
			LastOrder struct{ URL string } `json:"lastOrder"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(out), &cert); err != nil {
		t.Fatal(err)
	}
	orderID := path.Base(cert.Status.LastOrder.URL)
	pebbleLog, _ := os.ReadFile(filepath.Join(env.Dir, "logs", "pebble.log"))
	if !bytes.Contains(pebbleLog, []byte("ARI: order \""+orderID+"\" is a replacement")) {
		t.Errorf("Pebble did not see order %s as a replacement", orderID)
	}
	assertNoSolverObjects(t, ns)
}

func leafOf(t *testing.T, chain []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(chain)
	if b == nil {
		t.Fatal("no certificate")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// setRenewalInfo moves a certificate's ARI window with Pebble's
// management API.
func setRenewalInfo(t *testing.T, chainPEM []byte, start, end time.Time) {
	t.Helper()
	b, _ := pem.Decode(chainPEM)
	ari, _ := json.Marshal(map[string]any{"suggestedWindow": map[string]string{
		"start": start.Format(time.RFC3339), "end": end.Format(time.RFC3339)}})
	body, _ := json.Marshal(map[string]string{
		"Certificate": string(pem.EncodeToMemory(b)), "ARIResponse": string(ari)})
	res, err := managementClient(t).Post(env.PebbleManagement+"/set-renewal-info/", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("set-renewal-info: %s", res.Status)
	}
}

func managementClient(t *testing.T) *http.Client {
	t.Helper()
	ca, err := os.ReadFile(env.ACMECABundle)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// TestRevoke: revocation reaches the CA and shows in status.
func TestRevoke(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createIssuer(t, env.Kubeconfig, ns, "pebble", env.IngressClass)
	mustACME(t, env.Kubeconfig, issueArgs(ns, "web", "pebble", "--domain", "revoke."+ns+".example.test", "-q")...)
	sec, _ := kube.CoreV1().Secrets(ns).Get(t.Context(), "web", metav1.GetOptions{})
	leaf := leafOf(t, sec.Data["tls.crt"])
	mustACME(t, env.Kubeconfig, "revoke", "web", "-n", ns, "--reason", "keyCompromise")
	res, err := managementClient(t).Get(env.PebbleManagement + "/cert-status-by-serial/" + leaf.SerialNumber.Text(16))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var st struct{ Status string }
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil || st.Status != "Revoked" {
		t.Errorf("Pebble says %q (%v), want Revoked", st.Status, err)
	}
	if out := mustACME(t, env.Kubeconfig, "status", "-n", ns); !strings.Contains(out, "Revoked") {
		t.Errorf("status does not show the revocation:\n%s", out)
	}
	if _, errOut, code := acmeCmd(t, env.Kubeconfig, "revoke", "web", "-n", ns, "--reason", "because"); code == 0 || !strings.Contains(errOut, "keyCompromise") {
		t.Errorf("bad reason: exit %d, %s", code, errOut)
	}
}

// TestAccountKeyRollover: after rotation the new key issues and the old
// one no longer reaches the account.
func TestAccountKeyRollover(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createIssuer(t, env.Kubeconfig, ns, "pebble", env.IngressClass)
	before, _ := kube.CoreV1().Secrets(ns).Get(t.Context(), "pebble", metav1.GetOptions{})
	out := mustACME(t, env.Kubeconfig, "update", "issuer", "pebble", "-n", ns, "--rotate-account-key", "--email", "rotated@example.com")
	if !strings.Contains(out, "account key rotated") {
		t.Errorf("update said %q", out)
	}
	after, _ := kube.CoreV1().Secrets(ns).Get(t.Context(), "pebble", metav1.GetOptions{})
	if bytes.Equal(before.Data["tls.key"], after.Data["tls.key"]) || !bytes.Equal(before.Data["tls.key"], after.Data["tls.key.previous"]) {
		t.Fatal("the key was not rotated, or the old key was not kept as tls.key.previous")
	}
	mustACME(t, env.Kubeconfig, issueArgs(ns, "web", "pebble", "--domain", "rollover."+ns+".example.test", "-q")...)

	oldKey, err := acme.ParseKey(after.Data["tls.key.previous"])
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := os.ReadFile(env.ACMECABundle)
	c, err := acme.NewClient(acme.ClientConfig{DirectoryURL: env.ACMEServer, CABundle: ca}, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if _, err := c.GetReg(ctx, ""); err == nil {
		t.Error("the old account key still reaches the account")
	}
	if out := mustACME(t, env.Kubeconfig, "get", "issuers", "-n", ns); !strings.Contains(out, "rotated@example.com") {
		t.Errorf("contact not updated:\n%s", out)
	}
}

// TestExternalAccountBinding runs a second environment whose Pebble
// requires EAB.
func TestExternalAccountBinding(t *testing.T) {
	t.Parallel()
	const kid, hmac = "kid-1", "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"
	sensitive("the EAB HMAC of TestExternalAccountBinding", hmac)
	eabEnv, _ := startOwnEnv(t, testenv.Options{EABKeys: map[string]string{kid: hmac}})
	kubectlIn := func(args ...string) {
		t.Helper()
		if _, _, code := acmeCmdEnv(t, eabEnv, args...); code != 0 {
			t.Fatalf("kubectl acme %v failed", args)
		}
	}
	base := []string{"create", "issuer", "eab", "-n", "default", "--server", eabEnv.ACMEServer, "--ca-bundle", eabEnv.ACMECABundle,
		"--email", "eab@example.com", "--ingress-class", "nginx", "--agree-tos"}
	_, errOut, code := acmeCmdEnv(t, eabEnv, base...)
	if code == 0 || !strings.Contains(errOut, "External Account Binding") || !strings.Contains(errOut, "--eab-kid") {
		t.Errorf("without EAB: exit %d, %s", code, errOut)
	}
	kubectlIn(append(base, "--eab-kid", kid, "--eab-hmac-key", hmac)...)
	out, _, _ := acmeCmdEnv(t, eabEnv, "get", "issuers", "-n", "default")
	if !strings.Contains(out, "valid") {
		t.Errorf("issuer not registered:\n%s", out)
	}
}

// acmeCmdEnv runs kubectl acme against another environment.
func acmeCmdEnv(t *testing.T, e *testenv.Env, args ...string) (string, string, int) {
	t.Helper()
	return acmeCmd(t, e.Kubeconfig, args...)
}
