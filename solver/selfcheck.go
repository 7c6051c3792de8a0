package solver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/kubectl-acme/kubectl-acme/acme"
)

// SelfCheck fetches each challenge URL the way the CA will, so a broken
// route is explained before the CA marks the authorization invalid (which
// costs a failed validation against its rate limits).
type SelfCheck struct {
	// ConnectTo sends every request to this host:port instead of the
	// address DNS gives, as curl --connect-to does: useful before DNS
	// points at the load balancer.
	ConnectTo string
	// Timeout bounds how long to retry a failing check; routes can take a
	// moment to be programmed into the ingress controller.
	Timeout time.Duration
	// Propagation is how long a missing route (404) or endpoint (502,
	// 503) is reported as only "waiting for the route" before its status
	// is explained; zero means DefaultPropagation.
	Propagation time.Duration
	// WaitInstead, when set, skips the check: CheckAll waits this long
	// instead, as cert-manager's waitInsteadOfSelfCheck does (for
	// split-horizon DNS or NAT hairpinning, where the URL cannot be reached
	// from here although the CA reaches it).
	WaitInstead *time.Duration

	once   sync.Once
	client *http.Client
}

func (c *SelfCheck) httpClient() *http.Client {
	c.once.Do(func() {
		d := &net.Dialer{Timeout: 5 * time.Second}
		tr := &http.Transport{
			Proxy: nil, // the CA does not use our proxy either
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				if c.ConnectTo != "" {
					addr = c.ConnectTo
				}
				return d.DialContext(ctx, network, addr)
			},
			DisableKeepAlives:     true,
			ResponseHeaderTimeout: 5 * time.Second,
		}
		c.client = &http.Client{
			Transport: tr,
			Timeout:   10 * time.Second,
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if len(via) >= 10 {
					return errors.New("stopped after 10 redirects")
				}
				return nil
			},
		}
	})
	return c.client
}

// DefaultPropagation is how long a new route usually takes to be served:
// ingress-nginx syncs its configuration at most every 1/0.3 s (its
// --sync-rate-limit, default 0.3, pkg/flags/flags.go) and then has to
// reload or post the new endpoints, so a route 3-4 s old can still be
// missing; other controllers program theirs in a similar time. Within it,
// a 404 or 503 is normal and not yet worth explaining.
const DefaultPropagation = 5 * time.Second

// CheckError says why a challenge URL did not serve its key authorization.
type CheckError struct {
	URL    string
	Reason string // dns, connect, status, body, redirect
	Detail string
	// Status is the HTTP status for Reason "status".
	Status int
}

// propagating reports whether err is what a route not yet programmed
// looks like: no route yet (404) or no endpoint behind it yet (502, 503).
func propagating(err error) bool {
	var ce *CheckError
	if !errors.As(err, &ce) || ce.Reason != "status" {
		return false
	}
	switch ce.Status {
	case http.StatusNotFound, http.StatusBadGateway, http.StatusServiceUnavailable:
		return true
	}
	return false
}

func (e *CheckError) Error() string {
	return fmt.Sprintf("self-check %s: %s: %s", e.URL, e.Reason, e.Detail)
}

// ChallengeURL is the URL the CA fetches for ch.
func ChallengeURL(ch acme.Challenge) string {
	host := ch.Identifier
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		host = "[" + host + "]"
	}
	return "http://" + host + ChallengePath + ch.Token
}

// Check fetches ch's URL once.
func (c *SelfCheck) Check(ctx context.Context, ch acme.Challenge) error {
	url := ChallengeURL(ch)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return &CheckError{URL: url, Reason: "request", Detail: err.Error()}
	}
	req.Header.Set("User-Agent", "kubectl-acme self-check")
	res, err := c.httpClient().Do(req)
	if err != nil {
		return classify(url, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 8<<10))
	if err != nil {
		return &CheckError{URL: url, Reason: "connect", Detail: "reading body: " + err.Error()}
	}
	redirected := ""
	if final := res.Request.URL.String(); final != url {
		redirected = " after redirect to " + final
	}
	if res.StatusCode != http.StatusOK {
		hint := ""
		if res.StatusCode == http.StatusNotFound {
			hint = " (the ingress controller has no route for this path: check the ingress class and the path types it routes (kubectl describe ingress shows its events; --ingress-path-type), or the HTTPRoute's parentRefs, and that DNS or --connect-to reaches this controller)"
		}
		if res.StatusCode == http.StatusServiceUnavailable || res.StatusCode == http.StatusBadGateway {
			hint = " (the route exists but the solver pod is not reachable through its service)"
		}
		return &CheckError{URL: url, Reason: "status", Status: res.StatusCode, Detail: fmt.Sprintf("HTTP %d%s%s", res.StatusCode, redirected, hint)}
	}
	got := strings.TrimSpace(string(body))
	if got != ch.KeyAuthorization {
		return &CheckError{URL: url, Reason: "body", Detail: fmt.Sprintf("got %q%s, want the key authorization for token %s", truncate(got, 80), redirected, ch.Token)}
	}
	return nil
}

