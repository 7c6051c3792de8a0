package acme

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	xacme "golang.org/x/crypto/acme"
)

// orderCA is an httptest ACME server for the order flow, for the answers
// Pebble cannot be made to give (a rate limit, a badNonce on demand, an
// order that fails while processing, Retry-After on polling, subproblems,
// alternate chains). It serves RFC 8555's happy path by default, one
// authorization per identifier; a test changes an answer through answer.
// It checks no signature: what is under test is how Obtain reads the CA.
type orderCA struct {
	t   *testing.T
	srv *httptest.Server

	mu sync.Mutex
	// authz holds each authorization's status, in the order's order;
	// accepted says which challenges were POSTed.
	ids      []string
	authz    []string
	accepted []bool
	// fail, when set for an authorization, is the challenge's error
	// (a problem document, JSON) once it is accepted: the authorization
	// becomes invalid instead of valid.
	fail        map[int]string
	orderStatus string
	// answer, when it has the request's path, answers it instead of
	// the default; n counts that path's requests from 1. It returns
	// false to fall through to the default.
	answer map[string]func(w http.ResponseWriter, r *http.Request, n int) bool
	// chains are the PEM chains served at their paths; /cert is the
	// order's, alternates are announced with Link rel="alternate".
	chains     map[string][]byte
	alternates []string

	calls  map[string]int
	times  map[string][]time.Time
	nonces map[string][]string // the JWS nonce of each POST, by path
	nonce  int
}

func newOrderCA(t *testing.T, ids ...string) *orderCA {
	f := &orderCA{t: t, ids: ids, orderStatus: xacme.StatusPending, fail: map[int]string{},
		answer: map[string]func(http.ResponseWriter, *http.Request, int) bool{}, chains: map[string][]byte{},
		calls: map[string]int{}, times: map[string][]time.Time{}, nonces: map[string][]string{}}
	for range ids {
		f.authz = append(f.authz, xacme.StatusPending)
		f.accepted = append(f.accepted, false)
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	f.chains["/cert"] = testChain(t, "Root A")
	return f
}

func (f *orderCA) url(path string) string { return f.srv.URL + path }

func (f *orderCA) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nonce++
	w.Header().Set("Replay-Nonce", fmt.Sprintf("nonce-%d", f.nonce))
	p := r.URL.Path
	f.calls[p]++
	f.times[p] = append(f.times[p], time.Now())
	if r.Method == http.MethodPost {
		f.nonces[p] = append(f.nonces[p], jwsNonce(f.t, r))
	}
	if a := f.answer[p]; a != nil && a(w, r, f.calls[p]) {
		return
	}
	switch {
	case p == "/dir":
		fmt.Fprintf(w, `{"newNonce":%q,"newAccount":%q,"newOrder":%q,"revokeCert":%q}`,
			f.url("/nonce"), f.url("/account"), f.url("/new-order"), f.url("/revoke"))
	case p == "/nonce":
	case p == "/new-order":
		w.Header().Set("Location", f.url("/order"))
		w.WriteHeader(http.StatusCreated)
		f.writeOrder(w)
	case p == "/order":
		f.writeOrder(w)
	case strings.HasPrefix(p, "/authz/"):
		f.writeAuthz(w, f.index(p))
	case strings.HasPrefix(p, "/chal/"):
		i := f.index(p)
		f.accepted[i] = true
		if f.fail[i] != "" {
			f.authz[i] = xacme.StatusInvalid
		} else {
			f.authz[i] = xacme.StatusValid
		}
		fmt.Fprint(w, f.challenge(i))
	case p == "/finalize":
		f.orderStatus = xacme.StatusValid
		f.writeOrder(w)
	case f.chains[p] != nil:
		w.Header().Set("Content-Type", "application/pem-certificate-chain")
		if p == "/cert" {
			for _, a := range f.alternates {
				w.Header().Add("Link", fmt.Sprintf("<%s>;rel=\"alternate\"", f.url(a)))
			}
		}
		_, _ = w.Write(f.chains[p])
	default:
		http.NotFound(w, r)
	}
}

func (f *orderCA) index(path string) int {
	var i int
	if _, err := fmt.Sscanf(path[strings.LastIndex(path, "/")+1:], "%d", &i); err != nil || i >= len(f.ids) {
		f.t.Errorf("request for %s", path)
	}
	return i
}

// writeOrder writes the order as it stands: ready once every authorization
// is valid, with the certificate's URL once valid.
func (f *orderCA) writeOrder(w io.Writer) {
	f.writeOrderStatus(w, f.currentStatus(), "")
}

