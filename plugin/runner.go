package plugin

import (
	"fmt"
	"io"

	"github.com/kubectl-acme/kubectl-acme/acme"
	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/issuance"
	"github.com/kubectl-acme/kubectl-acme/internal/store"
)

// store returns a store whose client's rate limit suits --concurrency.
func (f *issueFlags) store(fac *Factory) (*store.Store, error) {
	fac.Workers = f.Concurrency
	return fac.Store()
}

// runner is the one issuance runner of issue, issue --ingress, apply and
// renew, set from their shared flags, for n certificates: --concurrency
// at a time, --timeout each, one account client per issuer, and one
// progress model: none with --quiet; for one certificate its steps (a
// live table on a terminal); for several, one line per event, named by
// certificate.
func (f *issueFlags) runner(st *store.Store, fac *Factory, errOut io.Writer, n int) *issuance.Runner {
	opts := f.options(st, fac)
	opts.Accounts = &issuance.Accounts{}
	r := &issuance.Runner{Options: opts, Concurrency: f.Concurrency, Timeout: f.Timeout}
	if !f.Quiet {
		p := newProgress(errOut, n == 1 && isTerminal(errOut))
		r.Observe = func(c *certmanager.Certificate) acme.Observer {
			if n == 1 {
				return p.Observe
			}
			return prefixed(p, c.Name)
		}
	}
	return r
}

// prefixed names the certificate in each event, so the progress of
// concurrent orders stays readable.
func prefixed(p *progress, cert string) acme.Observer {
	return func(e acme.Event) {
		if e.Identifier == "" {
			e.Identifier = cert
		} else {
			e.Identifier = cert + ": " + e.Identifier
		}
		p.Observe(e)
	}
}

// issuedLine is the result line of an issued certificate.
func issuedLine(c *certmanager.Certificate) string {
	return fmt.Sprintf("certificate/%s issued: secret/%s, serial %s, valid until %s",
		c.Name, c.Spec.SecretName, c.Status.Serial, issuance.FormatTime(c.Status.NotAfter))
}
