package acme

import (
	"errors"
	"fmt"
	"strings"
	"time"

	xacme "golang.org/x/crypto/acme"
)

// Problem is an ACME problem document (RFC 8555 section 6.7) as people read
// it: "type: detail", without the urn:ietf:params:acme:error: prefix and
// the HTTP status, with the subproblems and, for a rate limit, when to
// retry. Unwrap returns the *xacme.Error, so errors.As, RateLimit and
// x/crypto's own helpers still see the CA's answer.
type Problem struct {
	Err *xacme.Error
}

func (p *Problem) Error() string { return problemText(p.Err) }

// Unwrap returns the CA's problem as x/crypto/acme decoded it.
func (p *Problem) Unwrap() error { return p.Err }

// Explain returns err as a *Problem when it is an *xacme.Error, and err
// unchanged otherwise. Every error of an x/crypto/acme call goes through it
// before it is wrapped with context, so messages read well all the way up
// and the chain is kept.
func Explain(err error) error {
	var e *xacme.Error
	if errors.As(err, &e) && err == error(e) {
		return &Problem{Err: e}
	}
	return err
}

// RateLimit reports whether err holds a rateLimited problem and how long
// the CA asks to wait (zero when it does not say). It looks through the
// chain: xacme.RateLimit needs the *xacme.Error itself.
func RateLimit(err error) (time.Duration, bool) {
	var e *xacme.Error
	if !errors.As(err, &e) {
		return 0, false
	}
	return xacme.RateLimit(e)
}

func problemText(e *xacme.Error) string {
	s := strings.TrimPrefix(e.ProblemType, problemPrefix)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	for _, sp := range e.Subproblems {
		s += "; " + sp.Identifier.Value + ": " + strings.TrimPrefix(sp.Type, problemPrefix) + ": " + sp.Detail
	}
	if d, ok := xacme.RateLimit(e); ok && d > 0 {
		s += fmt.Sprintf(" (retry after %s)", time.Now().Add(d).UTC().Format(time.RFC3339))
	}
	return s
}

const problemPrefix = "urn:ietf:params:acme:error:"

// isProblem reports whether err is the ACME problem of the given type
// (without the urn:ietf:params:acme:error: prefix).
func isProblem(err error, typ string) bool {
	var e *xacme.Error
	return errors.As(err, &e) && e.ProblemType == problemPrefix+typ
}
