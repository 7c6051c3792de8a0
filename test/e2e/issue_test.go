package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
)

func TestIssueTwoNames(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	out := createIssuer(t, env.Kubeconfig, ns, "pebble", env.IngressClass)
	if !strings.Contains(out, "issuer/pebble registered") {
		t.Errorf("create issuer said %q", out)
	}
	keyBefore, err := kube.CoreV1().Secrets(ns).Get(t.Context(), "pebble", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("account key secret: %v", err)
	}

	names := []string{"www." + ns + ".example.test", ns + ".example.test"}
	out = mustACME(t, env.Kubeconfig, issueArgs(ns, "web", "pebble", "--domain", names[0], "--domain", names[1], "--secret", "web-tls")...)
	if !strings.Contains(out, "certificate/web issued: secret/web-tls") {
		t.Errorf("issue said %q", out)
	}
	leaf := verifySecret(t, ns, "web-tls", names)
	assertNoSolverObjects(t, ns)

	out = mustACME(t, env.Kubeconfig, "status", "-n", ns)
	if !strings.Contains(out, "web") || !strings.Contains(out, "Ready") || !strings.Contains(out, "web-tls") {
		t.Errorf("status table:\n%s", out)
	}
	out = mustACME(t, env.Kubeconfig, "status", "web", "-n", ns)
	for _, want := range []string{"Status:", "Ready", strings.ToUpper(leaf.SerialNumber.Text(16)), "RSA 2048", "Challenges:", names[0], "valid"} {
		if !strings.Contains(out, want) {
			t.Errorf("status web lacks %q:\n%s", want, out)
		}
	}
	out = mustACME(t, env.Kubeconfig, "status", "-n", ns, "-o", "yaml")
	if !strings.Contains(out, "kind: Certificate") || !strings.Contains(out, "secretName: web-tls") {
		t.Errorf("status -o yaml:\n%s", out)
	}
	out = mustACME(t, env.Kubeconfig, "get", "issuers", "-n", ns)
	if !strings.Contains(out, "pebble") || !strings.Contains(out, "valid") || !strings.Contains(out, env.ACMEServer) {
		t.Errorf("get issuers:\n%s", out)
	}
	out = mustACME(t, env.Kubeconfig, "status", "-A")
	if !strings.Contains(out, ns) {
		t.Errorf("status -A lacks %s:\n%s", ns, out)
	}

	// Registering again finds the same account and keeps the key.
	createIssuer(t, env.Kubeconfig, ns, "pebble", env.IngressClass)
	keyAfter, err := kube.CoreV1().Secrets(ns).Get(t.Context(), "pebble", metav1.GetOptions{})
	if err != nil || !bytes.Equal(keyBefore.Data["tls.key"], keyAfter.Data["tls.key"]) {
		t.Errorf("account key changed on re-registration (err %v)", err)
	}

	// Re-issuing with the stored settings replaces the certificate.
	mustACME(t, env.Kubeconfig, "issue", "web", "-n", ns, "--connect-to", env.IngressHTTP, "-q")
	if again := verifySecret(t, ns, "web-tls", names); again.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
		t.Error("re-issue kept the old certificate")
	}
	assertNoSolverObjects(t, ns)
}

func TestIssueInRestrictedNamespace(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	kubectl(t, "label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted")
	createIssuer(t, env.Kubeconfig, ns, "pebble", env.IngressClass)
	name := ns + ".example.test"
	mustACME(t, env.Kubeconfig, issueArgs(ns, "web", "pebble", "--domain", name)...)
	verifySecret(t, ns, "web", []string{name})
	assertNoSolverObjects(t, ns)
}

// TestIssueAsNamespacedUser runs as a ServiceAccount bound only to a Role
// in its namespace: no cluster-wide rights at all.
func TestIssueAsNamespacedUser(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ctx := t.Context()
	if _, err := kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "alice"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	all := []string{"get", "list", "watch", "create", "update", "delete"}
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "kubectl-acme"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"configmaps", "secrets", "pods", "services"}, Verbs: all},
			{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"ingresses"}, Verbs: all},
			{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: all},
		},
	}
	if _, err := kube.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "alice"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "kubectl-acme"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "alice", Namespace: ns}},
	}
	if _, err := kube.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	token, _, code := kubectl(t, "create", "token", "alice", "-n", ns, "--duration", "1h")
	if code != 0 {
		t.Fatal("create token failed")
	}
	cfg, err := clientcmd.LoadFromFile(env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, ctxName := range []string{cfg.CurrentContext} {
		c := cfg.Contexts[ctxName]
		cfg.AuthInfos[c.AuthInfo].Token = strings.TrimSpace(token)
		cfg.AuthInfos[c.AuthInfo].ClientCertificate, cfg.AuthInfos[c.AuthInfo].ClientKey = "", ""
		cfg.AuthInfos[c.AuthInfo].ClientCertificateData, cfg.AuthInfos[c.AuthInfo].ClientKeyData = nil, nil
		c.Namespace = ns
	}
	aliceConfig := filepath.Join(t.TempDir(), "alice.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, aliceConfig); err != nil {
		t.Fatal(err)
	}
	if _, _, code := kubectl(t, "--kubeconfig", aliceConfig, "get", "namespaces"); code == 0 {
		t.Fatal("alice can list namespaces: the test user is not namespace-scoped")
	}
	createIssuer(t, aliceConfig, ns, "pebble", env.IngressClass)
	name := "alice." + ns + ".example.test"
	mustACME(t, aliceConfig, issueArgs(ns, "web", "pebble", "--domain", name)...)
	verifySecret(t, ns, "web", []string{name})
	out := mustACME(t, aliceConfig, "status")
	if !strings.Contains(out, "Ready") {
		t.Errorf("status as alice:\n%s", out)
	}
	assertNoSolverObjects(t, ns)
}

