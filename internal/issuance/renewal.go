package issuance

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	xacme "golang.org/x/crypto/acme"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-acme/kubectl-acme/acme"
	"github.com/kubectl-acme/kubectl-acme/certmanager"
)

// When a certificate is due. With a CA that offers ACME Renewal
// Information (RFC 9773) it is the point inside the CA's suggested window
// that acme.RenewalInfo.RenewAt picks (stable across runs); the window is
// kept in the Certificate's status and asked for again only once the CA's
// Retry-After has passed. Without ARI it is when a third of the lifetime
// is left (certmanager.RenewalTime). A renewBefore (or
// renewBeforePercentage) the user set wins when it asks for an earlier
// renewal.

// ariTimeout bounds one renewal-information request, so a CA that does not
// answer cannot hold a renewal check (x/crypto/acme would retry until the
// context ends).
const ariTimeout = 10 * time.Second

// RenewalCheck says whether a certificate is due and why.
type RenewalCheck struct {
	Due    bool
	Reason string
	// RenewAt is when the certificate is due; zero if it has none yet.
	RenewAt time.Time
	// Replaces is the CertID to send in the renewal order (ARI CAs only).
	Replaces string
	// Updated: the check changed the Certificate's status (a fresh ARI
	// window, a new renewal time) and SaveRenewalCheck should store it.
	Updated bool
}

// CheckRenewal decides whether cert is due at now. It asks the CA for the
// renewal window only when the one in cert's status is not for the stored
// certificate or its Retry-After has passed; a fresh answer is written to
// cert's status (Updated) for the caller to save.
func CheckRenewal(ctx context.Context, o Options, cert *certmanager.Certificate, now time.Time) (*RenewalCheck, *x509.Certificate, error) {
	leaf, err := currentLeaf(ctx, o, cert)
	if err != nil {
		return nil, nil, err
	}
	if leaf == nil {
		return &RenewalCheck{Due: true, Reason: "no certificate stored yet"}, nil, nil
	}
	if !now.Before(leaf.NotAfter) {
		return &RenewalCheck{Due: true, Reason: "expired " + leaf.NotAfter.UTC().Format(time.RFC3339)}, leaf, nil
	}
	id, _ := acme.CertID(leaf)
	if ri := cachedRenewalInfo(cert, id, now); ri != nil {
		at := renewAt(cert, leaf, ri, id)
		return &RenewalCheck{Due: !now.Before(at), RenewAt: at, Replaces: id, Reason: ariReason(ri, at) +
			"; asking the CA again after " + cert.Status.RenewalInfo.NextCheck.UTC().Format(time.RFC3339)}, leaf, nil
	}
	iss, err := IssuerOf(ctx, o.Store, cert)
	if err != nil {
		return nil, nil, err
	}
	c, err := o.Accounts.client(ctx, &o, iss)
	if err != nil {
		return nil, nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, ariTimeout)
	defer cancel()
	ri, err := acme.GetRenewalInfo(rctx, c, leaf)
	var check *RenewalCheck
	switch {
	case err == nil:
		recordRenewalInfo(cert, id, ri, now)
		at := renewAt(cert, leaf, ri, id)
		check = &RenewalCheck{Due: !now.Before(at), RenewAt: at, Replaces: id, Reason: ariReason(ri, at)}
	case errors.Is(err, acme.ErrNoARI):
		cert.Status.RenewalInfo = nil
		at := renewAt(cert, leaf, nil, "")
		rule := "a third of the lifetime before expiry"
		if rb := cert.Spec.RenewBeforeFor(leaf.NotBefore, leaf.NotAfter); rb > 0 && rb < leaf.NotAfter.Sub(leaf.NotBefore) {
			rule = rb.String() + " before expiry, as the certificate's renewBefore asks"
		}
		reason := fmt.Sprintf("renewal time %s: the CA offers no renewal information (ARI), so %s", at.UTC().Format(time.RFC3339), rule)
		check = &RenewalCheck{Due: !now.Before(at), RenewAt: at, Reason: reason}
	default:
		return nil, nil, fmt.Errorf("ask %s for the renewal window: %w", c.DirectoryURL, err)
	}
	if cert.Status.RenewalTime == nil || !cert.Status.RenewalTime.Time.Equal(check.RenewAt) {
		cert.Status.RenewalTime = &metav1.Time{Time: check.RenewAt}
	}
	check.Updated = true
	return check, leaf, nil
}

// SaveRenewalCheck stores what CheckRenewal wrote to cert's status, so the
// next check reuses the CA's window until its Retry-After.
func SaveRenewalCheck(ctx context.Context, o Options, cert *certmanager.Certificate) error {
	return saveCertificate(ctx, o.Store, cert)
}

// renewalAfterIssue is the renewal time of a certificate just issued: RFC
// 9773 §4.3.1 asks clients to fetch its renewal information right away.
// Any failure to get it falls back to the lifetime rule; the next renewal
// check asks again.
func renewalAfterIssue(ctx context.Context, c *xacme.Client, cert *certmanager.Certificate, leaf *x509.Certificate, now time.Time) time.Time {
	cert.Status.RenewalInfo = nil
	ctx, cancel := context.WithTimeout(ctx, ariTimeout)
	defer cancel()
	ri, err := acme.GetRenewalInfo(ctx, c, leaf)
	if err != nil {
		return renewAt(cert, leaf, nil, "")
	}
	id, _ := acme.CertID(leaf)
	recordRenewalInfo(cert, id, ri, now)
	return renewAt(cert, leaf, ri, id)
}

// renewAt is when leaf is due: the point RenewAt picks in the ARI window
// ri (nil: none), or the lifetime rule, whichever a renewBefore makes
// earlier.
func renewAt(cert *certmanager.Certificate, leaf *x509.Certificate, ri *acme.RenewalInfo, id string) time.Time {
	rb := cert.Spec.RenewBeforeFor(leaf.NotBefore, leaf.NotAfter)
	t := certmanager.RenewalTime(leaf.NotBefore, leaf.NotAfter, rb)
	if ri == nil {
		return t
	}
	if p := ri.RenewAt(id); rb <= 0 || p.Before(t) {
		return p
	}
	return t
}

// cachedRenewalInfo is the window stored in cert's status if it is for
// the certificate id and the CA's Retry-After has not passed.
func cachedRenewalInfo(cert *certmanager.Certificate, id string, now time.Time) *acme.RenewalInfo {
	s := cert.Status.RenewalInfo
	if s == nil || id == "" || s.CertID != id || !now.Before(s.NextCheck.Time) {
		return nil
	}
	return &acme.RenewalInfo{Start: s.WindowStart.Time, End: s.WindowEnd.Time, ExplanationURL: s.ExplanationURL}
}

func recordRenewalInfo(cert *certmanager.Certificate, id string, ri *acme.RenewalInfo, now time.Time) {
	retry := ri.RetryAfter
	if retry <= 0 {
		retry = acme.DefaultARIRetry
	}
	cert.Status.RenewalInfo = &certmanager.RenewalInfoStatus{
		CertID:         id,
		WindowStart:    metav1.Time{Time: ri.Start},
		WindowEnd:      metav1.Time{Time: ri.End},
		ExplanationURL: ri.ExplanationURL,
		NextCheck:      metav1.Time{Time: now.Add(retry)},
	}
}

func ariReason(ri *acme.RenewalInfo, at time.Time) string {
	return fmt.Sprintf("ARI window %s to %s, renewing at %s", ri.Start.UTC().Format(time.RFC3339), ri.End.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
}
