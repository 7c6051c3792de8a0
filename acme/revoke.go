package acme

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	xacme "golang.org/x/crypto/acme"
)

// ErrAlreadyRevoked is the CA's alreadyRevoked answer to a revocation (RFC
// 8555 section 7.6): the certificate was revoked before, by this request's
// sender or anyone else, and this request changed nothing.
var ErrAlreadyRevoked = errors.New("the certificate was already revoked")

// revokeAttempts bounds Revoke's tries on a 5xx answer.
const revokeAttempts = 3

// Revoke revokes the DER certificate cert with the account key of c.
//
// It is a signed POST of our own rather than x/crypto/acme's RevokeCert,
// which reports alreadyRevoked as success (rfc8555.go, isAlreadyRevoked):
// a second revocation would then look like a fresh one. A 5xx answer is
// retried a few times; alreadyRevoked after such a retry means the earlier
// try went through, and counts as this revocation.
func Revoke(ctx context.Context, c *xacme.Client, cert []byte, reason xacme.CRLReasonCode) error {
	dir, err := c.Discover(ctx)
	if err != nil {
		return err
	}
	if dir.RevokeURL == "" {
		return errors.New("the CA's directory has no revokeCert URL")
	}
	if c.KID == "" {
		acct, err := c.GetReg(ctx, "")
		if err != nil {
			return fmt.Errorf("look up account: %w", err)
		}
		c.KID = xacme.KeyID(acct.URI)
	}
	payload, err := json.Marshal(struct {
		Certificate string `json:"certificate"`
		Reason      int    `json:"reason"`
	}{base64.RawURLEncoding.EncodeToString(cert), int(reason)})
	if err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		res, err := signedPost(ctx, c, dir, dir.RevokeURL, payload)
		if err == nil {
			res.Body.Close()
			return nil
		}
		if isProblem(err, "alreadyRevoked") {
			if attempt > 1 {
				return nil
			}
			return fmt.Errorf("%w: %w", ErrAlreadyRevoked, err)
		}
		var ae *xacme.Error
		if !errors.As(err, &ae) || ae.StatusCode < 500 || attempt == revokeAttempts {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt) * 500 * time.Millisecond):
		}
	}
}
