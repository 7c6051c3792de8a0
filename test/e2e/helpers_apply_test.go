package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

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

// manifestVars fill the templates in testdata/apply: the test CA, the
// served ingress class and a host name unique to the test.
type manifestVars struct {
	Server, CABundle, Class, Host string
	// The Gateway the HTTPRoute solver's routes attach to.
	GatewayNamespace, GatewayName string
}
