package e2e

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-acme/kubectl-acme/acme"
)

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
