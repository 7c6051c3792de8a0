package solver

import (
	"context"
	"fmt"

	apivalidation "k8s.io/apimachinery/pkg/api/validation"

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

// MaxPodAnnotationBytes is how many bytes of annotations a solver pod
// carries at most: the API server refuses a pod whose annotations' keys
// and values pass TotalAnnotationSizeLimitB (256 KiB, apimachinery's
// pkg/api/validation/objectmeta.go), and 16 KiB are left to what mutating
// webhooks add (a service mesh's sidecar injector writes a few KiB).
const MaxPodAnnotationBytes = apivalidation.TotalAnnotationSizeLimitB - 16<<10

// PodAnnotationBytes is the size the API server counts for the
// annotations of the pod serving chals: every key and value, the pod
// template's and the certificates list included.
func (c *Config) PodAnnotationBytes(chals []acme.Challenge) int {
	n := 0
	for k, v := range c.pod(chals, "2006-01-02T15:04:05Z").Annotations {
		n += len(k) + len(v)
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
