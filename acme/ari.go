package acme

import (
	"context"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
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
	// RetryAfter is when to ask again, from the Retry-After header.
	RetryAfter time.Duration
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

// renewalInfoURL returns the CA's renewalInfo endpoint, or ErrNoARI.
func renewalInfoURL(ctx context.Context, c *xacme.Client) (string, error) {
	var d directoryExtras
	if err := getJSON(ctx, c.HTTPClient, c.DirectoryURL, &d, nil); err != nil {
		return "", fmt.Errorf("read directory: %w", err)
	}
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
	ri := &RenewalInfo{Start: body.SuggestedWindow.Start, End: body.SuggestedWindow.End, ExplanationURL: body.ExplanationURL}
	if s, err := strconv.Atoi(h.Get("Retry-After")); err == nil {
		ri.RetryAfter = time.Duration(s) * time.Second
	}
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
