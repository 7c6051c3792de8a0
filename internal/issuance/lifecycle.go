package issuance

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	xacme "golang.org/x/crypto/acme"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-acme/kubectl-acme/acme"
	"github.com/kubectl-acme/kubectl-acme/certmanager"
)

// accountClient is an ACME client signing with iss's existing account key.
func accountClient(ctx context.Context, o *Options, iss *certmanager.Issuer) (*xacme.Client, error) {
	key, err := o.Store.ExistingAccountKey(ctx, iss)
	if err != nil {
		return nil, err
	}
	c, err := acme.NewClient(clientFor(iss, o), key)
	if err != nil {
		return nil, err
	}
	if st := iss.Status.ACME; st != nil && st.URI != "" {
		// Skips the account lookup round trip on every request.
		c.KID = xacme.KeyID(st.URI)
	}
	return c, nil
}

// currentLeaf parses the leaf certificate in cert's Secret; nil if none.
func currentLeaf(ctx context.Context, o Options, cert *certmanager.Certificate) (*x509.Certificate, error) {
	sec, err := o.Store.GetSecret(ctx, cert)
	if err != nil || sec == nil {
		return nil, err
	}
	b, _ := pem.Decode(sec.Data[corev1.TLSCertKey])
	if b == nil {
		return nil, nil
	}
	return x509.ParseCertificate(b.Bytes)
}

// RevokeOutcome is what Revoke did.
type RevokeOutcome struct {
	// AlreadyRevoked: the CA had revoked the certificate before, and this
	// request changed nothing. cert.Status.Revoked then keeps the earlier
	// revocation's reason and time; when this Certificate had no record of
	// it (revoked by other means), one with reason "unknown" is added.
	AlreadyRevoked bool
	// Recorded: an earlier `revoke` of this certificate recorded it.
	Recorded bool
}

// ReasonUnknown is the recorded reason of a revocation that happened
// elsewhere: the CA says the certificate is revoked, not why.
const ReasonUnknown = "unknown"

// Revoke revokes the certificate in cert's Secret with the account key.
func Revoke(ctx context.Context, o Options, cert *certmanager.Certificate, reason xacme.CRLReasonCode) (RevokeOutcome, error) {
	leaf, err := currentLeaf(ctx, o, cert)
	if err != nil {
		return RevokeOutcome{}, err
	}
	if leaf == nil {
		return RevokeOutcome{}, fmt.Errorf("certificate %q has no certificate in secret %s to revoke", cert.Name, cert.Spec.SecretName)
	}
	iss, err := IssuerOf(ctx, o.Store, cert)
	if err != nil {
		return RevokeOutcome{}, err
	}
	c, err := accountClient(ctx, &o, iss)
	if err != nil {
		return RevokeOutcome{}, err
	}
	err = acme.Revoke(ctx, c, leaf.Raw, reason)
	if errors.Is(err, acme.ErrAlreadyRevoked) {
		// Revoking again changes nothing at the CA, so nothing changes
		// here either: the recorded reason and time stay the first ones.
		prev := cert.Status.Revoked
		if prev != nil && prev.Serial == cert.Status.Serial {
			return RevokeOutcome{AlreadyRevoked: true, Recorded: true}, nil
		}
		cert.Status.Revoked = &certmanager.RevocationStatus{Serial: cert.Status.Serial, Reason: ReasonUnknown}
		return RevokeOutcome{AlreadyRevoked: true}, saveCertificate(ctx, o.Store, cert)
	}
	if err != nil {
		return RevokeOutcome{}, fmt.Errorf("revoke: %w", err)
	}
	cert.Status.Revoked = &certmanager.RevocationStatus{Serial: cert.Status.Serial, Reason: ReasonName(reason), Time: metav1.Now()}
	return RevokeOutcome{}, saveCertificate(ctx, o.Store, cert)
}

// RevocationReasons maps RFC 5280 reason names to codes.
var RevocationReasons = map[string]xacme.CRLReasonCode{
	"unspecified":          xacme.CRLReasonUnspecified,
	"keyCompromise":        xacme.CRLReasonKeyCompromise,
	"affiliationChanged":   xacme.CRLReasonAffiliationChanged,
	"superseded":           xacme.CRLReasonSuperseded,
	"cessationOfOperation": xacme.CRLReasonCessationOfOperation,
	"privilegeWithdrawn":   xacme.CRLReasonPrivilegeWithdrawn,
}

// ReasonName is the RFC 5280 name of a reason code.
func ReasonName(code xacme.CRLReasonCode) string {
	for n, c := range RevocationReasons {
		if c == code {
			return n
		}
	}
	return fmt.Sprint(int(code))
}

// profileFor is the Certificate's own profile (annotation) or the Issuer's.
func profileFor(cert *certmanager.Certificate, iss *certmanager.Issuer) string {
	if p := cert.Annotations[certmanager.AnnotationProfile]; p != "" {
		return p
	}
	return iss.Spec.ACME.Profile
}

// notAfterFor asks for spec.duration when set; CAs that cannot honour it
// reject the order with a problem the user sees.
func notAfterFor(cert *certmanager.Certificate) time.Time {
	if d := cert.Spec.Duration; d != nil && d.Duration > 0 {
		return time.Now().Add(d.Duration).Truncate(time.Second)
	}
	return time.Time{}
}
