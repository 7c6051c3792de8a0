package e2e

import (
	"context"
	"encoding/pem"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Secrets stay secret: every kubectl-acme run's output is recorded, and so
// is what a namespace exposes in places that are not Secret data
// (ConfigMaps, annotations, events). After all tests, checkSecretsStayedSecret
// looks for every private key, account key and EAB HMAC the suite's
// Secrets held, and for PEM private keys in general.
var leakCheck struct {
	mu      sync.Mutex
	outputs []string          // output of kubectl-acme runs, and exposed object text
	secrets map[string]string // secret value -> where it was found
}

// recordOutput keeps the output of one kubectl-acme run for the check.
func recordOutput(s ...string) {
	leakCheck.mu.Lock()
	defer leakCheck.mu.Unlock()
	for _, v := range s {
		if v != "" {
			leakCheck.outputs = append(leakCheck.outputs, v)
		}
	}
}

// sensitive registers values that must never appear in any output, such
// as an EAB HMAC key given on the command line.
func sensitive(where string, values ...string) {
	leakCheck.mu.Lock()
	defer leakCheck.mu.Unlock()
	if leakCheck.secrets == nil {
		leakCheck.secrets = map[string]string{}
	}
	for _, v := range values {
		if len(strings.TrimSpace(v)) >= 16 {
			leakCheck.secrets[strings.TrimSpace(v)] = where
		}
	}
}

// rememberNamespace collects ns's secret values and the text its other
// objects show anyone with read access, before the namespace is deleted.
func rememberNamespace(ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	secrets, err := kube.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	var exposed []string
	for _, s := range secrets.Items {
		for k, v := range s.Data {
			for _, part := range secretParts(v) {
				sensitive(fmt.Sprintf("secret %s/%s key %s", ns, s.Name, k), part)
			}
		}
		exposed = append(exposed, fmt.Sprint(s.Annotations, s.Labels))
	}
	if cms, err := kube.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, c := range cms.Items {
			exposed = append(exposed, fmt.Sprint(c.Annotations, c.Labels, c.Data))
		}
	}
	if evs, err := kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, e := range evs.Items {
			exposed = append(exposed, e.Message)
		}
	}
	if ls, err := kube.CoordinationV1().Leases(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, l := range ls.Items {
			exposed = append(exposed, fmt.Sprint(l.Annotations, l.Spec.HolderIdentity))
		}
	}
	recordOutput(exposed...)
}

// secretParts splits a secret value into what a leak would show: for PEM
// private keys each line of base64 (a truncated or re-wrapped key still
// gives itself away by them), otherwise the value itself.
func secretParts(v []byte) []string {
	var parts []string
	rest := v
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if !strings.Contains(b.Type, "PRIVATE KEY") {
			continue
		}
		enc := pem.EncodeToMemory(b)
		for _, line := range strings.Split(string(enc), "\n") {
			if !strings.HasPrefix(line, "-----") && len(line) >= 16 {
				parts = append(parts, line)
			}
		}
	}
	if len(parts) == 0 && !strings.Contains(string(v), "CERTIFICATE") {
		parts = append(parts, string(v))
	}
	return parts
}

// checkSecretsStayedSecret reports every secret value found in recorded
// output. It also takes the Secrets of namespaces that tests did not
// delete, such as the ClusterIssuer namespace.
func checkSecretsStayedSecret() error {
	if nss, err := kube.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{}); err == nil {
		for _, ns := range nss.Items {
			rememberNamespace(ns.Name)
		}
	}
	leakCheck.mu.Lock()
	defer leakCheck.mu.Unlock()
	var leaks []string
	for i, out := range leakCheck.outputs {
		if strings.Contains(out, "PRIVATE KEY") {
			leaks = append(leaks, fmt.Sprintf("output %d contains a PEM private key marker: %q", i, excerpt(out, "PRIVATE KEY")))
		}
		for v, where := range leakCheck.secrets {
			if strings.Contains(out, v) {
				leaks = append(leaks, fmt.Sprintf("output %d contains the value of %s", i, where))
			}
		}
	}
	sort.Strings(leaks)
	if len(leaks) > 0 {
		return fmt.Errorf("secrets leaked into output:\n  %s", strings.Join(leaks, "\n  "))
	}
	fmt.Printf("e2e: secrets stayed secret: %d outputs checked for %d secret values\n", len(leakCheck.outputs), len(leakCheck.secrets))
	return nil
}

func excerpt(s, around string) string {
	i := strings.Index(s, around)
	lo, hi := max(0, i-60), min(len(s), i+len(around)+60)
	return s[lo:hi]
}

// checkNoDataRace fails the suite when a plugin built with -race (by
// test/internal/suite.Main) reported a data race in any run.
func checkNoDataRace() error {
	leakCheck.mu.Lock()
	defer leakCheck.mu.Unlock()
	for _, out := range leakCheck.outputs {
		if strings.Contains(out, "WARNING: DATA RACE") {
			return fmt.Errorf("kubectl-acme reported a data race:\n%s", out)
		}
	}
	return nil
}
