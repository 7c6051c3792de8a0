package plugin

import (
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"time"

	utilnet "k8s.io/apimachinery/pkg/util/net"
)

// apiRetryBudget is how long a request to the API server is retried while
// the server cannot be reached: long enough for an API server restart or
// a dropped connection, short enough that a dead server is reported.
const apiRetryBudget = 30 * time.Second

// retryTransport retries API requests that failed because the API server
// could not be reached, with backoff and jitter, for up to budget (and
// never beyond the request's context). A request that was refused a
// connection never reached the server and is always retried; one that may
// have reached it (connection reset, EOF) only when repeating it is
// harmless: not a POST.
type retryTransport struct {
	rt     http.RoundTripper
	budget time.Duration
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	deadline := time.Now().Add(t.budget)
	delay := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		r := req
		if attempt > 0 {
			r = req.Clone(req.Context())
			if req.Body != nil && req.Body != http.NoBody {
				body, err := req.GetBody()
				if err != nil {
					return nil, err
				}
				r.Body = body
			}
		}
		res, err := t.rt.RoundTrip(r)
		if err == nil || !retriable(req, err) || time.Now().Add(delay).After(deadline) {
			return res, err
		}
		select {
		case <-req.Context().Done():
			return nil, err
		case <-time.After(delay + rand.N(delay/2+1)):
		}
		delay = min(2*delay, 2*time.Second)
	}
}

// retriable reports whether req may be sent again after err.
func retriable(req *http.Request, err error) bool {
	if req.Context().Err() != nil {
		return false
	}
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return false // cannot send the body again
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	if req.Method == http.MethodPost {
		return false
	}
	return utilnet.IsConnectionReset(err) || utilnet.IsProbableEOF(err) ||
		strings.Contains(err.Error(), "http2: client connection lost") ||
		strings.Contains(err.Error(), "use of closed network connection")
}
