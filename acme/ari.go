package acme

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	xacme "golang.org/x/crypto/acme"
)

// ACME Renewal Information (RFC 9773). golang.org/x/crypto/acme does not
// implement it yet; this file adds the GET of a certificate's renewal
// window, and newOrder (jws.go) the "replaces" field of a renewal order.

// ErrNoARI means the CA's directory has no renewalInfo endpoint.
var ErrNoARI = errors.New("the CA does not offer renewal information (ARI)")

// RenewalInfo is the CA's suggested renewal window for a certificate.
type RenewalInfo struct {
	Start, End     time.Time
	ExplanationURL string
	// RetryAfter is how long to wait before asking again: the Retry-After
	// header (delay-seconds or an HTTP date), kept between a minute and a
	// day, or DefaultARIRetry when the CA sent none (RFC 9773 §4.3).
	RetryAfter time.Duration
}

// Bounds of the wait before a certificate's renewal information is fetched
// again. RFC 9773 §4.3.2 asks clients to treat a Retry-After under a minute
// as a minute and one over a day as a day; §4.3.3 to retry after about six
// hours when the header is missing or invalid.
const (
	MinARIRetry     = time.Minute
	MaxARIRetry     = 24 * time.Hour
	DefaultARIRetry = 6 * time.Hour
)

// ParseRetryAfter reads a Retry-After header (RFC 9110 §10.2.3: a number
// of seconds or an HTTP date) relative to now and keeps it within
// [MinARIRetry, MaxARIRetry]; DefaultARIRetry if missing or malformed.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	var d time.Duration
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		d = time.Duration(s) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	} else {
		return DefaultARIRetry
	}
	return min(max(d, MinARIRetry), MaxARIRetry)
}

// RenewAt is the point in the window at which to renew the certificate
// with ARI identifier certID. RFC 9773 §4.2 asks for a uniformly random
// time inside the window, so that a CA's clients do not all come at its
// start. The point is drawn from a hash of the identifier and the window
// rather than a random source: a client that runs from cron (or a
// CronJob) and keeps no memory then picks the same point on every run,
// spread across certificates as a random draw would be, and a new window
// (the CA moved it) gives a new point.
func (ri *RenewalInfo) RenewAt(certID string) time.Time {
	span := ri.End.Sub(ri.Start)
	if span <= 0 {
		return ri.Start
	}
	h := sha256.Sum256([]byte(certID + "|" + ri.Start.UTC().Format(time.RFC3339) + "|" + ri.End.UTC().Format(time.RFC3339)))
	frac := float64(binary.BigEndian.Uint64(h[:8])>>11) / (1 << 53) // uniform in [0, 1)
	return ri.Start.Add(time.Duration(frac * float64(span)))
}

// CertID is a certificate's ARI identifier: the base64url authority key
// identifier and serial number, joined by a dot.
func CertID(leaf *x509.Certificate) (string, error) {
	if len(leaf.AuthorityKeyId) == 0 {
		return "", errors.New("certificate has no authority key identifier")
	}
	// The serial's DER content octets: the minimal two's complement form,
	// which asn1 produces (with a leading zero when the top bit is set).
	der, err := asn1.Marshal(leaf.SerialNumber)
	if err != nil {
		return "", err
	}
	var raw asn1.RawValue
	if _, err := asn1.Unmarshal(der, &raw); err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString(leaf.AuthorityKeyId) + "." + enc.EncodeToString(raw.Bytes), nil
}

// directoryExtras holds directory fields x/crypto/acme does not expose.
type directoryExtras struct {
	RenewalInfo string `json:"renewalInfo"`
}

// renewalInfoURLs caches each directory's renewalInfo endpoint, as the
// client caches the rest of the directory: a batch asks for the renewal
// window of every certificate it issued, and read the directory again
// for each. directoryTap fills it from the directory x/crypto/acme reads.
var renewalInfoURLs sync.Map // directory URL -> string

