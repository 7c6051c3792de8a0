package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// auditPolicy logs every request's metadata once it completes (a watch
// logs ResponseStarted too; requests are counted by audit ID, so a watch
// counts once).
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
`

// AuditEvent is the part of an audit.k8s.io/v1 Event the benchmark reads.
type AuditEvent struct {
	AuditID    string `json:"auditID"`
	Stage      string `json:"stage"`
	Verb       string `json:"verb"`
	RequestURI string `json:"requestURI"`
	UserAgent  string `json:"userAgent"`
	// User is who sent it; the e2e tests tell their runs apart by it.
	User struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		Namespace   string `json:"namespace"`
		Name        string `json:"name"`
	} `json:"objectRef"`
	Received time.Time `json:"requestReceivedTimestamp"`
}

// Resource is "resource[/subresource]", or the request path for
// non-resource requests such as discovery.
func (e *AuditEvent) Resource() string {
	if e.ObjectRef == nil || e.ObjectRef.Resource == "" {
		path, _, _ := strings.Cut(e.RequestURI, "?")
		return path
	}
	if e.ObjectRef.Subresource != "" {
		return e.ObjectRef.Resource + "/" + e.ObjectRef.Subresource
	}
	return e.ObjectRef.Resource
}

func (e *AuditEvent) object() string {
	if e.ObjectRef == nil {
		return e.RequestURI
	}
	return e.Resource() + " " + e.ObjectRef.Namespace + "/" + e.ObjectRef.Name
}

// ReadAudit reads a JSON-lines audit log, one event per request: the
// stages of one request (a watch's ResponseStarted and ResponseComplete)
// share an audit ID and count once.
func ReadAudit(r io.Reader) ([]AuditEvent, error) {
	var out []AuditEvent
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for sc.Scan() {
		var e AuditEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("audit log: %w", err)
		}
		if seen[e.AuditID] {
			continue
		}
		seen[e.AuditID] = true
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return out, nil
}

func readAuditFile(path string) ([]AuditEvent, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadAudit(f)
}

// solverResources are what the HTTP-01 solver creates: its workload, the
// route to it, and the NetworkPolicy letting the ingress reach it.
var solverResources = map[string]bool{"pods": true, "services": true, "ingresses": true, "httproutes": true, "networkpolicies": true}

// PluginUserAgent is the prefix of kubectl-acme's user agent.
const PluginUserAgent = "kubectl-acme/"

// Window is one issuance: its process ran from Start to End.
type Window struct{ Start, End time.Time }

// APICost is the Kubernetes API requests of a series of issuances.
type APICost struct {
	Certificates int `json:"certificates"`
	// PerCert are requests per certificate: in total, by verb, and by
	// "verb resource".
	PerCert           float64            `json:"perCert"`
	ByVerb            map[string]float64 `json:"byVerbPerCert"`
	ByVerbResource    map[string]float64 `json:"byVerbResourcePerCert"`
	Watches           float64            `json:"watchesPerCert"`
	MaxReadsOneObject int                `json:"maxReadsOfOneObjectInOneIssuance"`
	// SolverObjects are the solver's objects created per run (window) by
	// resource, server-side dry runs left out; SolverObjectsPerRun their
	// sum.
	SolverObjects       map[string]float64 `json:"solverObjectsCreatedPerRun"`
	SolverObjectsPerRun float64            `json:"solverObjectsPerRun"`
	// MostReadObject is the object read MaxReadsOneObject times.
	MostReadObject string `json:"mostReadObject,omitempty"`
}

// CountAPI counts the plugin's requests (by user agent) received within
// the windows, which must not overlap for MaxReadsOneObject to mean "in
// one issuance"; certs is how many certificates the windows issued.
func CountAPI(events []AuditEvent, windows []Window, certs int) APICost {
	c := APICost{Certificates: certs, ByVerb: map[string]float64{}, ByVerbResource: map[string]float64{}, SolverObjects: map[string]float64{}}
	if certs == 0 {
		return c
	}
	total := 0
	for _, w := range windows {
		reads := map[string]int{}
		for i := range events {
			e := &events[i]
			if !strings.HasPrefix(e.UserAgent, PluginUserAgent) || e.Received.Before(w.Start) || e.Received.After(w.End) {
				continue
			}
			total++
			c.ByVerb[e.Verb]++
			c.ByVerbResource[e.Verb+" "+e.Resource()]++
			if e.Verb == "watch" {
				c.Watches++
			}
			if e.Verb == "get" {
				reads[e.object()]++
			}
			if e.Verb == "create" && solverResources[e.Resource()] && !strings.Contains(e.RequestURI, "dryRun=") {
				c.SolverObjects[e.Resource()]++
				c.SolverObjectsPerRun++
			}
		}
		for obj, n := range reads {
			if n > c.MaxReadsOneObject || (n == c.MaxReadsOneObject && obj < c.MostReadObject) {
				c.MaxReadsOneObject, c.MostReadObject = n, obj
			}
		}
	}
	if runs := float64(len(windows)); runs > 0 {
		c.SolverObjectsPerRun /= runs
		for k := range c.SolverObjects {
			c.SolverObjects[k] /= runs
		}
	}
	n := float64(certs)
	c.PerCert = float64(total) / n
	c.Watches /= n
	for _, m := range []map[string]float64{c.ByVerb, c.ByVerbResource} {
		for k := range m {
			m[k] /= n
		}
	}
	return c
}

// sortedKeys returns m's keys, largest value first.
func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys
}
