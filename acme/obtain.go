package acme

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	xacme "golang.org/x/crypto/acme"
)

// Challenge is an HTTP-01 challenge to make reachable at
// http://<Identifier>/.well-known/acme-challenge/<Token>.
type Challenge struct {
	Identifier       string
	IsIP             bool
	Token            string
	KeyAuthorization string
}

// Solver answers HTTP-01 challenges. Present returns once every challenge
// is reachable (or fails saying why); CleanUp removes all it made and must
// work after a cancelled Present.
type Solver interface {
	Present(ctx context.Context, chals []Challenge) error
	CleanUp(ctx context.Context) error
}

// Unneeded is a Solver that other orders share: Obtain calls NotNeeded
// when the order has no challenge for it (every authorization was valid
// already), so the shared solver starts without waiting for this order's
// challenges.
type Unneeded interface {
	NotNeeded()
}

// Event is a step of an order, for progress output.
type Event struct {
	Identifier string // empty for order-wide events
	State      string
	Detail     string
}

// Observer receives events; it must not block.
type Observer func(Event)

// Order and challenge states, reported through Observer and kept in the
// Certificate's status.lastOrder (state) and its challenges. They are
// RFC 8555's lowercase words (pending, valid, invalid) plus the steps in
// between, and "errored" for a failure on this side (the solver could not
// present, a request to the CA failed), as cert-manager's
// acme.cert-manager.io/v1 Order and Challenge states say "errored"; the
// CA's own verdict is "invalid". A Certificate's one-word state in
// `status` (Ready, Failed, ...) is certmanager.State, a separate,
// capitalised vocabulary like a Pod's phase.
const (
	StatePending    = "pending"
	StatePresenting = "presenting"
	StateValidating = "validating"
	StateValid      = "valid"
	StateInvalid    = "invalid"
	StateFinalizing = "finalizing"
	StateIssued     = "issued"
	StateErrored    = "errored"
)

// Request is what to order.
type Request struct {
	DNSNames       []string
	IPAddresses    []string
	CommonName     string
	Key            crypto.Signer // the certificate's private key
	Profile        string
	PreferredChain string
	NotAfter       time.Time
	// Replaces is the ARI CertID of the certificate being renewed.
	Replaces string
	// KeyUsage and ExtKeyUsage, when set, are asked for in the CSR's
	// extension request (RFC 2986 extensionRequest), as cert-manager
	// does with a Certificate's usages; the CA may ignore them.
	KeyUsage    x509.KeyUsage
	ExtKeyUsage []x509.ExtKeyUsage
	// BeforeFinalize, when set, runs just before the CSR is sent, with the
	// order's URL: from then on the CA may issue for Key. An error stops
	// the order there.
	BeforeFinalize func(orderURL string) error
}

// Result is an issued certificate and what happened on the way.
type Result struct {
	Chain      [][]byte // DER, leaf first
	OrderURL   string
	Challenges []ChallengeOutcome
}

