package bench

import (
	"bytes"
	"strings"
	"testing"
)

func TestEvaluate(t *testing.T) {
	r := &Results{
		Floor:     Summary{N: 10, Median: 1.0},
		Lego:      Summary{N: 10, Median: 4.0},
		One:       Summary{N: 10, Median: 1.2},
		OnePhases: map[string]Summary{PhasePodStart: {N: 10, Median: 0.6}},
		API:       APICost{Certificates: 10, PerCert: 14, SolverObjectsPerRun: 3, SolverObjects: map[string]float64{"pods": 1, "services": 1, "ingresses": 1}},
		Batches: []Batch{
			{N: 20, Runs: 2, Wall: 3, Floor: Summary{N: 2, Median: 2.5}, RatioToFloor: 1.2, API: APICost{Certificates: 40, PerCert: 12}},
			{N: 100, Runs: 2, Wall: 16, Floor: Summary{N: 2, Median: 5}, RatioToFloor: 3.2, Concurrency: 20,
				API: APICost{Certificates: 200, PerCert: 13, SolverObjectsPerRun: 300, SolverObjects: map[string]float64{"pods": 100, "services": 100, "ingresses": 100}}},
		},
		Status: StatusResult{Certificates: 50000, Wall: Summary{N: 5, Median: 1.4}, PeakRSSMB: 150},
	}
	r.Evaluate()
	if got := r.Ratios["oneToFloor"]; got != 1.2 {
		t.Errorf("oneToFloor = %v, want 1.2", got)
	}
	if got := r.Ratios["oneToLego"]; got != 0.3 {
		t.Errorf("oneToLego = %v, want 0.3", got)
	}
	if got := r.Ratios["apply100ToFloor"]; got != 3.2 {
		t.Errorf("apply100ToFloor = %v, want 3.2", got)
	}
	met := map[string]bool{}
	for _, tg := range r.Targets {
		met[tg.Name] = tg.Met
	}
	want := map[string]bool{
		"1 certificate":           true,  // 1.2 <= 1.3
		"20 certificates":         true,  // 1.2 <= 1.5
		"100 certificates":        false, // 3.2
		"solver objects":          false, // 300 > 3
		"Kubernetes API requests": false, // 13 > 5
		"status -A":               true,  // 1.4 s, 150 MB
	}
	for name, w := range want {
		if got, ok := met[name]; !ok || got != w {
			t.Errorf("target %q met = %v (present %v), want %v", name, got, ok, w)
		}
	}

	// 5,000 certificates do not meet a target set for 50,000.
	r.Status.Certificates = 5000
	r.Evaluate()
	for _, tg := range r.Targets {
		if tg.Name == "status -A" && tg.Met {
			t.Errorf("status target met with 5,000 certificates: %+v", tg)
		}
	}

	var buf bytes.Buffer
	if err := r.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"WORKLOAD", "1 certificate, issue", "100 certificates, apply -f", "FAIL", "pass", "BATCH", "KUBERNETES API", "ACME REQUESTS", "STATUS -A", "TARGET"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, buf.String())
		}
	}
	if strings.Contains(buf.String(), "1.5 x") {
		t.Errorf("table still has the 1.5 x floor bound:\n%s", buf.String())
	}
}
