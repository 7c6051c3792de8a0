package bench

import (
	"bytes"
	"strings"
	"testing"
)

func TestEvaluate(t *testing.T) {
	r := &Results{
		Floor:       Summary{N: 10, Median: 1.0},
		FloorNoWait: Summary{N: 3, Median: 0.1},
		Lego:        Summary{N: 10, Median: 4.0},
		One:         Summary{N: 10, Median: 2.0},
		OnePhases:   map[string]Summary{PhasePodStart: {N: 10, Median: 0.6}},
		API:         APICost{Certificates: 10, PerCert: 14},
		Batches: []Batch{
			{N: 20, Wall: 9, API: APICost{PerCert: 14.5}},
			{N: 100, Wall: 16, Mode: "parallel issue processes", Concurrency: 20, API: APICost{PerCert: 14}},
		},
		Status: StatusResult{Certificates: 5000, Wall: Summary{N: 5, Median: 0.4}, PeakRSSMB: 90},
	}
	r.Evaluate()
	if got := r.Ratios["oneToFloor"]; got != 2 {
		t.Errorf("oneToFloor = %v, want 2", got)
	}
	if got := r.Ratios["oneToLego"]; got != 0.5 {
		t.Errorf("oneToLego = %v, want 0.5", got)
	}
	met := map[string]bool{}
	for _, tg := range r.Targets {
		met[tg.Name] = tg.Met
	}
	want := map[string]bool{
		"one certificate":         true, // 2.0 <= 1.5 x 1.0 + 0.6
		"100 certificates":        false,
		"Kubernetes API requests": true,
		"status -A at scale":      true,
	}
	for name, w := range want {
		if met[name] != w {
			t.Errorf("target %q met = %v, want %v", name, met[name], w)
		}
	}

	// A batch that needs more requests per certificate than one at a time
	// is polling.
	r.Batches[1].API.PerCert = 16.5
	r.API.PerCert = 14
	r.Evaluate()
	for _, tg := range r.Targets {
		if tg.Name == "Kubernetes API requests" && tg.Met {
			t.Errorf("API target met with a growing count: %+v", tg)
		}
	}

	var buf bytes.Buffer
	if err := r.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ONE CERTIFICATE", "BATCH", "KUBERNETES API", "ACME REQUESTS", "STATUS -A", "TARGET"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, buf.String())
		}
	}
}
