package acme

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	xacme "golang.org/x/crypto/acme"
)

// fakeCA is an httptest ACME endpoint for answers Pebble never gives:
// step-ca's serverInternal at finalize (a notAfter above its maximum), and
// whatever order state a test sets after it. It checks no signature.
type fakeCA struct {
	t   *testing.T
	srv *httptest.Server

	mu sync.Mutex
	// finalize answers the finalize POSTs; the order's status is set to
	// orderAfter after the first.
	finalizeCode    int
	finalizeProblem string
	orderStatus     string
	orderAfter      string
	// revoke answers the revokeCert POSTs in turn, then the last again.
	revokeAnswers []int
	calls         map[string]int
}

func newFakeCA(t *testing.T) *fakeCA {
	f := &fakeCA{t: t, orderStatus: xacme.StatusReady, calls: map[string]int{}}
	mux := http.NewServeMux()
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	u := f.srv.URL
	mux.HandleFunc("/dir", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"newNonce":%q,"newAccount":%q,"newOrder":%q,"revokeCert":%q}`, u+"/nonce", u+"/account", u+"/new-order", u+"/revoke")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Replay-Nonce", fmt.Sprintf("n%d", time.Now().UnixNano()))
		f.mu.Lock()
		defer f.mu.Unlock()
		f.calls[r.URL.Path]++
		switch r.URL.Path {
		case "/nonce":
			w.WriteHeader(http.StatusOK)
		case "/new-order":
			w.Header().Set("Location", u+"/order/1")
			w.WriteHeader(http.StatusCreated)
			f.writeOrder(w)
		case "/order/1":
			f.writeOrder(w)
		case "/authz/1":
			fmt.Fprint(w, `{"status":"valid","identifier":{"type":"dns","value":"example.test"},"challenges":[]}`)
		case "/finalize/1":
			if f.orderAfter != "" {
				f.orderStatus = f.orderAfter
			}
			if f.finalizeCode != http.StatusOK {
				f.problem(w, f.finalizeCode, f.finalizeProblem, "The certificate lifetime is longer than the maximum allowed")
				return
			}
			f.writeOrder(w)
		case "/revoke":
			i := min(f.calls["/revoke"], len(f.revokeAnswers)) - 1
			switch code := f.revokeAnswers[i]; code {
			case http.StatusOK:
				w.WriteHeader(code)
			case http.StatusBadRequest:
				f.problem(w, code, "alreadyRevoked", "certificate already revoked")
			default:
				f.problem(w, code, "serverInternal", "the database is down")
			}
		default:
			http.NotFound(w, r)
		}
	})
	return f
}

func (f *fakeCA) writeOrder(w http.ResponseWriter) {
	u := f.srv.URL
	fmt.Fprintf(w, `{"status":%q,"identifiers":[{"type":"dns","value":"example.test"}],"authorizations":[%q],"finalize":%q}`,
		f.orderStatus, u+"/authz/1", u+"/finalize/1")
}

func (f *fakeCA) problem(w http.ResponseWriter, code int, typ, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(code)
	fmt.Fprintf(w, `{"type":"urn:ietf:params:acme:error:%s","detail":%q}`, typ, detail)
}

func (f *fakeCA) count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[path]
}

func (f *fakeCA) client(t *testing.T) *xacme.Client {
	key, err := GenerateKey(KeySpec{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(ClientConfig{DirectoryURL: f.srv.URL + "/dir"}, key)
	if err != nil {
		t.Fatal(err)
	}
	c.KID = xacme.KeyID(f.srv.URL + "/account/1")
	return c
}

// noSolver is never asked: the fake's authorization is valid already.
type noSolver struct{}

func (noSolver) Present(context.Context, []Challenge) error { return errors.New("unexpected Present") }
func (noSolver) CleanUp(context.Context) error              { return nil }

func TestFinalizeRefusedIsNotRetriedAndSaysNothingWasIssued(t *testing.T) {
	for _, tc := range []struct {
		name       string
		orderAfter string
		notAfter   bool
		notIssued  bool
		want       string
	}{
		{"order still ready, duration asked", "", true, true, "the order is ready and the CA issued no certificate; a requested lifetime (notAfter) above the CA's maximum is the usual cause"},
		{"order still ready, no duration", "", false, true, "serverInternal: The certificate lifetime is longer than the maximum allowed: the order is ready and the CA issued no certificate"},
		{"order invalid", xacme.StatusInvalid, true, true, "the order is invalid and the CA issued no certificate"},
		// The CA took the CSR after all: it may still issue, so the
		// caller must keep the key.
		{"order processing", xacme.StatusProcessing, true, false, "(the order is processing)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeCA(t)
			f.finalizeCode, f.finalizeProblem, f.orderAfter = http.StatusInternalServerError, "serverInternal", tc.orderAfter
			key, _ := GenerateKey(KeySpec{})
			req := Request{DNSNames: []string{"example.test"}, Key: key}
			if tc.notAfter {
				req.NotAfter = time.Now().Add(48 * time.Hour)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			_, err := Obtain(ctx, f.client(t), req, noSolver{}, nil)
			if n := f.count("/finalize/1"); n != 1 {
				t.Errorf("finalize sent %d times, want once", n)
			}
			var ni *NotIssuedError
			if errors.As(err, &ni) != tc.notIssued {
				t.Fatalf("NotIssuedError = %v, want %v: %v", ni != nil, tc.notIssued, err)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "may have issued") {
				t.Errorf("error %q claims a certificate may exist", err)
			}
			var ae *xacme.Error
			if !errors.As(err, &ae) || ae.ProblemType != "urn:ietf:params:acme:error:serverInternal" {
				t.Errorf("the CA's problem is lost from the chain: %v", err)
			}
		})
	}
}

func TestWithoutRetryOnlyForItsURL(t *testing.T) {
	res := &http.Response{StatusCode: http.StatusInternalServerError, Header: http.Header{}}
	ctx := withoutRetry(context.Background(), "https://ca.test/finalize/1")
	for _, tc := range []struct {
		url   string
		retry bool
	}{
		{"https://ca.test/finalize/1", false},
		{"https://ca.test/order/1", true},
	} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, tc.url, nil)
		if d := retryBackoff(1, req, res); (d > 0) != tc.retry {
			t.Errorf("%s: backoff %s, want retried %v", tc.url, d, tc.retry)
		}
	}
	// badNonce is still retried on the finalize URL.
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://ca.test/finalize/1", nil)
	if d := retryBackoff(1, req, &http.Response{StatusCode: http.StatusBadRequest}); d <= 0 {
		t.Errorf("badNonce on finalize is not retried")
	}
}

func TestRevokeReportsAlreadyRevoked(t *testing.T) {
	for _, tc := range []struct {
		name    string
		answers []int
		want    error // nil: a fresh revocation
		posts   int
	}{
		{"fresh", []int{200}, nil, 1},
		{"already revoked", []int{400}, ErrAlreadyRevoked, 1},
		// A 5xx, then alreadyRevoked: the first try went through.
		{"retried after 500", []int{500, 400}, nil, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeCA(t)
			f.revokeAnswers = tc.answers
			err := Revoke(t.Context(), f.client(t), []byte("der"), xacme.CRLReasonKeyCompromise)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Errorf("Revoke = %v, want %v", err, tc.want)
			}
			if n := f.count("/revoke"); n != tc.posts {
				t.Errorf("revokeCert POSTs: %d, want %d", n, tc.posts)
			}
		})
	}
}