func (f *orderCA) currentStatus() string {
	if f.orderStatus == xacme.StatusPending {
		ready := true
		for _, s := range f.authz {
			ready = ready && s == xacme.StatusValid
		}
		if ready {
			return xacme.StatusReady
		}
	}
	return f.orderStatus
}

// writeOrderStatus writes the order with status and, when set, problem
// (JSON) as its error.
func (f *orderCA) writeOrderStatus(w io.Writer, status, problem string) {
	var ids, authz []string
	for i, id := range f.ids {
		ids = append(ids, fmt.Sprintf(`{"type":"dns","value":%q}`, id))
		authz = append(authz, fmt.Sprintf("%q", f.url(fmt.Sprintf("/authz/%d", i))))
	}
	extra := ""
	if status == xacme.StatusValid {
		extra += fmt.Sprintf(`,"certificate":%q`, f.url("/cert"))
	}
	if problem != "" {
		extra += `,"error":` + problem
	}
	fmt.Fprintf(w, `{"status":%q,"identifiers":[%s],"authorizations":[%s],"finalize":%q%s}`,
		status, strings.Join(ids, ","), strings.Join(authz, ","), f.url("/finalize"), extra)
}

func (f *orderCA) writeAuthz(w io.Writer, i int) {
	fmt.Fprintf(w, `{"status":%q,"identifier":{"type":"dns","value":%q},"challenges":[%s]}`, f.authz[i], f.ids[i], f.challenge(i))
}

func (f *orderCA) challenge(i int) string {
	status, extra := xacme.StatusPending, ""
	switch {
	case f.authz[i] == xacme.StatusValid:
		status = xacme.StatusValid
	case f.accepted[i] && f.fail[i] != "":
		status, extra = xacme.StatusInvalid, `,"error":`+f.fail[i]
	case f.accepted[i]:
		status = xacme.StatusProcessing
	}
	return fmt.Sprintf(`{"type":"http-01","url":%q,"token":"token-%d","status":%q%s}`, f.url(fmt.Sprintf("/chal/%d", i)), i, status, extra)
}

func (f *orderCA) count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[path]
}

func (f *orderCA) client(t *testing.T) *xacme.Client {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(ClientConfig{DirectoryURL: f.url("/dir")}, key)
	if err != nil {
		t.Fatal(err)
	}
	c.KID = xacme.KeyID(f.url("/account/1"))
	return c
}

// problemJSON is a problem document of type typ (without the URN prefix).
func problemJSON(typ, detail string) string {
	return fmt.Sprintf(`{"type":"urn:ietf:params:acme:error:%s","detail":%q}`, typ, detail)
}

func writeProblem(w http.ResponseWriter, code int, typ, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(code)
	fmt.Fprint(w, problemJSON(typ, detail))
}

// jwsNonce is the nonce in the protected header of a JWS-signed POST.
func jwsNonce(t *testing.T, r *http.Request) string {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		t.Errorf("read %s: %v", r.URL.Path, err)
		return ""
	}
	var jws struct{ Protected string }
	if err := json.Unmarshal(body, &jws); err != nil {
		t.Errorf("%s: not a JWS: %s", r.URL.Path, body)
		return ""
	}
	hdr, _ := base64.RawURLEncoding.DecodeString(jws.Protected)
	var h struct{ Nonce string }
	_ = json.Unmarshal(hdr, &h)
	return h.Nonce
}

// recordingSolver records what it is asked to present and whether it was
// cleaned up; it answers nothing (the fake CA checks nothing).
type recordingSolver struct {
	mu        sync.Mutex
	presented []string
	cleanedUp int
}

func (s *recordingSolver) Present(_ context.Context, chals []Challenge) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range chals {
		s.presented = append(s.presented, c.Identifier)
	}
	return nil
}

func (s *recordingSolver) CleanUp(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cleanedUp++
	return nil
}

func obtainRequest(t *testing.T, names ...string) Request {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return Request{DNSNames: names, Key: key}
}

// testChain is a PEM chain, leaf first, whose top certificate is an
// intermediate issued by a root named root.
func testChain(t *testing.T, root string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	mk := func(serial int64, subject, issuer string, ca bool) []byte {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: subject},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: ca, BasicConstraintsValid: ca}
		parent := &x509.Certificate{Subject: pkix.Name{CommonName: issuer}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	return append(mk(1, "example.test", "Intermediate", false), mk(2, "Intermediate", root, true)...)
}

// topIssuer is the issuer's common name of a chain's last certificate.
func topIssuer(t *testing.T, chain [][]byte) string {
	t.Helper()
	top, err := x509.ParseCertificate(chain[len(chain)-1])
	if err != nil {
		t.Fatal(err)
	}
	return top.Issuer.CommonName
}

func obtainCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestObtainAnswersPendingAuthorizationsOnly(t *testing.T) {
	f := newOrderCA(t, "reused.example.test", "new.example.test")
	f.authz[0] = xacme.StatusValid
	s := &recordingSolver{}
	res, err := Obtain(obtainCtx(t, 30*time.Second), f.client(t), obtainRequest(t, f.ids...), s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.presented) != 1 || s.presented[0] != "new.example.test" {
		t.Errorf("presented %v, want only the pending new.example.test", s.presented)
	}
	if s.cleanedUp != 1 {
		t.Errorf("solver cleaned up %d times, want once", s.cleanedUp)
	}
	if n := f.count("/chal/0"); n != 0 {
		t.Errorf("the valid authorization's challenge was answered %d times", n)
	}
	want := []ChallengeOutcome{
		{Identifier: "reused.example.test", Type: "http-01", State: StateValid, Detail: "authorization reused"},
		{Identifier: "new.example.test", Type: "http-01", State: StateValid},
	}
	if fmt.Sprint(res.Challenges) != fmt.Sprint(want) {
		t.Errorf("outcomes %+v, want %+v", res.Challenges, want)
	}
	if len(res.Chain) != 2 {
		t.Errorf("chain of %d certificates, want 2", len(res.Chain))
	}
}

func TestObtainAllAuthorizationsValidPresentsNothing(t *testing.T) {
	f := newOrderCA(t, "a.example.test", "b.example.test")
	f.authz[0], f.authz[1] = xacme.StatusValid, xacme.StatusValid
	s := &recordingSolver{}
	if _, err := Obtain(obtainCtx(t, 30*time.Second), f.client(t), obtainRequest(t, f.ids...), s, nil); err != nil {
		t.Fatal(err)
	}
	if len(s.presented) != 0 || s.cleanedUp != 0 {
		t.Errorf("solver presented %v and cleaned up %d times; want it untouched", s.presented, s.cleanedUp)
	}
	if n := f.count("/finalize"); n != 1 {
		t.Errorf("finalize sent %d times, want once", n)
	}
}

func TestObtainChallengeInvalidWithSubproblems(t *testing.T) {
	f := newOrderCA(t, "ok.example.test", "bad.example.test")
	f.fail[1] = `{"type":"urn:ietf:params:acme:error:unauthorized","detail":"2 validation attempts failed",` +
		`"subproblems":[{"type":"urn:ietf:params:acme:error:connection","detail":"10.0.0.1: connection refused","identifier":{"type":"dns","value":"bad.example.test"}},` +
		`{"type":"urn:ietf:params:acme:error:unauthorized","detail":"404 from /.well-known/acme-challenge/token-1","identifier":{"type":"dns","value":"bad.example.test"}}]}`
	s := &recordingSolver{}
	res, err := Obtain(obtainCtx(t, 30*time.Second), f.client(t), obtainRequest(t, f.ids...), s, nil)
	var ce *ChallengeError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v, want a ChallengeError", err)
	}
	wantDetail := "unauthorized: 2 validation attempts failed; bad.example.test: connection: 10.0.0.1: connection refused; " +
		"bad.example.test: unauthorized: 404 from /.well-known/acme-challenge/token-1"
	want := []ChallengeOutcome{
		{Identifier: "ok.example.test", Type: "http-01", State: StateValid},
		{Identifier: "bad.example.test", Type: "http-01", State: StateInvalid, Detail: wantDetail},
	}
	if fmt.Sprint(ce.Challenges) != fmt.Sprint(want) || fmt.Sprint(res.Challenges) != fmt.Sprint(want) {
		t.Errorf("outcomes %+v, want %+v", ce.Challenges, want)
	}
	if got := err.Error(); got != "challenge failed: bad.example.test: "+wantDetail {
		t.Errorf("message %q", got)
	}
	if s.cleanedUp != 1 {
		t.Errorf("solver cleaned up %d times after the failure, want once", s.cleanedUp)
	}
	if n := f.count("/finalize"); n != 0 {
		t.Errorf("finalize sent %d times after a failed authorization", n)
	}
}