// TestIssueFailures: each failure ends with a clear message, a non-zero
// exit code and no solver objects left.
func TestIssueFailures(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	// The simulated ingress controller serves only env.IngressClass, so
	// this issuer's routes are never served, as with a wrong class in a
	// real cluster.
	createIssuer(t, env.Kubeconfig, ns, "wrong-class", "no-such-class")

	t.Run("wrong ingress class", func(t *testing.T) {
		name := "wrong." + ns + ".example.test"
		_, errOut, code := acmeCmd(t, env.Kubeconfig, issueArgs(ns, "wrong", "wrong-class", "--domain", name, "--self-check-timeout", "3s")...)
		if code == 0 {
			t.Fatal("issue succeeded through an ingress class nobody serves")
		}
		if !strings.Contains(errOut, "HTTP 404") || !strings.Contains(errOut, "ingress class") {
			t.Errorf("message does not explain the 404: %s", errOut)
		}
		assertNoSolverObjects(t, ns)
		out := mustACME(t, env.Kubeconfig, "status", "-n", ns)
		if !strings.Contains(out, "Failed") {
			t.Errorf("status does not show the failure:\n%s", out)
		}
		if _, err := kube.CoreV1().Secrets(ns).Get(t.Context(), "wrong", metav1.GetOptions{}); err == nil {
			t.Error("a failed issue wrote a secret")
		}
	})

	t.Run("timeout", func(t *testing.T) {
		name := "timeout." + ns + ".example.test"
		_, errOut, code := acmeCmd(t, env.Kubeconfig, issueArgs(ns, "slow", "wrong-class", "--domain", name, "--timeout", "4s")...)
		if code == 0 {
			t.Fatal("issue succeeded")
		}
		if !strings.Contains(errOut, "timed out") {
			t.Errorf("message does not say it timed out: %s", errOut)
		}
		assertNoSolverObjects(t, ns)
	})

	t.Run("ctrl-c", func(t *testing.T) {
		name := "interrupt." + ns + ".example.test"
		cmd := exec.Command("kubectl", append([]string{"acme"}, issueArgs(ns, "intr", "wrong-class", "--domain", name)...)...)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+env.Kubeconfig)
		var errOut bytes.Buffer
		cmd.Stderr = &errOut
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Interrupt once the solver pod exists, as an operator would mid-challenge.
		deadline := time.Now().Add(time.Minute)
		for {
			pods, err := kube.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "acme.kubectl.io/certificate=intr"})
			if err == nil && len(pods.Items) > 0 {
				break
			}
			if time.Now().After(deadline) {
				_ = cmd.Process.Kill()
				t.Fatalf("no solver pod appeared:\n%s", errOut.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
		// kubectl execs the plugin, so the signal reaches kubectl-acme.
		_ = cmd.Process.Signal(syscall.SIGINT)
		err := cmd.Wait()
		t.Logf("stderr:\n%s", errOut.String())
		if err == nil {
			t.Fatal("interrupted issue exited 0")
		}
		if !strings.Contains(errOut.String(), "interrupted") {
			t.Errorf("no word about the interruption: %s", errOut.String())
		}
		assertNoSolverObjects(t, ns)
	})

	t.Run("bad input", func(t *testing.T) {
		for _, args := range [][]string{
			{"issue", "web", "-n", ns, "--issuer", "wrong-class", "--domain", "*.example.test"},
			{"issue", "web", "-n", ns, "--issuer", "missing", "--domain", "a.example.test"},
			{"issue", "web", "-n", ns},
			{"create", "issuer", "x", "-n", ns, "--server", "http://insecure.example/dir"},
			{"status", "-n", ns, "-o", "xml"},
		} {
			_, errOut, code := acmeCmd(t, env.Kubeconfig, args...)
			if code == 0 || !strings.HasPrefix(errOut, "error: ") {
				t.Errorf("kubectl acme %v: exit %d, stderr %q", args, code, errOut)
			}
		}
	})
}

// TestSecretNotOwned: an existing Secret kubectl-acme did not create is
// never overwritten without --force, and nothing is ordered.
func TestSecretNotOwned(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createIssuer(t, env.Kubeconfig, ns, "pebble", env.IngressClass)
	kubectl(t, "create", "secret", "generic", "theirs", "-n", ns, "--from-literal=a=b")
	_, errOut, code := acmeCmd(t, env.Kubeconfig, issueArgs(ns, "web", "pebble", "--domain", "theirs."+ns+".example.test", "--secret", "theirs")...)
	if code == 0 || !strings.Contains(errOut, "refusing to overwrite") {
		t.Errorf("exit %d, %s", code, errOut)
	}
	sec, err := kube.CoreV1().Secrets(ns).Get(t.Context(), "theirs", metav1.GetOptions{})
	if err != nil || string(sec.Data["a"]) != "b" {
		t.Errorf("the user's secret changed: %v %v", sec, err)
	}
	assertNoSolverObjects(t, ns)
}