func classify(url string, err error) error {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return &CheckError{URL: url, Reason: "dns", Detail: fmt.Sprintf("%s does not resolve (%v); point it at your ingress, or use --connect-to", dnsErr.Name, dnsErr.Err)}
	}
	if strings.Contains(err.Error(), "redirect") {
		return &CheckError{URL: url, Reason: "redirect", Detail: err.Error()}
	}
	return &CheckError{URL: url, Reason: "connect", Detail: err.Error()}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// CheckAll checks all challenges concurrently, retrying each with backoff
// until it passes or Timeout ends; the error lists every one that failed.
func (c *SelfCheck) CheckAll(ctx context.Context, chals []acme.Challenge, observe acme.Observer) error {
	if c.WaitInstead != nil {
		return c.wait(ctx, chals, observe)
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	errs := make([]error, len(chals))
	var wg sync.WaitGroup
	for i, ch := range chals {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.retry(ctx, ch, observe)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// retry checks ch until it passes or ctx ends. Each new failure is
// reported once, except that for the first Propagation a missing route or
// endpoint is reported only as "waiting for the route": explaining a 503
// that every controller gives for a moment would read as an alarm.
func (c *SelfCheck) retry(ctx context.Context, ch acme.Challenge, observe acme.Observer) error {
	// The route follows the pod's readiness by a few tens of
	// milliseconds (the EndpointSlice, then the ingress controller): the
	// first retries come soon, then back off.
	delay := 10 * time.Millisecond
	propagation := c.Propagation
	if propagation == 0 {
		propagation = DefaultPropagation
	}
	start := time.Now()
	waiting := false
	var last error
	for {
		err := c.Check(ctx, ch)
		if err == nil {
			if observe != nil {
				observe(acme.Event{Identifier: ch.Identifier, State: acme.StatePresenting, Detail: "self-check passed"})
			}
			return nil
		}
		if ctx.Err() != nil {
			if last == nil {
				last = err
			}
			return giveUp(ctx, last)
		}
		switch {
		case propagating(err) && time.Since(start) < propagation:
			if !waiting && observe != nil {
				observe(acme.Event{Identifier: ch.Identifier, State: acme.StatePresenting, Detail: "self-check: waiting for the route to " + ChallengeURL(ch)})
			}
			waiting = true
			// Explained once the wait is over, even if unchanged.
			err = &waitedError{err}
		case last == nil || last.Error() != err.Error():
			if observe != nil {
				observe(acme.Event{Identifier: ch.Identifier, State: acme.StatePresenting, Detail: err.Error() + " (retrying)"})
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return giveUp(ctx, last)
		case <-time.After(delay):
		}
		delay = min(delay*2, 2*time.Second)
	}
}

// waitedError is a failure seen while waiting for the route: it reads
// differently from the same failure after the wait, so that one is
// reported.
type waitedError struct{ error }

func (w *waitedError) Error() string { return "while waiting: " + w.error.Error() }
func (w *waitedError) Unwrap() error { return w.error }

// giveUp keeps both the last check's explanation and why checking stopped,
// so callers can tell a timeout or Ctrl-C from a route that never worked.
func giveUp(ctx context.Context, last error) error {
	var w *waitedError
	if errors.As(last, &w) {
		last = w.error
	}
	return fmt.Errorf("%w (%w)", last, ctx.Err())
}

// wait is CheckAll with WaitInstead set: it says so for each challenge and
// waits, so the CA is asked only once the route had time to be programmed.
func (c *SelfCheck) wait(ctx context.Context, chals []acme.Challenge, observe acme.Observer) error {
	d := *c.WaitInstead
	if observe != nil {
		for _, ch := range chals {
			observe(acme.Event{Identifier: ch.Identifier, State: acme.StatePresenting,
				Detail: fmt.Sprintf("waiting %s instead of the self-check (waitInsteadOfSelfCheck); the CA alone will tell whether the challenge is reachable", d)})
		}
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("waiting instead of the self-check: %w", ctx.Err())
	case <-t.C:
		return nil
	}
}