// ChainPEM returns the chain PEM-encoded, leaf first.
func (r *Result) ChainPEM() []byte {
	var b bytes.Buffer
	for _, der := range r.Chain {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	return b.Bytes()
}

// ChallengeOutcome is one authorization's outcome, as Result and
// ChallengeError report it.
type ChallengeOutcome struct {
	Identifier string
	Type       string
	State      string
	Detail     string
}

// ChallengeError is an order whose authorizations failed; Challenges says
// which and why.
type ChallengeError struct {
	Challenges []ChallengeOutcome
}

func (e *ChallengeError) Error() string {
	var parts []string
	for _, c := range e.Challenges {
		if c.State == StateInvalid || c.State == StateErrored {
			parts = append(parts, fmt.Sprintf("%s: %s", c.Identifier, c.Detail))
		}
	}
	return "challenge failed: " + strings.Join(parts, "; ")
}

// cleanupTimeout bounds solver cleanup, which runs even after the command's
// context is cancelled (Ctrl-C, timeout).
const cleanupTimeout = 30 * time.Second

// Obtain orders a certificate, answers its HTTP-01 challenges with s,
// finalizes with req.Key and returns the chain. Solver objects are always
// cleaned up, also when ctx is cancelled.
func Obtain(ctx context.Context, c *xacme.Client, req Request, s Solver, observe Observer) (res *Result, err error) {
	if observe == nil {
		observe = func(Event) {}
	}
	ids := make([]xacme.AuthzID, 0, len(req.DNSNames)+len(req.IPAddresses))
	for _, d := range req.DNSNames {
		ids = append(ids, xacme.AuthzID{Type: "dns", Value: d})
	}
	for _, ip := range req.IPAddresses {
		ids = append(ids, xacme.AuthzID{Type: "ip", Value: ip})
	}
	order, err := newOrder(ctx, c, ids, OrderOptions{Profile: req.Profile, NotAfter: req.NotAfter, Replaces: req.Replaces})
	if err != nil {
		return nil, fmt.Errorf("create order: %w", err)
	}
	res = &Result{OrderURL: order.URI}
	observe(Event{State: StatePending, Detail: "order " + order.URI})

	var pending []Challenge
	var chalURLs []*xacme.Challenge
	var authzURLs []string
	for _, u := range order.AuthzURLs {
		z, err := c.GetAuthorization(ctx, u)
		if err != nil {
			return res, fmt.Errorf("get authorization: %w", Explain(err))
		}
		id := z.Identifier.Value
		if z.Status == xacme.StatusValid {
			res.Challenges = append(res.Challenges, ChallengeOutcome{Identifier: id, Type: "http-01", State: StateValid, Detail: "authorization reused"})
			observe(Event{Identifier: id, State: StateValid, Detail: "authorization reused"})
			continue
		}
		var chal *xacme.Challenge
		for _, ch := range z.Challenges {
			if ch.Type == "http-01" {
				chal = ch
			}
		}
		if chal == nil {
			return res, fmt.Errorf("%s: the CA offers no http-01 challenge (offered: %s)", id, challengeTypes(z))
		}
		ka, err := c.HTTP01ChallengeResponse(chal.Token)
		if err != nil {
			return res, fmt.Errorf("%s: key authorization: %w", id, err)
		}
		pending = append(pending, Challenge{Identifier: id, IsIP: z.Identifier.Type == "ip", Token: chal.Token, KeyAuthorization: ka})
		chalURLs = append(chalURLs, chal)
		authzURLs = append(authzURLs, u)
		res.Challenges = append(res.Challenges, ChallengeOutcome{Identifier: id, Type: "http-01", State: StatePending})
	}

	if u, ok := s.(Unneeded); ok && len(pending) == 0 {
		u.NotNeeded()
	}
	if len(pending) > 0 {
		// The solver is done once the CA has validated: it is cleaned up
		// while the CA signs, and Obtain returns when both are done,
		// whatever happened (a Ctrl-C included: the cleanup's context
		// does not end with ctx).
		cleaned := make(chan error, 1)
		cleanUp := sync.OnceFunc(func() {
			go func() {
				cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
				defer cancel()
				cleaned <- s.CleanUp(cctx)
			}()
		})
		defer func() {
			cleanUp()
			if cerr := <-cleaned; cerr != nil {
				err = errors.Join(err, fmt.Errorf("clean up solver: %w", cerr))
			}
		}()
		for _, p := range pending {
			observe(Event{Identifier: p.Identifier, State: StatePresenting})
		}
		if err := s.Present(ctx, pending); err != nil {
			setStates(res, pending, StateErrored, err.Error())
			return res, err
		}
		err := validate(ctx, c, res, pending, chalURLs, authzURLs, observe)
		cleanUp()
		if err != nil {
			return res, err
		}
	}

	observe(Event{State: StateFinalizing})
	csr, err := certRequest(req)
	if err != nil {
		return res, err
	}
	if req.BeforeFinalize != nil {
		if err := req.BeforeFinalize(order.URI); err != nil {
			return res, err
		}
	}
	// Every authorization is valid, so the order is ready: finalize at
	// once, and wait for the order only if the CA says it is not ready yet.
	// CreateCertFromOrder, not CreateOrderCert: some CAs (Pebble) answer
	// finalize without the Location header CreateOrderCert relies on.
	// A 5xx answer to finalize is not retried (see withoutRetry); the
	// order's state afterwards says what happened.
	fctx := withoutRetry(ctx, order.FinalizeURL)
	chain, certURL, err := c.CreateCertFromOrder(fctx, order, csr, true)
	if isProblem(err, "orderNotReady") {
		if order, err = c.WaitOrder(ctx, order.URI); err != nil {
			return res, fmt.Errorf("wait for order: %w", Explain(err))
		}
		chain, certURL, err = c.CreateCertFromOrder(fctx, order, csr, true)
	}
	if err != nil {
		return res, finalizeFailed(ctx, c, order.URI, !req.NotAfter.IsZero(), err)
	}
	if req.PreferredChain != "" {
		if alt, err := preferredChain(ctx, c, certURL, chain, req.PreferredChain); err != nil {
			return res, err
		} else if alt != nil {
			chain = alt
		}
	}
	res.Chain = chain
	observe(Event{State: StateIssued, Detail: certURL})
	return res, nil
}

// NotIssuedError is a finalize that ended with no certificate: the CA
// refused it (the order is still ready) or the order became invalid. No
// certificate exists for the request's key, so there is nothing to collect
// later, and a rerun with the same request meets the same answer.
type NotIssuedError struct {
	OrderURL string
	// Status is the order's status after finalize: ready (or pending) when
	// the CA refused the request, invalid when it failed the order.
	Status string
	// Err is the CA's answer to finalize, or the order's problem.
	Err error
	// NotAfterAsked: the order asked for a notAfter, the usual cause of
	// a refusal by a CA with a maximum lifetime (step-ca's is 24 h).
	NotAfterAsked bool
}

func (e *NotIssuedError) Error() string {
	s := fmt.Sprintf("finalize order: %s: the order is %s and the CA issued no certificate", e.Err, e.Status)
	if e.NotAfterAsked && e.Status != xacme.StatusInvalid {
		s += "; a requested lifetime (notAfter) above the CA's maximum is the usual cause of this refusal"
	}
	return s
}

func (e *NotIssuedError) Unwrap() error { return e.Err }

// orderCheckTimeout bounds the look at an order after a failed finalize.
const orderCheckTimeout = 15 * time.Second

// finalizeFailed says what a failed finalize left: a NotIssuedError when
// the order shows that nothing was issued, else err as it was, since the
// CA may then still issue (the answer was lost, or it is processing).
func finalizeFailed(ctx context.Context, c *xacme.Client, orderURL string, notAfter bool, err error) error {
	var oe *xacme.OrderError
	if errors.As(err, &oe) && oe.Status == xacme.StatusInvalid {
		var cause error = oe
		if oe.Problem != nil {
			cause = Explain(oe.Problem)
		}
		return &NotIssuedError{OrderURL: orderURL, Status: oe.Status, Err: cause, NotAfterAsked: notAfter}
	}
	var ae *xacme.Error
	if !errors.As(err, &ae) || ctx.Err() != nil {
		return fmt.Errorf("finalize order: %w", Explain(err))
	}
	// The CA answered with a problem: it did not take the CSR, unless the
	// order says otherwise.
	gctx, cancel := context.WithTimeout(ctx, orderCheckTimeout)
	defer cancel()
	o, gerr := c.GetOrder(gctx, orderURL)
	if gerr != nil {
		return fmt.Errorf("finalize order: %w (and reading the order afterwards failed: %v)", Explain(err), Explain(gerr))
	}
	switch o.Status {
	case xacme.StatusReady, xacme.StatusPending, xacme.StatusInvalid:
		return &NotIssuedError{OrderURL: orderURL, Status: o.Status, Err: Explain(err), NotAfterAsked: notAfter}
	}
	return fmt.Errorf("finalize order: %w (the order is %s)", Explain(err), o.Status)
}

// validate tells the CA to check every challenge and waits for all of them,
// so one failure reports every identifier's outcome.
func validate(ctx context.Context, c *xacme.Client, res *Result, pending []Challenge, chals []*xacme.Challenge, authzURLs []string, observe Observer) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i := range pending {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			p := pending[i]
			state, detail := StateValid, ""
			observe(Event{Identifier: p.Identifier, State: StateValidating, Detail: "CA is checking"})
			if _, err := c.Accept(ctx, chals[i]); err != nil {
				state, detail = StateErrored, "accept challenge: "+Explain(err).Error()
			} else if _, err := c.WaitAuthorization(ctx, authzURLs[i]); err != nil {
				state, detail = StateInvalid, authzFailure(ctx, c, authzURLs[i], err)
			}
			observe(Event{Identifier: p.Identifier, State: state, Detail: detail})
			mu.Lock()
			defer mu.Unlock()
			setState(res, p.Identifier, state, detail)
			if state != StateValid && firstErr == nil {
				firstErr = &ChallengeError{}
			}
		}(i)
	}
	wg.Wait()
	if firstErr == nil {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("waiting for the CA's validation: %w", err)
	}
	return &ChallengeError{Challenges: res.Challenges}
}

