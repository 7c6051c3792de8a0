package plugin

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"syscall"
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
// connection never reached the server and is always retried. One that may
// have reached it (connection reset, broken pipe, EOF) is retried too: kubectl-acme's
// POSTs are creates of named objects and access reviews, so a repeat
// either succeeds or answers AlreadyExists, which the callers take as
// their own create having gone through (solver names are unique per order;
// the store re-reads and checks ownership).
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
		if err == nil && !isWatch(req) {
			// A connection cut after the headers loses the body, which
			// client-go would report as an error: read it here, where
			// the request can still be repeated.
			res, err = bufferBody(res)
		}
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
	// EPIPE: the request was written to a connection the server (or a
	// proxy in front of it) had already closed, as in a restart.
	return utilnet.IsConnectionReset(err) || errors.Is(err, syscall.EPIPE) || utilnet.IsProbableEOF(err) ||
		strings.Contains(err.Error(), "http2: client connection lost") ||
		strings.Contains(err.Error(), "use of closed network connection")
}

// isWatch reports whether req streams (a watch), whose body must not be
// read ahead.
func isWatch(req *http.Request) bool {
	return req.URL.Query().Get("watch") == "true" || req.URL.Query().Get("watch") == "1" ||
		strings.Contains(req.URL.Path, "/watch/")
}

// bufferBody reads the whole response body, so a cut connection shows
// as an error of the round trip.
func bufferBody(res *http.Response) (*http.Response, error) {
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	return res, nil
}