// renewalInfoURL returns the CA's renewalInfo endpoint, or ErrNoARI.
func renewalInfoURL(ctx context.Context, c *xacme.Client) (string, error) {
	if u, ok := renewalInfoURLs.Load(c.DirectoryURL); ok {
		if u == "" {
			return "", ErrNoARI
		}
		return u.(string), nil
	}
	var d directoryExtras
	if err := getJSON(ctx, c.HTTPClient, c.DirectoryURL, &d, nil); err != nil {
		return "", fmt.Errorf("read directory: %w", err)
	}
	renewalInfoURLs.Store(c.DirectoryURL, d.RenewalInfo)
	if d.RenewalInfo == "" {
		return "", ErrNoARI
	}
	return d.RenewalInfo, nil
}

// GetRenewalInfo fetches the CA's suggested renewal window for leaf.
func GetRenewalInfo(ctx context.Context, c *xacme.Client, leaf *x509.Certificate) (*RenewalInfo, error) {
	base, err := renewalInfoURL(ctx, c)
	if err != nil {
		return nil, err
	}
	id, err := CertID(leaf)
	if err != nil {
		return nil, err
	}
	var body struct {
		SuggestedWindow struct {
			Start time.Time `json:"start"`
			End   time.Time `json:"end"`
		} `json:"suggestedWindow"`
		ExplanationURL string `json:"explanationURL"`
	}
	var h http.Header
	if err := getJSON(ctx, c.HTTPClient, trimSlash(base)+"/"+id, &body, &h); err != nil {
		return nil, fmt.Errorf("get renewal info: %w", err)
	}
	// Whole seconds: the window is stored at that precision (RFC 3339 in
	// the Certificate's status), and RenewAt must pick the same point from
	// the stored window as from a fresh one.
	ri := &RenewalInfo{Start: body.SuggestedWindow.Start.Truncate(time.Second), End: body.SuggestedWindow.End.Truncate(time.Second), ExplanationURL: body.ExplanationURL}
	ri.RetryAfter = ParseRetryAfter(h.Get("Retry-After"), time.Now())
	if ri.Start.IsZero() || ri.End.Before(ri.Start) {
		return nil, fmt.Errorf("get renewal info: the CA sent an invalid window %v..%v", ri.Start, ri.End)
	}
	return ri, nil
}

func trimSlash(s string) string {
	for len(s) > 0 && s[len(s)-1] == '/' {
		s = s[:len(s)-1]
	}
	return s
}

// directoryTap reads, from the directory x/crypto/acme fetches, the
// field its Directory type leaves out (renewalInfo, RFC 9773), so that
// an issuance reads the directory once, not once more for ARI.
type directoryTap struct {
	rt http.RoundTripper
	// dir is the directory URL as the client has it; parsed, as the
	// request's URL is.
	dir, parsed string
}

func newDirectoryTap(rt http.RoundTripper, dir string) http.RoundTripper {
	u, err := url.Parse(dir)
	if err != nil {
		return rt
	}
	return &directoryTap{rt: rt, dir: dir, parsed: u.String()}
}

func (t *directoryTap) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := t.rt.RoundTrip(req)
	if err != nil || req.Method != http.MethodGet || req.URL.String() != t.parsed || res.StatusCode != http.StatusOK {
		return res, err
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	var d directoryExtras
	if json.Unmarshal(body, &d) == nil {
		renewalInfoURLs.Store(t.dir, d.RenewalInfo)
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	return res, nil
}

func getJSON(ctx context.Context, hc *http.Client, url string, v any, hdr *http.Header) error {
	if hc == nil {
		hc = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return problem(res)
	}
	if hdr != nil {
		*hdr = res.Header
	}
	return json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(v)
}

// problem reads an RFC 7807 problem document into an *xacme.Error, as a
// *Problem, so callers can use errors.As and RateLimit as with x/crypto's
// errors.
func problem(res *http.Response) error {
	e := &xacme.Error{StatusCode: res.StatusCode, Header: res.Header}
	var doc struct {
		Type   string `json:"type"`
		Detail string `json:"detail"`
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&doc); err == nil {
		e.ProblemType, e.Detail = doc.Type, doc.Detail
	}
	if e.Detail == "" {
		e.Detail = res.Status
	}
	return &Problem{Err: e}
}
