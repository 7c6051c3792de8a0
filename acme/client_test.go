package acme

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
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

func TestClientLogsEveryRequestWithoutBodies(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
		_, _ = w.Write([]byte("secret body"))
	}))
	defer srv.Close()
	var lines []string
	c, err := NewClient(ClientConfig{DirectoryURL: srv.URL + "/dir", Log: func(method, url, status string, d time.Duration) {
		lines = append(lines, fmt.Sprintf("%s %s %s", method, url, status))
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.HTTPClient.Post(srv.URL+"/x", "text/plain", strings.NewReader("request body"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if want := "POST " + srv.URL + "/x 418 I'm a teapot"; len(lines) != 1 || lines[0] != want {
		t.Errorf("logged %q, want [%q]", lines, want)
	}
}
