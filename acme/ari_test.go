package acme

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	xacme "golang.org/x/crypto/acme"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"3600", time.Hour},
		{"0", MinARIRetry},        // under a minute counts as a minute
		{"30", MinARIRetry},       // likewise
		{"172800", MaxARIRetry},   // over a day counts as a day
		{"", DefaultARIRetry},     // missing
		{"soon", DefaultARIRetry}, // malformed
		{"-5", DefaultARIRetry},   // not delay-seconds
		{now.Add(2 * time.Hour).Format(http.TimeFormat), 2 * time.Hour},
		{now.Add(-time.Hour).Format(http.TimeFormat), MinARIRetry}, // a date in the past
		{now.Add(72 * time.Hour).Format(http.TimeFormat), MaxARIRetry},
		{"Tue, 01 Dec 2026 15:00:00 GMT", 3 * time.Hour},
	} {
		if got := ParseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("ParseRetryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestRenewAtIsStableInsideTheWindowAndSpread(t *testing.T) {
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	ri := &RenewalInfo{Start: start, End: start.Add(48 * time.Hour)}
	const n = 2000
	var buckets [4]int
	for i := range n {
		id := "aki." + string(rune('A'+i%26)) + time.Duration(i).String()
		at := ri.RenewAt(id)
		if at.Before(ri.Start) || !at.Before(ri.End) {
			t.Fatalf("RenewAt(%q) = %v outside [%v, %v)", id, at, ri.Start, ri.End)
		}
		// The same window read back from storage gives the same point.
		again := (&RenewalInfo{Start: ri.Start.Local(), End: ri.End.Local()}).RenewAt(id)
		if !again.Equal(at) {
			t.Fatalf("RenewAt(%q) not stable: %v then %v", id, at, again)
		}
		buckets[int(at.Sub(ri.Start)*4/ri.End.Sub(ri.Start))]++
	}
	// Uniform: each quarter of the window gets about n/4 (±20%).
	for q, c := range buckets {
		if c < n/4*8/10 || c > n/4*12/10 {
			t.Errorf("quarter %d of the window got %d of %d points: %v", q, c, n, buckets)
		}
	}
	// A window of no length is its start.
	empty := &RenewalInfo{Start: start, End: start}
	if got := empty.RenewAt("x.y"); !got.Equal(start) {
		t.Errorf("empty window: %v, want %v", got, start)
	}
}

func TestGetRenewalInfoRetryAfterDate(t *testing.T) {
	var srv *httptest.Server
	retryAt := time.Now().Add(3 * time.Hour).UTC().Truncate(time.Second)
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/dir":
			w.Write([]byte(`{"renewalInfo": "` + srv.URL + `/ari/"}`))
		default:
			w.Header().Set("Retry-After", retryAt.Format(http.TimeFormat))
			w.Write([]byte(`{"suggestedWindow": {"start": "2026-12-01T00:00:00.5Z", "end": "2026-12-03T00:00:00Z"}}`))
		}
	}))
	defer srv.Close()
	c := &xacme.Client{DirectoryURL: srv.URL + "/dir", HTTPClient: srv.Client()}
	ri, err := GetRenewalInfo(context.Background(), c, &x509.Certificate{AuthorityKeyId: []byte{1, 2, 3}, SerialNumber: big.NewInt(255)})
	if err != nil {
		t.Fatal(err)
	}
	if d := ri.RetryAfter - 3*time.Hour; d < -5*time.Second || d > time.Second {
		t.Errorf("RetryAfter = %v, want about 3h", ri.RetryAfter)
	}
	if want := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC); !ri.Start.Equal(want) {
		t.Errorf("Start = %v, want %v (whole seconds)", ri.Start, want)
	}
}

// The directory the client reads for its orders also gives the ARI
// endpoint: GetRenewalInfo reads the directory no second time.
func TestRenewalInfoURLFromTheClientsDirectory(t *testing.T) {
	var srv *httptest.Server
	var dirReads atomic.Int32
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/dir":
			dirReads.Add(1)
			w.Write([]byte(`{"newNonce": "` + srv.URL + `/nonce", "newOrder": "` + srv.URL + `/new-order", "renewalInfo": "` + srv.URL + `/ari/"}`))
		default:
			w.Write([]byte(`{"suggestedWindow": {"start": "2026-12-01T00:00:00Z", "end": "2026-12-03T00:00:00Z"}}`))
		}
	}))
	defer srv.Close()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(ClientConfig{DirectoryURL: srv.URL + "/dir"}, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Discover(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := GetRenewalInfo(t.Context(), c, &x509.Certificate{AuthorityKeyId: []byte{1, 2, 3}, SerialNumber: big.NewInt(255)}); err != nil {
		t.Fatal(err)
	}
	if n := dirReads.Load(); n != 1 {
		t.Errorf("directory read %d times, want once", n)
	}
}
