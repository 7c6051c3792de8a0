package solver

import (
	"context"
	"fmt"

	"github.com/kubectl-acme/kubectl-acme/acme"
)

// Shared is a solver whose one set of objects serves the challenges of
// several orders: Start creates them for all the challenges and waits for
// the pod, then each order self-checks its own with Check, and CleanUp
// removes the objects once no order needs them.
type Shared interface {
	acme.Solver
	Admitter
	Start(ctx context.Context, chals []acme.Challenge) error
	Check(ctx context.Context, chals []acme.Challenge, chk *SelfCheck, observe acme.Observer) error
	// TrafficOpened and OpenTraffic carry the dry run's decision that a
	// NetworkPolicy must admit the solver's traffic from an order's
	// solver to the shared one.
	TrafficOpened() bool
	OpenTraffic()
	// Configuration is how the objects are built; SelfChecker the
	// order's self-check.
	Configuration() Config
	SelfChecker() *SelfCheck
}

// Configuration is how the solver's objects are built.
func (w *Workload) Configuration() Config { return w.Config }

// SelfChecker is the solver's self-check, nil for none.
func (w *Workload) SelfChecker() *SelfCheck { return w.Checker }

var (
	_ Shared = (*Ingress)(nil)
	_ Shared = (*HTTPRoute)(nil)
)

// MaxPodBytes is how many bytes a solver pod carries at most in its
// annotations and its command line together. The command line is the
// tighter limit: the kernel refuses an exec whose arguments and
// environment pass ARG_MAX, a quarter of the stack limit and never less
// than 128 KiB (execve(2), "Limits on size of arguments and
// environment"); the API server refuses annotations past 256 KiB
// (TotalAnnotationSizeLimitB, apimachinery's
// pkg/api/validation/objectmeta.go). 16 KiB are left to what mutating
// webhooks add (a service mesh's sidecar injector writes a few KiB).
const MaxPodBytes = 128<<10 - 16<<10

// ChallengeBytes is what one challenge adds to the pod: its key
// authorization as an argument.
func ChallengeBytes(ch acme.Challenge) int { return argBytes(ch.KeyAuthorization) }

// argBytes is what execve counts of one argument: the string, its
// terminating NUL and its pointer.
func argBytes(arg string) int { return len(arg) + 1 + 8 }

// PodBytes is what the pod serving chals carries, as MaxPodBytes counts
// it: every annotation's key and value, the pod template's and the
// certificates list included, and every argument of its command.
func (c *Config) PodBytes(chals []acme.Challenge) int {
	pod := c.pod(chals, "2006-01-02T15:04:05Z")
	n := 0
	for k, v := range pod.Annotations {
		n += len(k) + len(v)
	}
	for _, arg := range pod.Spec.Containers[0].Command {
		n += argBytes(arg)
	}
	return n
}

// sharedBy says, in a progress line, how many certificates' orders the
// objects serve, when more than one.
func sharedBy(c *Config) string {
	if len(c.Certificates) < 2 {
		return ""
	}
	return fmt.Sprintf(" (shared by %d certificates' orders)", len(c.Certificates))
}
