package bench

import (
	"github.com/kubectl-acme/kubectl-acme/acme"

	"fmt"
	"strings"
	"time"
)

// Line is one progress line `kubectl acme issue` wrote to stderr, stamped
// with when the benchmark read it, counted from the process's start. The
// plugin's own "[  1.2s]" stamps have a tenth of a second's resolution and
// start late (after flags and the kubeconfig are read); the arrival stamp
// has neither problem, and a pipe delivers each line as it is written.
type Line struct {
	At   time.Duration
	Text string
}

// Phase names of one issuance, in order; together they cover the whole
// wall time of the process.
const (
	PhaseSetup      = "setup"         // process start to the order being created
	PhaseObjects    = "authz+objects" // authorization read, pod/service/ingress created
	PhasePodStart   = "pod start"     // solver pod created until Ready
	PhaseSelfCheck  = "self-check"    // Ready until the challenge URL answers through the ingress
	PhaseValidation = "CA validation" // challenge accepted until the authorization is valid
	PhaseFinalize   = "finalize"      // order finalized and certificate downloaded
	PhaseStore      = "store+cleanup" // solver objects deleted, Secret and status written, exit
)

// PhaseNames lists the phases in order.
var PhaseNames = []string{PhaseSetup, PhaseObjects, PhasePodStart, PhaseSelfCheck, PhaseValidation, PhaseFinalize, PhaseStore}

type progressEvent struct {
	id, state, detail string
}

// parseProgressLine reads "[   0.6s] NAME  STATE  DETAIL" as the plugin
// prints it when stderr is not a terminal.
func parseProgressLine(s string) (progressEvent, bool) {
	if !strings.HasPrefix(s, "[") {
		return progressEvent{}, false
	}
	_, rest, ok := strings.Cut(s, "] ")
	if !ok {
		return progressEvent{}, false
	}
	f := strings.Fields(rest)
	if len(f) < 2 {
		return progressEvent{}, false
	}
	ev := progressEvent{id: f[0], state: f[1]}
	// The detail is what follows the state, spacing kept.
	after := strings.TrimLeft(rest, " ")
	after = strings.TrimLeft(after[len(f[0]):], " ")
	ev.detail = strings.TrimSpace(after[len(f[1]):])
	return ev, true
}

// ParsePhases splits one issuance's wall time (exit, from process start)
// into PhaseNames, in seconds, from its progress lines. It fails when a
// step is missing, e.g. when an authorization was reused and no solver ran.
func ParsePhases(lines []Line, exit time.Duration) (map[string]float64, error) {
	const unset = time.Duration(-1)
	pending, created, ready, checked, valid, issued := unset, unset, unset, unset, unset, unset
	for _, l := range lines {
		ev, ok := parseProgressLine(l.Text)
		if !ok {
			continue
		}
		order := ev.id == "order"
		switch {
		case order && ev.state == acme.StatePending && pending == unset:
			pending = l.At
		case order && ev.state == acme.StatePresenting && strings.HasPrefix(ev.detail, "created "):
			created = l.At
		case order && ev.state == acme.StatePresenting && strings.HasPrefix(ev.detail, "solver pod ready"):
			ready = l.At
		case !order && ev.state == acme.StatePresenting && ev.detail == "self-check passed":
			checked = max(checked, l.At) // the last name's check
		case !order && ev.state == acme.StateValid:
			valid = max(valid, l.At)
		case !order && (ev.state == acme.StateInvalid || ev.state == acme.StateErrored):
			return nil, fmt.Errorf("%s %s: %s", ev.id, ev.state, ev.detail)
		case order && ev.state == acme.StateIssued:
			issued = l.At
		}
	}
	marks := []struct {
		name string
		at   time.Duration
	}{{"order pending", pending}, {"objects created", created}, {"solver pod ready", ready}, {"self-check passed", checked}, {"valid", valid}, {"issued", issued}}
	prev := time.Duration(0)
	for _, m := range marks {
		if m.at == unset {
			return nil, fmt.Errorf("no %q progress line", m.name)
		}
		if m.at < prev {
			return nil, fmt.Errorf("progress line %q out of order", m.name)
		}
		prev = m.at
	}
	if exit < issued {
		return nil, fmt.Errorf("exit before the issued line")
	}
	return map[string]float64{
		PhaseSetup:      pending.Seconds(),
		PhaseObjects:    (created - pending).Seconds(),
		PhasePodStart:   (ready - created).Seconds(),
		PhaseSelfCheck:  (checked - ready).Seconds(),
		PhaseValidation: (valid - checked).Seconds(),
		PhaseFinalize:   (issued - valid).Seconds(),
		PhaseStore:      (exit - issued).Seconds(),
	}, nil
}

// SummarizePhases summarizes each of PhaseNames over several issuances.
func SummarizePhases(runs []map[string]float64) map[string]Summary {
	return summarizeNamed(runs, PhaseNames)
}

// retryAfterWait is the shortest phase taken as a wait on the CA's
// Retry-After (Pebble here says 1s); without one, the phases that poll
// take milliseconds.
const retryAfterWait = 0.5

// waited reports whether one of the named phases waited on a Retry-After.
func waited(phases map[string]float64, names ...string) bool {
	for _, n := range names {
		if phases[n] >= retryAfterWait {
			return true
		}
	}
	return false
}

func summarizeNamed(runs []map[string]float64, names []string) map[string]Summary {
	if len(runs) == 0 {
		return nil
	}
	out := map[string]Summary{}
	for _, name := range names {
		var xs []float64
		for _, r := range runs {
			if v, ok := r[name]; ok {
				xs = append(xs, v)
			}
		}
		if len(xs) > 0 {
			out[name] = Summarize(xs)
		}
	}
	return out
}

// SplitByCertificate separates the progress of several certificates
// issued by one `kubectl acme apply`, which prefixes order-wide lines with
// the certificate's name ("web  pending ...") and per-name lines with the
// name and a colon ("web: web.example.com  valid"), into one `issue`-like
// progress per certificate.
func SplitByCertificate(lines []Line) map[string][]Line {
	out := map[string][]Line{}
	for _, l := range lines {
		stamp, rest, ok := strings.Cut(l.Text, "] ")
		if !ok || !strings.HasPrefix(stamp, "[") {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 2 {
			continue
		}
		cert, perName := strings.CutSuffix(f[0], ":")
		id := "order"
		if perName {
			id = f[1]
		}
		after := strings.TrimLeft(rest, " ")[len(f[0]):]
		if perName {
			after = strings.TrimLeft(after, " ")[len(f[1]):]
		}
		out[cert] = append(out[cert], Line{At: l.At, Text: stamp + "] " + id + " " + strings.TrimLeft(after, " ")})
	}
	return out
}

// ParseCertificatePhases is ParsePhases for one certificate of an apply:
// its setup (queued behind others) and its end are not in the progress,
// so only the phases between the order and "issued" are returned.
func ParseCertificatePhases(lines []Line) (map[string]float64, error) {
	var last time.Duration
	for _, l := range lines {
		last = max(last, l.At)
	}
	ph, err := ParsePhases(lines, last)
	if err != nil {
		return nil, err
	}
	delete(ph, PhaseSetup)
	delete(ph, PhaseStore)
	return ph, nil
}
