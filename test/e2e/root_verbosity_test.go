package e2e

import (
	"encoding/base64"
	"encoding/pem"
	"regexp"
	"strings"
	"testing"

	xacme "golang.org/x/crypto/acme"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-acme/kubectl-acme/acme"
)

// TestVerbosity: -v=6 logs every Kubernetes request (client-go's own
// line) and every ACME request (the acme package's) with method, URL,
// status and time, and no secret: neither private key (account, certificate),
// in PEM or base64, nor the account's JWK thumbprint, which every key
// authorization ends with, nor any request or response body. -v=9 is
// capped at 7, where client-go still logs no body.
func TestVerbosity(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createIssuer(t, env.Kubeconfig, ns, "pebble", env.IngressClass)
	name := "v." + ns + ".example.test"
	out, errOut, code := acmeCmd(t, env.Kubeconfig, issueArgs(ns, "web", "pebble", "--domain", name, "--secret", "web-tls", "-v=6")...)
	if code != 0 {
		t.Fatalf("issue -v=6: exit %d\n%s", code, errOut)
	}
	if strings.Contains(out, "Response") {
		t.Errorf("log lines on stdout:\n%s", out)
	}
	kubeLine := regexp.MustCompile(`"Response" verb="(GET|POST|PUT|PATCH|DELETE)" url="https://127\.0\.0\.1:\d+/api[^"]*" status="\d{3} [^"]+" milliseconds=\d+`)
	acmeLine := regexp.MustCompile(`"ACME response" verb="(GET|HEAD|POST)" url="` + regexp.QuoteMeta(strings.TrimSuffix(env.ACMEServer, "/dir")) + `[^"]*" status="\d{3} [^"]+" milliseconds=\d+`)
	kubeN, acmeN := len(kubeLine.FindAllString(errOut, -1)), len(acmeLine.FindAllString(errOut, -1))
	// At least: the Secret write, the Certificate record, the solver's
	// objects; and newNonce, newOrder, authz, challenge, finalize, cert.
	if kubeN < 5 || acmeN < 6 {
		t.Errorf("-v=6 logged %d Kubernetes and %d ACME requests; want every one:\n%s", kubeN, acmeN, errOut)
	}
	for _, verb := range []string{"POST", "HEAD"} {
		if !strings.Contains(errOut, `"ACME response" verb="`+verb+`"`) {
			t.Errorf("no ACME %s logged", verb)
		}
	}
	checkNoSecretsLogged(t, ns, errOut)

	// -v=9 would log bodies (client-go logs them from 8): capped at 7,
	// where client-go logs each request's URL and headers (the bearer
	// token masked) and then its status.
	_, errOut, code = acmeCmd(t, env.Kubeconfig, "status", "web", "-n", ns, "-v=9")
	if code != 0 || !strings.Contains(errOut, "logging at -v=7") || !strings.Contains(errOut, `"Request" verb="GET"`) || !strings.Contains(errOut, "Bearer <masked>") {
		t.Errorf("status -v=9: exit %d, want a warning and -v=7 lines:\n%s", code, errOut)
	}
	checkNoSecretsLogged(t, ns, errOut)

	if _, errOut, _ := acmeCmd(t, env.Kubeconfig, "status", "web", "-n", ns); strings.Contains(errOut, "Response") {
		t.Errorf("without -v, request lines:\n%s", errOut)
	}
}

func checkNoSecretsLogged(t *testing.T, ns, log string) {
	t.Helper()
	for _, banned := range []string{"Request Body", "Response Body", "PRIVATE KEY", "Bearer ey"} {
		if strings.Contains(log, banned) {
			t.Errorf("the log holds %q", banned)
		}
	}
	acct, err := kube.CoreV1().Secrets(ns).Get(t.Context(), "pebble", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tlsSec, err := kube.CoreV1().Secrets(ns).Get(t.Context(), "web-tls", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for what, keyPEM := range map[string][]byte{"account key": acct.Data["tls.key"], "certificate key": tlsSec.Data["tls.key"]} {
		b, _ := pem.Decode(keyPEM)
		if b == nil {
			t.Fatalf("%s is not PEM", what)
		}
		for _, enc := range []string{base64.StdEncoding.EncodeToString(b.Bytes)[:32], base64.StdEncoding.EncodeToString(keyPEM)[:32]} {
			if strings.Contains(log, enc) {
				t.Errorf("the log holds the %s", what)
			}
		}
	}
	key, err := acme.ParseKey(acct.Data["tls.key"])
	if err != nil {
		t.Fatal(err)
	}
	thumb, err := xacme.JWKThumbprint(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(log, thumb) {
		t.Error("the log holds a key authorization (the account's thumbprint)")
	}
}