func TestObtainOrderInvalidWhileProcessing(t *testing.T) {
	f := newOrderCA(t, "example.test")
	f.authz[0] = xacme.StatusValid
	f.answer["/finalize"] = func(w http.ResponseWriter, r *http.Request, n int) bool {
		f.orderStatus = xacme.StatusProcessing
		f.writeOrder(w)
		return true
	}
	f.answer["/order"] = func(w http.ResponseWriter, r *http.Request, n int) bool {
		if f.orderStatus != xacme.StatusProcessing {
			return false
		}
		f.writeOrderStatus(w, xacme.StatusInvalid, problemJSON("serverInternal", "signing failed: HSM unavailable"))
		return true
	}
	_, err := Obtain(obtainCtx(t, 30*time.Second), f.client(t), obtainRequest(t, f.ids...), &recordingSolver{}, nil)
	var ni *NotIssuedError
	if !errors.As(err, &ni) || ni.Status != xacme.StatusInvalid {
		t.Fatalf("error %v, want a NotIssuedError for an invalid order", err)
	}
	if want := "finalize order: serverInternal: signing failed: HSM unavailable: the order is invalid and the CA issued no certificate"; err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	var ae *xacme.Error
	if !errors.As(err, &ae) || ae.Detail != "signing failed: HSM unavailable" {
		t.Errorf("the order's problem is lost from the chain: %#v", err)
	}
	if n := f.count("/finalize"); n != 1 {
		t.Errorf("finalize sent %d times, want once", n)
	}
}

// processingOrder makes finalize leave the order processing, polled
// answers carrying Retry-After retryAfter, until poll number validAt
// (from 1) finds it valid; 0 never.
func processingOrder(f *orderCA, retryAfter string, validAt int) {
	f.answer["/finalize"] = func(w http.ResponseWriter, r *http.Request, n int) bool {
		f.orderStatus = xacme.StatusProcessing
		w.Header().Set("Retry-After", retryAfter)
		f.writeOrder(w)
		return true
	}
	polls := 0
	f.answer["/order"] = func(w http.ResponseWriter, r *http.Request, n int) bool {
		if f.orderStatus != xacme.StatusProcessing {
			return false
		}
		polls++
		if polls == validAt {
			f.orderStatus = xacme.StatusValid
		} else {
			w.Header().Set("Retry-After", retryAfter)
		}
		f.writeOrder(w)
		return true
	}
}

func TestObtainOrderPollingHonoursRetryAfter(t *testing.T) {
	f := newOrderCA(t, "example.test")
	f.authz[0] = xacme.StatusValid
	processingOrder(f, "2", 2)
	res, err := Obtain(obtainCtx(t, 30*time.Second), f.client(t), obtainRequest(t, f.ids...), &recordingSolver{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Chain) == 0 {
		t.Fatal("no chain")
	}
	f.mu.Lock()
	times := f.times["/order"]
	f.mu.Unlock()
	// x/crypto's newOrder reads the order from its answer: every read
	// is a poll after finalize.
	if len(times) != 2 {
		t.Fatalf("order polled %d times, want twice", len(times))
	}
	if gap := times[1].Sub(times[0]); gap < 1900*time.Millisecond {
		t.Errorf("second poll %s after the first, want the CA's Retry-After of 2s", gap)
	}
}

func TestObtainOrderPollingStopsAtTheDeadline(t *testing.T) {
	f := newOrderCA(t, "example.test")
	f.authz[0] = xacme.StatusValid
	// The CA asks for an hour; the caller gives 1.5 s.
	processingOrder(f, "3600", 0)
	start := time.Now()
	_, err := Obtain(obtainCtx(t, 1500*time.Millisecond), f.client(t), obtainRequest(t, f.ids...), &recordingSolver{}, nil)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Obtain returned after %s, past its 1.5 s deadline", d)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want the deadline", err)
	}
	// The CA took the CSR and may still issue: not a NotIssuedError.
	var ni *NotIssuedError
	if errors.As(err, &ni) {
		t.Errorf("error %v says nothing was issued; the order was still processing", err)
	}
	if n := f.count("/finalize"); n != 1 {
		t.Errorf("finalize sent %d times, want once", n)
	}
}

func TestObtainRetriesBadNonceOnce(t *testing.T) {
	for _, tc := range []struct {
		name     string
		replaces string // set: newOrder's own signed POST (ARI), not x/crypto's
		// sentNonce: the retry uses the nonce of the badNonce answer
		// (RFC 8555 section 6.5); x/crypto drops its nonces and fetches
		// a fresh one instead.
		sentNonce bool
	}{
		{"x/crypto's newOrder", "", false},
		{"signed POST with replaces", "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newOrderCA(t, "example.test")
			f.authz[0] = xacme.StatusValid
			var sent string
			f.answer["/new-order"] = func(w http.ResponseWriter, r *http.Request, n int) bool {
				if n > 1 {
					return false
				}
				sent = w.Header().Get("Replay-Nonce")
				writeProblem(w, http.StatusBadRequest, "badNonce", "JWS has an invalid anti-replay nonce")
				return true
			}
			req := obtainRequest(t, f.ids...)
			req.Replaces = tc.replaces
			if _, err := Obtain(obtainCtx(t, 30*time.Second), f.client(t), req, &recordingSolver{}, nil); err != nil {
				t.Fatal(err)
			}
			f.mu.Lock()
			nonces := f.nonces["/new-order"]
			f.mu.Unlock()
			if len(nonces) != 2 {
				t.Fatalf("newOrder POSTed %d times, want twice (one retry)", len(nonces))
			}
			if nonces[1] == "" || nonces[1] == nonces[0] {
				t.Errorf("the retry used nonce %q after %q was refused, want a fresh one", nonces[1], nonces[0])
			}
			if tc.sentNonce && nonces[1] != sent {
				t.Errorf("the retry used nonce %q, want %q from the badNonce answer", nonces[1], sent)
			}
		})
	}
}

