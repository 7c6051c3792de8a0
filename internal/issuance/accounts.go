package issuance

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"

	xacme "golang.org/x/crypto/acme"

	"github.com/kubectl-acme/kubectl-acme/acme"
	"github.com/kubectl-acme/kubectl-acme/certmanager"
)

// UpdateContact changes the account's contact address at the CA and in
// the stored Issuer.
func UpdateContact(ctx context.Context, o Options, iss *certmanager.Issuer, email string) error {
	c, err := accountClient(ctx, &o, iss)
	if err != nil {
		return err
	}
	acct, err := c.GetReg(ctx, "")
	if err != nil {
		return fmt.Errorf("look up account: %w", acme.Explain(err))
	}
	uri := acct.URI
	acct.Contact = nil
	if email != "" {
		acct.Contact = []string{"mailto:" + email}
	}
	if acct, err = c.UpdateReg(ctx, acct); err != nil {
		return fmt.Errorf("update account: %w", acme.Explain(err))
	}
	iss.Spec.ACME.Email = email
	// An update's answer carries no Location: keep the URI we looked up.
	iss.Status.ACME = &certmanager.ACMEIssuerStatus{URI: uri, LastRegisteredEmail: email, AccountStatus: acct.Status}
	return o.Store.SaveIssuer(ctx, iss)
}

// RotateAccountKey rolls the account over to a new key (RFC 8555 section
// 7.3.5). The new key is stored beside the old one before the CA is asked
// and becomes current only after the CA confirms; the old key is kept as
// KEY.previous. A rollover interrupted after the CA confirmed is finished
// by the next run.
func RotateAccountKey(ctx context.Context, o Options, iss *certmanager.Issuer) error {
	c, err := accountClient(ctx, &o, iss)
	if err != nil {
		return err
	}
	staged, err := o.Store.StagedAccountKey(ctx, iss)
	if err != nil {
		return err
	}
	if staged != nil {
		// An earlier rollover stopped half-way: find out which key the CA has.
		next, err := acme.ParseKey(staged)
		if err != nil {
			return fmt.Errorf("staged account key is unreadable; remove it from the secret: %w", err)
		}
		probe, err := acme.NewClient(clientFor(iss, &o), next)
		if err != nil {
			return err
		}
		if _, err := probe.GetReg(ctx, ""); err == nil {
			return o.Store.CommitAccountKey(ctx, iss)
		}
		if err := o.Store.DropStagedAccountKey(ctx, iss); err != nil {
			return err
		}
	}
	if _, err := c.GetReg(ctx, ""); err != nil {
		return fmt.Errorf("look up account with the current key: %w", acme.Explain(err))
	}
	newKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	pemKey, err := acme.EncodeKey(newKey, "")
	if err != nil {
		return err
	}
	if err := o.Store.StageAccountKey(ctx, iss, pemKey); err != nil {
		return err
	}
	if err := c.AccountKeyRollover(ctx, newKey); err != nil {
		rerr := fmt.Errorf("key rollover refused by the CA; the old key stays current: %w", acme.Explain(err))
		if derr := o.Store.DropStagedAccountKey(context.WithoutCancel(ctx), iss); derr != nil {
			rerr = errors.Join(rerr, derr)
		}
		return rerr
	}
	if err := o.Store.CommitAccountKey(context.WithoutCancel(ctx), iss); err != nil {
		return fmt.Errorf("the CA accepted the new key but storing it failed; run the command again to finish: %w", err)
	}
	return nil
}

// DeleteIssuer removes the stored Issuer, first deactivating its account
// at the CA if asked. The account key Secret is kept.
func DeleteIssuer(ctx context.Context, o Options, iss *certmanager.Issuer, deactivate bool) error {
	if deactivate {
		c, err := accountClient(ctx, &o, iss)
		if err != nil {
			return err
		}
		if err := c.DeactivateReg(ctx); err != nil {
			return fmt.Errorf("deactivate account: %w", acme.Explain(err))
		}
	}
	return o.Store.DeleteIssuer(ctx, iss)
}

// Accounts shares one ACME client per issuer between the issues of one
// command, so a batch reads each account key once and shares the CA's
// directory and nonces. A nil *Accounts shares nothing.
type Accounts struct {
	mu      sync.Mutex
	clients map[string]*sharedAccount
}

type sharedAccount struct {
	mu     sync.Mutex
	client *xacme.Client
}

// client returns iss's account client, made on first use. A failure is not
// remembered: the next certificate tries again.
func (a *Accounts) client(ctx context.Context, o *Options, iss *certmanager.Issuer) (*xacme.Client, error) {
	if a == nil {
		return accountClient(ctx, o, iss)
	}
	sa := a.share(iss)
	sa.mu.Lock()
	defer sa.mu.Unlock()
	if sa.client == nil {
		c, err := accountClient(ctx, o, iss)
		if err != nil {
			return nil, err
		}
		sa.client = c
	}
	return sa.client, nil
}

// share returns iss's entry, made on first use.
func (a *Accounts) share(iss *certmanager.Issuer) *sharedAccount {
	key := iss.Kind + "/" + iss.Namespace + "/" + iss.Name
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.clients == nil {
		a.clients = map[string]*sharedAccount{}
	}
	sa := a.clients[key]
	if sa == nil {
		sa = &sharedAccount{}
		a.clients[key] = sa
	}
	return sa
}

// put shares c, the client that just registered iss's account: it knows
// the account's URL, the CA's directory and holds fresh nonces, so the
// run's first order needs none of the requests a new client makes.
func (a *Accounts) put(iss *certmanager.Issuer, c *xacme.Client) {
	if a == nil {
		return
	}
	sa := a.share(iss)
	sa.mu.Lock()
	defer sa.mu.Unlock()
	sa.client = c
}

// Prefetch makes iss's account client and reads the CA's directory in the
// background, while the run reads the cluster, so that the first order
// does not wait for them. A failure is left for the first certificate to
// meet (and report) again.
func (a *Accounts) Prefetch(ctx context.Context, o Options, iss *certmanager.Issuer) {
	if a == nil || iss.Spec.ACME == nil {
		return
	}
	go func() {
		c, err := a.client(ctx, &o, iss)
		if err == nil {
			_, _ = c.Discover(ctx)
		}
	}()
}
