package plugin

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

type flakyRT struct {
	errs  []error // returned in turn, then success
	calls int
	body  []string
}

func (f *flakyRT) RoundTrip(r *http.Request) (*http.Response, error) {
	f.calls++
	if r.Body != nil {
		b, _ := io.ReadAll(r.Body)
		f.body = append(f.body, string(b))
	}
	if f.calls <= len(f.errs) {
		return nil, f.errs[f.calls-1]
	}
	return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
}

func TestRetryTransport(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	brokenPipe := &net.OpError{Op: "write", Net: "tcp", Err: &os.SyscallError{Syscall: "write", Err: syscall.EPIPE}}
	tests := []struct {
		name      string
		method    string
		errs      []error
		wantCalls int
		wantErr   bool
	}{
		{"refused POST is retried", http.MethodPost, []error{refused, refused}, 3, false},
		{"reset GET is retried", http.MethodGet, []error{reset, io.EOF}, 3, false},
		{"reset PUT is retried", http.MethodPut, []error{reset}, 2, false},
		{"reset POST is retried: creates of named objects answer AlreadyExists if repeated", http.MethodPost, []error{reset}, 2, false},
		{"broken pipe POST is retried: written to a connection the server had closed", http.MethodPost, []error{brokenPipe}, 2, false},
		{"other errors are not retried", http.MethodGet, []error{errors.New("x509: certificate signed by unknown authority")}, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &flakyRT{errs: tt.errs}
			rt := &retryTransport{rt: f, budget: 10 * time.Second}
			req, _ := http.NewRequest(tt.method, "https://127.0.0.1:6443/api/v1/namespaces/x/pods", strings.NewReader(`{"kind":"Pod"}`))
			_, err := rt.RoundTrip(req)
			if (err != nil) != tt.wantErr || f.calls != tt.wantCalls {
				t.Errorf("err %v after %d calls; want error %v after %d", err, f.calls, tt.wantErr, tt.wantCalls)
			}
			for _, b := range f.body {
				if b != `{"kind":"Pod"}` {
					t.Errorf("retry sent body %q", b)
				}
			}
		})
	}

	// The budget and the request's context bound the retries.
	f := &flakyRT{errs: make([]error, 1000)}
	for i := range f.errs {
		f.errs[i] = refused
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://127.0.0.1:6443/", nil)
	start := time.Now()
	if _, err := (&retryTransport{rt: f, budget: time.Minute}).RoundTrip(req); err == nil || time.Since(start) > 2*time.Second {
		t.Errorf("err %v after %s: the context must end the retries", err, time.Since(start))
	}
}

// cutBodyRT answers once with a body that breaks off, then whole.
type cutBodyRT struct{ calls int }

type cutReader struct{}

func (cutReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

func (c *cutBodyRT) RoundTrip(r *http.Request) (*http.Response, error) {
	c.calls++
	if c.calls == 1 {
		return &http.Response{StatusCode: 200, Body: io.NopCloser(cutReader{})}, nil
	}
	return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader(`{"kind":"Pod"}`))}, nil
}

func TestRetryTransportRereadsACutBody(t *testing.T) {
	c := &cutBodyRT{}
	rt := &retryTransport{rt: c, budget: 10 * time.Second}
	req, _ := http.NewRequest(http.MethodGet, "https://127.0.0.1:6443/api/v1/namespaces/x/pods/p", nil)
	res, err := rt.RoundTrip(req)
	if err != nil || c.calls != 2 {
		t.Fatalf("err %v after %d calls", err, c.calls)
	}
	if b, _ := io.ReadAll(res.Body); string(b) != `{"kind":"Pod"}` {
		t.Errorf("body %q", b)
	}
	// A watch streams: its body is handed over unread.
	c = &cutBodyRT{}
	rt = &retryTransport{rt: c, budget: 10 * time.Second}
	req, _ = http.NewRequest(http.MethodGet, "https://127.0.0.1:6443/api/v1/namespaces/x/pods?watch=true", nil)
	if _, err := rt.RoundTrip(req); err != nil || c.calls != 1 {
		t.Errorf("watch: err %v after %d calls", err, c.calls)
	}
}
