package bench

import (
	"math"
	"strings"
	"testing"
	"time"
)

// A run as `kubectl acme issue` printed it (TestParsePhases stamps lines
// with the times below, not with the plugin's own).
const sampleProgress = `[   0.1s] order                    pending     order https://127.0.0.1:35275/my-order/Aaeb
[   0.1s] web1.example.test        presenting
[   0.2s] order                    presenting  created pod, service, ingress b/acme-solver-web1-169e23
[   0.2s] order                    presenting  solver pod: Pending
[   0.3s] order                    presenting  solver pod: Running
[   0.6s] order                    presenting  solver pod ready; self-checking
[   0.6s] web1.example.test        presenting  self-check http://web1.example.test/.well-known/acme-challenge/3RLc: status: HTTP 503 (retrying)
[   0.6s] web1.example.test        presenting  self-check passed
[   0.6s] web1.example.test        validating  CA is checking
[   1.4s] web1.example.test        valid
[   1.4s] order                    finalizing
[   1.4s] order                    issued      https://127.0.0.1:35275/certZ/28dd0c58e34e1e94`

func stamped(text string, ms ...int) []Line {
	var out []Line
	for i, s := range strings.Split(text, "\n") {
		out = append(out, Line{At: time.Duration(ms[i]) * time.Millisecond, Text: s})
	}
	return out
}

func TestParsePhases(t *testing.T) {
	lines := stamped(sampleProgress, 150, 151, 230, 240, 330, 610, 620, 640, 641, 1410, 1411, 1450)
	got, err := ParsePhases(lines, 1600*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		PhaseSetup: 0.150, PhaseObjects: 0.080, PhasePodStart: 0.380, PhaseSelfCheck: 0.030,
		PhaseValidation: 0.770, PhaseFinalize: 0.040, PhaseStore: 0.150,
	}
	sum := 0.0
	for name, w := range want {
		if math.Abs(got[name]-w) > 1e-9 {
			t.Errorf("%s = %v, want %v", name, got[name], w)
		}
		sum += got[name]
	}
	if math.Abs(sum-1.6) > 1e-9 {
		t.Errorf("phases add up to %v, want the wall time 1.6", sum)
	}
}

func TestParsePhasesErrors(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{"reused authorization", "[   0.1s] order                    pending     order u\n[   0.2s] a.test                   valid       authorization reused", "no \"objects created\""},
		{"invalid", "[   0.1s] order                    pending     order u\n[   0.2s] a.test                   invalid     unauthorized: 404", "a.test invalid: unauthorized: 404"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines := stamped(tt.text, 100, 200)
			_, err := ParsePhases(lines, time.Second)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestParseProgressLine(t *testing.T) {
	ev, ok := parseProgressLine("[  12.3s] order                    presenting  solver pod: Pending")
	if !ok || ev.id != "order" || ev.state != "presenting" || ev.detail != "solver pod: Pending" {
		t.Errorf("got %+v, %v", ev, ok)
	}
	if _, ok := parseProgressLine("Error: certificate \"x\": boom"); ok {
		t.Error("parsed an error line as progress")
	}
}

func TestSplitByCertificate(t *testing.T) {
	text := `[   0.9s] a19                      pending     order https://127.0.0.1:40137/my-order/r3r6
[   0.9s] a19: a19.bench.test      presenting
[   1.0s] a7                       pending     order https://127.0.0.1:40137/my-order/vR3B
[   2.2s] a19                      presenting  created pod, service, ingress ap/acme-solver-a19-bfcf17
[   2.3s] a19                      presenting  solver pod ready; self-checking
[   2.5s] a19: a19.bench.test      presenting  self-check passed
[   2.5s] a19: a19.bench.test      validating  CA is checking
[   3.5s] a19: a19.bench.test      valid
[   3.5s] a19                      finalizing
[   3.6s] a19                      issued      https://127.0.0.1:40137/certZ/2037`
	lines := stamped(text, 900, 901, 1000, 2200, 2300, 2500, 2501, 3500, 3501, 3600)
	byCert := SplitByCertificate(lines)
	if len(byCert) != 2 || len(byCert["a7"]) != 1 || len(byCert["a19"]) != 9 {
		t.Fatalf("split into %v", byCert)
	}
	if got := byCert["a19"][1].Text; got != "[   0.9s] a19.bench.test presenting" {
		t.Errorf("per-name line became %q", got)
	}
	ph, err := ParseCertificatePhases(byCert["a19"])
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{PhaseObjects: 1.3, PhasePodStart: 0.1, PhaseSelfCheck: 0.2, PhaseValidation: 1.0, PhaseFinalize: 0.1}
	if len(ph) != len(want) {
		t.Errorf("phases %v, want only %v", ph, want)
	}
	for k, w := range want {
		if math.Abs(ph[k]-w) > 1e-9 {
			t.Errorf("%s = %v, want %v", k, ph[k], w)
		}
	}
}