func TestObtainRateLimitedIsNotRetried(t *testing.T) {
	for _, tc := range []struct {
		name     string
		replaces string
	}{
		{"x/crypto's newOrder", ""},
		{"signed POST with replaces", "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newOrderCA(t, "example.test")
			f.answer["/new-order"] = func(w http.ResponseWriter, r *http.Request, n int) bool {
				w.Header().Set("Retry-After", "3600")
				writeProblem(w, http.StatusTooManyRequests, "rateLimited", "too many new orders recently")
				return true
			}
			req := obtainRequest(t, f.ids...)
			req.Replaces = tc.replaces
			start := time.Now()
			_, err := Obtain(obtainCtx(t, 30*time.Second), f.client(t), req, &recordingSolver{}, nil)
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Obtain took %s: the rate limit was waited out or retried", d)
			}
			if n := f.count("/new-order"); n != 1 {
				t.Errorf("newOrder POSTed %d times, want once", n)
			}
			if d, ok := RateLimit(err); !ok || d != time.Hour {
				t.Errorf("RateLimit(%v) = %s, %v; want 1h0m0s, true", err, d, ok)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "create order: rateLimited: too many new orders recently (retry after ") {
				t.Errorf("message %q", msg)
			}
		})
	}
}

func TestObtainPreferredChain(t *testing.T) {
	for _, tc := range []struct {
		name, preferred, wantTop string
		alternateFetches         int
	}{
		{"alternate matches", "Root B", "Root B", 1},
		{"default matches", "Root A", "Root A", 0},
		{"none matches: default kept", "Root C", "Root A", 1},
		{"none asked", "", "Root A", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newOrderCA(t, "example.test")
			f.authz[0] = xacme.StatusValid
			f.chains["/cert/alt/1"] = testChain(t, "Root B")
			f.alternates = []string{"/cert/alt/1"}
			req := obtainRequest(t, f.ids...)
			req.PreferredChain = tc.preferred
			res, err := Obtain(obtainCtx(t, 30*time.Second), f.client(t), req, &recordingSolver{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := topIssuer(t, res.Chain); got != tc.wantTop {
				t.Errorf("chain's top issued by %q, want %q", got, tc.wantTop)
			}
			if n := f.count("/cert/alt/1"); n != tc.alternateFetches {
				t.Errorf("alternate chain fetched %d times, want %d", n, tc.alternateFetches)
			}
		})
	}
}

// cleanUpSignal closes started when its CleanUp begins and reports done
// once CleanUp has finished.
type cleanUpSignal struct {
	recordingSolver
	started chan struct{}
	done    bool
}

func (s *cleanUpSignal) CleanUp(ctx context.Context) error {
	close(s.started)
	time.Sleep(100 * time.Millisecond)
	s.mu.Lock()
	s.done = true
	s.mu.Unlock()
	return s.recordingSolver.CleanUp(ctx)
}

// The solver is cleaned up as soon as the CA has validated, while the
// order is finalized, and Obtain returns only once both are done.
func TestObtainCleansUpWhileFinalizing(t *testing.T) {
	f := newOrderCA(t, "example.test")
	s := &cleanUpSignal{started: make(chan struct{})}
	f.answer["/finalize"] = func(w http.ResponseWriter, r *http.Request, n int) bool {
		select {
		case <-s.started:
		case <-time.After(10 * time.Second):
			t.Error("finalize came before the solver's cleanup began")
		}
		return false
	}
	if _, err := Obtain(obtainCtx(t, 30*time.Second), f.client(t), obtainRequest(t, f.ids...), s, nil); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.done || s.cleanedUp != 1 {
		t.Errorf("Obtain returned with the cleanup done %v, %d cleanups; want done, once", s.done, s.cleanedUp)
	}
}