// authzFailure explains a failed authorization with the CA's problem
// document for the challenge (e.g. the 404 its validator saw).
func authzFailure(ctx context.Context, c *xacme.Client, url string, err error) string {
	if ctx.Err() != nil {
		return ctx.Err().Error()
	}
	var ae *xacme.AuthorizationError
	if errors.As(err, &ae) {
		if z, gerr := c.GetAuthorization(ctx, url); gerr == nil {
			for _, ch := range z.Challenges {
				if ch.Type == "http-01" && ch.Error != nil {
					return Explain(ch.Error).Error()
				}
			}
		}
	}
	return Explain(err).Error()
}

func setState(res *Result, id, state, detail string) {
	for i := range res.Challenges {
		if res.Challenges[i].Identifier == id {
			res.Challenges[i].State, res.Challenges[i].Detail = state, detail
		}
	}
}

func setStates(res *Result, pending []Challenge, state, detail string) {
	for _, p := range pending {
		setState(res, p.Identifier, state, detail)
	}
}

func challengeTypes(z *xacme.Authorization) string {
	var t []string
	for _, ch := range z.Challenges {
		t = append(t, ch.Type)
	}
	return strings.Join(t, ", ")
}

func certRequest(req Request) ([]byte, error) {
	tmpl := &x509.CertificateRequest{DNSNames: req.DNSNames, Subject: pkix.Name{CommonName: req.CommonName}}
	for _, s := range req.IPAddresses {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(s))
	}
	exts, err := usageExtensions(req.KeyUsage, req.ExtKeyUsage)
	if err != nil {
		return nil, err
	}
	tmpl.ExtraExtensions = exts
	csr, err := x509.CreateCertificateRequest(rand.Reader, tmpl, req.Key)
	if err != nil {
		return nil, fmt.Errorf("create CSR: %w", err)
	}
	return csr, nil
}

// preferredChain returns the alternate chain whose topmost certificate was
// issued by a CA with common name want, or nil to keep the default chain.
func preferredChain(ctx context.Context, c *xacme.Client, certURL string, def [][]byte, want string) ([][]byte, error) {
	if chainIssuedBy(def, want) {
		return nil, nil
	}
	alts, err := c.ListCertAlternates(ctx, certURL)
	if err != nil {
		return nil, fmt.Errorf("list alternate chains: %w", Explain(err))
	}
	for _, u := range alts {
		chain, err := c.FetchCert(ctx, u, true)
		if err != nil {
			return nil, fmt.Errorf("fetch alternate chain: %w", Explain(err))
		}
		if chainIssuedBy(chain, want) {
			return chain, nil
		}
	}
	return nil, nil
}

func chainIssuedBy(chain [][]byte, cn string) bool {
	if len(chain) == 0 {
		return false
	}
	top, err := x509.ParseCertificate(chain[len(chain)-1])
	return err == nil && (top.Issuer.CommonName == cn || top.Subject.CommonName == cn)
}
