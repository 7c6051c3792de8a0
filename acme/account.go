package acme

import (
	"context"
	"errors"
	"fmt"

	xacme "golang.org/x/crypto/acme"
)

// ErrTermsNotAgreed is returned when the CA has terms of service and the
// caller did not agree to them.
var ErrTermsNotAgreed = errors.New("the CA's terms of service were not agreed to")

// Register finds the account for the client's key or registers a new one.
// agree is asked only when a new account must be created.
// eab binds the new account to an account at the CA (RFC 8555 section
// 7.3.4) when the CA requires it; nil otherwise.
func Register(ctx context.Context, c *xacme.Client, email string, eab *xacme.ExternalAccountBinding, agree func(tosURL string) bool) (*xacme.Account, error) {
	// An existing key keeps its account: look it up first so a re-run never
	// creates a second account or asks about the terms again.
	acct, err := c.GetReg(ctx, "")
	if err == nil {
		return acct, nil
	}
	if !errors.Is(err, xacme.ErrNoAccount) {
		return nil, fmt.Errorf("look up ACME account: %w", Explain(err))
	}
	a := &xacme.Account{ExternalAccountBinding: eab}
	if email != "" {
		a.Contact = []string{"mailto:" + email}
	}
	refused := false
	acct, err = c.Register(ctx, a, func(tos string) bool {
		ok := agree(tos)
		refused = !ok
		return ok
	})
	if refused {
		return nil, ErrTermsNotAgreed
	}
	if errors.Is(err, xacme.ErrAccountAlreadyExists) {
		if acct, err = c.GetReg(ctx, ""); err != nil {
			return nil, fmt.Errorf("look up ACME account: %w", Explain(err))
		}
		return acct, nil
	}
	if isProblem(err, "externalAccountRequired") {
		return nil, fmt.Errorf("register ACME account: the CA requires External Account Binding: give the key ID and HMAC key your CA issued (--eab-kid, --eab-hmac-key): %w", Explain(err))
	}
	if err != nil {
		return nil, fmt.Errorf("register ACME account: %w", Explain(err))
	}
	return acct, nil
}
