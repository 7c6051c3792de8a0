package acme

import (
	"net/http"
	"testing"
)

func TestRetryBackoffIsBounded(t *testing.T) {
	res := func(code int, h ...string) *http.Response {
		r := &http.Response{StatusCode: code, Header: http.Header{}}
		if len(h) == 2 {
			r.Header.Set(h[0], h[1])
		}
		return r
	}
	if d := retryBackoff(1, nil, res(http.StatusTooManyRequests, "Retry-After", "1")); d >= 0 {
		t.Errorf("a rate limit is retried after %s; want no blind retry", d)
	}
	if d := retryBackoff(1, nil, res(http.StatusInternalServerError)); d <= 0 {
		t.Errorf("a 500 is not retried")
	}
	if d := retryBackoff(maxRetries+1, nil, res(http.StatusServiceUnavailable)); d >= 0 {
		t.Errorf("retry %d of a 503: %s, want none", maxRetries+1, d)
	}
	if d := retryBackoff(3, nil, res(http.StatusServiceUnavailable, "Retry-After", "2")); d.Seconds() != 2 {
		t.Errorf("Retry-After 2: %s", d)
	}
	// badNonce: many quick retries, still bounded.
	if d := retryBackoff(maxRetries+5, nil, res(http.StatusBadRequest)); d <= 0 || d > 50e6 {
		t.Errorf("badNonce retry %d: %s, want a quick one", maxRetries+5, d)
	}
	if d := retryBackoff(maxBadNonceRetries+1, nil, res(http.StatusBadRequest)); d >= 0 {
		t.Errorf("badNonce retry %d: %s, want none", maxBadNonceRetries+1, d)
	}
}
