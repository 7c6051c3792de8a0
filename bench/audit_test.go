package bench

import (
	"strings"
	"testing"
	"time"
)

const sampleAudit = `{"kind":"Event","auditID":"a1","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/b/configmaps/acme-certificate-web","verb":"get","userAgent":"kubectl-acme/dev","objectRef":{"resource":"configmaps","namespace":"b","name":"acme-certificate-web","apiVersion":"v1"},"requestReceivedTimestamp":"2026-01-01T00:00:01.000000Z"}
{"kind":"Event","auditID":"a2","stage":"ResponseStarted","requestURI":"/api/v1/namespaces/b/pods?fieldSelector=metadata.name%3Dx\u0026watch=true","verb":"watch","userAgent":"kubectl-acme/dev","objectRef":{"resource":"pods","namespace":"b","apiVersion":"v1"},"requestReceivedTimestamp":"2026-01-01T00:00:01.100000Z"}
{"kind":"Event","auditID":"a3","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/b/configmaps/acme-certificate-web","verb":"get","userAgent":"kubectl-acme/dev","objectRef":{"resource":"configmaps","namespace":"b","name":"acme-certificate-web","apiVersion":"v1"},"requestReceivedTimestamp":"2026-01-01T00:00:01.200000Z"}
{"kind":"Event","auditID":"a2","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/b/pods?fieldSelector=metadata.name%3Dx\u0026watch=true","verb":"watch","userAgent":"kubectl-acme/dev","objectRef":{"resource":"pods","namespace":"b","apiVersion":"v1"},"requestReceivedTimestamp":"2026-01-01T00:00:01.100000Z"}
{"kind":"Event","auditID":"a4","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/b/pods/x/status","verb":"patch","userAgent":"testenv/simnode","objectRef":{"resource":"pods","subresource":"status","namespace":"b","name":"x","apiVersion":"v1"},"requestReceivedTimestamp":"2026-01-01T00:00:01.300000Z"}
{"kind":"Event","auditID":"a5","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/b/secrets","verb":"create","userAgent":"kubectl-acme/dev","objectRef":{"resource":"secrets","namespace":"b","name":"web","apiVersion":"v1"},"requestReceivedTimestamp":"2026-01-01T00:00:09.000000Z"}
`

func TestCountAPI(t *testing.T) {
	events, err := ReadAudit(strings.NewReader(sampleAudit))
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 5 {
		t.Fatalf("got %d events, want 5 (the watch's two stages are one request)", len(events))
	}
	at := func(s string) time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(mustDuration(t, s)) }
	// The secret's create falls outside the window; simnode is not the plugin.
	c := CountAPI(events, []Window{{at("1s"), at("2s")}}, 1)
	if c.PerCert != 3 || c.ByVerb["get"] != 2 || c.ByVerb["watch"] != 1 || c.Watches != 1 {
		t.Errorf("got %+v", c)
	}
	if c.ByVerbResource["get configmaps"] != 2 || c.MaxReadsOneObject != 2 || c.MostReadObject != "configmaps b/acme-certificate-web" {
		t.Errorf("got %+v", c)
	}
	c = CountAPI(events, []Window{{at("1s"), at("2s")}, {at("8s"), at("10s")}}, 2)
	if c.PerCert != 2 || c.ByVerb["create"] != 0.5 {
		t.Errorf("two windows: got %+v", c)
	}
}

func mustDuration(t *testing.T, s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Solver objects are the plugin's real creates of pods, services,
// ingresses, httproutes and networkpolicies, per run; a server-side dry
// run creates nothing.
func TestCountAPISolverObjects(t *testing.T) {
	ev := func(id, verb, uri, resource string, sec int) string {
		return `{"auditID":"` + id + `","stage":"ResponseComplete","verb":"` + verb + `","requestURI":"` + uri + `","userAgent":"kubectl-acme/dev","objectRef":{"resource":"` + resource + `","namespace":"b"},"requestReceivedTimestamp":"2026-01-01T00:00:0` + string(rune('0'+sec)) + `.000000Z"}` + "\n"
	}
	log := ev("p0", "create", "/api/v1/namespaces/b/pods?dryRun=All", "pods", 1) +
		ev("p1", "create", "/api/v1/namespaces/b/pods", "pods", 1) +
		ev("s1", "create", "/api/v1/namespaces/b/services", "services", 1) +
		ev("i1", "create", "/apis/networking.k8s.io/v1/namespaces/b/ingresses", "ingresses", 1) +
		ev("n1", "create", "/apis/networking.k8s.io/v1/namespaces/b/networkpolicies", "networkpolicies", 1) +
		ev("c1", "create", "/api/v1/namespaces/b/secrets", "secrets", 1) +
		ev("p2", "create", "/api/v1/namespaces/b/pods", "pods", 5) +
		ev("r2", "create", "/apis/gateway.networking.k8s.io/v1/namespaces/b/httproutes", "httproutes", 5)
	events, err := ReadAudit(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(mustDuration(t, s)) }
	c := CountAPI(events, []Window{{at("0s"), at("2s")}, {at("4s"), at("6s")}}, 2)
	if c.SolverObjectsPerRun != 3 || c.SolverObjects["pods"] != 1 || c.SolverObjects["httproutes"] != 0.5 || c.SolverObjects["secrets"] != 0 {
		t.Errorf("solver objects %v, %v per run; want 3 per run, pods 1, httproutes 0.5", c.SolverObjects, c.SolverObjectsPerRun)
	}
}
