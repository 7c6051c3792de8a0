package acme

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"time"

	xacme "golang.org/x/crypto/acme"
)

// OrderOptions are what newOrder adds to x/crypto/acme's AuthorizeOrder.
type OrderOptions struct {
	Profile  string
	NotAfter time.Time
	// Replaces is the ARI CertID of the certificate this order renews.
	Replaces string
}

// newOrder creates an order. Without Replaces it is x/crypto's
// AuthorizeOrder; with it, a signed POST of our own, since x/crypto/acme
// cannot send the "replaces" field yet.
func newOrder(ctx context.Context, c *xacme.Client, ids []xacme.AuthzID, o OrderOptions) (*xacme.Order, error) {
	if err := CheckProfile(ctx, c, o.Profile); err != nil {
		return nil, err
	}
	if o.Replaces == "" {
		var opts []xacme.OrderOption
		if o.Profile != "" {
			opts = append(opts, xacme.WithOrderIssuanceProfile(xacme.ProfileName(o.Profile)))
		}
		if !o.NotAfter.IsZero() {
			opts = append(opts, xacme.WithOrderNotAfter(o.NotAfter))
		}
		o, err := c.AuthorizeOrder(ctx, ids, opts...)
		return o, Explain(err)
	}
	dir, err := c.Discover(ctx)
	if err != nil {
		return nil, fmt.Errorf("read directory: %w", Explain(err))
	}
	if c.KID == "" {
		acct, err := c.GetReg(ctx, "")
		if err != nil {
			return nil, fmt.Errorf("look up account: %w", Explain(err))
		}
		c.KID = xacme.KeyID(acct.URI)
	}
	type wireID struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	}
	req := struct {
		Identifiers []wireID `json:"identifiers"`
		NotAfter    string   `json:"notAfter,omitempty"`
		Profile     string   `json:"profile,omitempty"`
		Replaces    string   `json:"replaces"`
	}{Profile: o.Profile, Replaces: o.Replaces}
	for _, id := range ids {
		req.Identifiers = append(req.Identifiers, wireID{id.Type, id.Value})
	}
	if !o.NotAfter.IsZero() {
		req.NotAfter = o.NotAfter.UTC().Format(time.RFC3339)
	}
	payload, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	res, err := signedPost(ctx, c, dir, dir.OrderURL, payload)
	if err != nil {
		return nil, Explain(err)
	}
	defer res.Body.Close()
	loc := res.Header.Get("Location")
	if loc == "" {
		return nil, errors.New("the CA sent no order URL")
	}
	order, err := c.GetOrder(ctx, loc)
	if err != nil {
		return nil, fmt.Errorf("get order: %w", Explain(err))
	}
	return order, nil
}

// signedPost sends one JWS-signed POST with the account's key ID,
// retrying on badNonce with the fresh nonce the CA sent, as RFC 8555
// section 6.5 asks, up to maxBadNonceRetries times.
func signedPost(ctx context.Context, c *xacme.Client, dir xacme.Directory, url string, payload []byte) (*http.Response, error) {
	nonce, err := fetchNonce(ctx, c.HTTPClient, dir.NonceURL)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		body, err := jwsEncode(c.Key, string(c.KID), nonce, url, payload)
		if err != nil {
			return nil, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/jose+json")
		if c.UserAgent != "" {
			req.Header.Set("User-Agent", c.UserAgent)
		}
		res, err := c.HTTPClient.Do(req)
		if err != nil {
			return nil, err
		}
		if res.StatusCode < 300 {
			return res, nil
		}
		perr := problem(res)
		res.Body.Close()
		if attempt < maxBadNonceRetries && isProblem(perr, "badNonce") {
			if nonce = res.Header.Get("Replay-Nonce"); nonce != "" {
				continue
			}
		}
		return nil, perr
	}
}

func fetchNonce(ctx context.Context, hc *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, url, nil)
	if err != nil {
		return "", err
	}
	res, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("get nonce: %w", err)
	}
	res.Body.Close()
	n := res.Header.Get("Replay-Nonce")
	if n == "" {
		return "", errors.New("get nonce: the CA sent no Replay-Nonce")
	}
	return n, nil
}

// jwsEncode builds a flattened JWS (RFC 7515) signed with key, as RFC 8555
// section 6.2 requires: ES256/ES384 for ECDSA keys, RS256 for RSA.
func jwsEncode(key crypto.Signer, kid, nonce, url string, payload []byte) ([]byte, error) {
	var alg string
	var hash crypto.Hash
	switch k := key.Public().(type) {
	case *rsa.PublicKey:
		alg, hash = "RS256", crypto.SHA256
	case *ecdsa.PublicKey:
		switch k.Curve.Params().BitSize {
		case 256:
			alg, hash = "ES256", crypto.SHA256
		case 384:
			alg, hash = "ES384", crypto.SHA384
		default:
			return nil, fmt.Errorf("unsupported account key curve %s", k.Curve.Params().Name)
		}
	default:
		return nil, fmt.Errorf("unsupported account key type %T", k)
	}
	protected, err := json.Marshal(map[string]string{"alg": alg, "kid": kid, "nonce": nonce, "url": url})
	if err != nil {
		return nil, err
	}
	enc := base64.RawURLEncoding
	p64, b64 := enc.EncodeToString(protected), enc.EncodeToString(payload)
	var digest []byte
	if hash == crypto.SHA256 {
		d := sha256.Sum256([]byte(p64 + "." + b64))
		digest = d[:]
	} else {
		d := sha512.Sum384([]byte(p64 + "." + b64))
		digest = d[:]
	}
	sig, err := key.Sign(rand.Reader, digest, hash)
	if err != nil {
		return nil, err
	}
	if ek, ok := key.Public().(*ecdsa.PublicKey); ok {
		// JWS wants r||s, each the curve's size; Sign returns ASN.1.
		if sig, err = rawECDSA(sig, (ek.Curve.Params().BitSize+7)/8); err != nil {
			return nil, err
		}
	}
	return json.Marshal(map[string]string{"protected": p64, "payload": b64, "signature": enc.EncodeToString(sig)})
}

func rawECDSA(asn1Sig []byte, size int) ([]byte, error) {
	var rs struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(asn1Sig, &rs); err != nil {
		return nil, fmt.Errorf("parse ECDSA signature: %w", err)
	}
	out := make([]byte, 2*size)
	rs.R.FillBytes(out[:size])
	rs.S.FillBytes(out[size:])
	return out, nil
}
