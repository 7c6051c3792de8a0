package certmanager

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/mail"
	"strings"

	"golang.org/x/net/idna"
	"k8s.io/apimachinery/pkg/util/validation"
)

// ValidateName checks a name for a stored object: it becomes part of a
// ConfigMap name and a label value, so it must be a DNS label.
func ValidateName(what, name string) error {
	if name == "" {
		return fmt.Errorf("%s name is required", what)
	}
	if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
		return fmt.Errorf("invalid %s name %q: %s", what, name, strings.Join(errs, "; "))
	}
	return nil
}

// ValidateEmail checks an ACME account contact address.
func ValidateEmail(email string) error {
	if email == "" {
		return nil
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || a.Name != "" {
		return fmt.Errorf("invalid email %q: want a plain address like ops@example.com", email)
	}
	return nil
}

// NormalizeDomain validates a DNS identifier for an HTTP-01 order and returns
// it in the ASCII (punycode) form the CA expects.
func NormalizeDomain(d string) (string, error) {
	if d == "" {
		return "", fmt.Errorf("empty domain")
	}
	if strings.HasPrefix(d, "*.") {
		return "", fmt.Errorf("domain %q: wildcard names need DNS-01, and kubectl-acme solves HTTP-01 only", d)
	}
	if net.ParseIP(d) != nil {
		return "", fmt.Errorf("domain %q is an IP address: pass it with --ip", d)
	}
	ascii, err := idna.Lookup.ToASCII(strings.TrimSuffix(d, "."))
	if err != nil {
		return "", fmt.Errorf("domain %q: %v", d, err)
	}
	ascii = strings.ToLower(ascii)
	if errs := validation.IsDNS1123Subdomain(ascii); len(errs) > 0 {
		return "", fmt.Errorf("domain %q: %s", d, strings.Join(errs, "; "))
	}
	if !strings.Contains(ascii, ".") {
		return "", fmt.Errorf("domain %q: a public CA issues only fully qualified names (like www.example.com)", d)
	}
	for _, label := range strings.Split(ascii, ".") {
		if len(label) > 63 {
			return "", fmt.Errorf("domain %q: label %q is longer than 63 characters", d, label)
		}
	}
	return ascii, nil
}

// NormalizeIP validates an IP identifier and returns its canonical text.
func NormalizeIP(s string) (string, error) {
	ip := net.ParseIP(s)
	if ip == nil {
		return "", fmt.Errorf("invalid IP address %q", s)
	}
	return ip.String(), nil
}

// ValidateCertificateSpec checks names and references before any order is
// created, and normalizes the names in place.
func ValidateCertificateSpec(s *CertificateSpec) error {
	if s.SecretName == "" {
		return fmt.Errorf("secret name is required")
	}
	if errs := validation.IsDNS1123Subdomain(s.SecretName); len(errs) > 0 {
		return fmt.Errorf("invalid secret name %q: %s", s.SecretName, strings.Join(errs, "; "))
	}
	if s.IssuerRef.Name == "" {
		return fmt.Errorf("an issuer is required (--issuer)")
	}
	seen := map[string]bool{}
	for i, d := range s.DNSNames {
		n, err := NormalizeDomain(d)
		if err != nil {
			return err
		}
		if seen[n] {
			return fmt.Errorf("domain %q is given twice", d)
		}
		seen[n] = true
		s.DNSNames[i] = n
	}
	for i, ip := range s.IPAddresses {
		n, err := NormalizeIP(ip)
		if err != nil {
			return err
		}
		if seen[n] {
			return fmt.Errorf("IP address %q is given twice", ip)
		}
		seen[n] = true
		s.IPAddresses[i] = n
	}
	if s.CommonName != "" {
		if len(s.CommonName) > 64 {
			return fmt.Errorf("common name %q is longer than 64 bytes, the X.509 limit", s.CommonName)
		}
		cn := s.CommonName
		if n, err := NormalizeIP(cn); err == nil {
			cn = n
		} else if n, err := NormalizeDomain(cn); err == nil {
			cn = n
		} else {
			return fmt.Errorf("common name: %w", err)
		}
		if !seen[cn] {
			return fmt.Errorf("common name %q must also be one of the domains or IPs", s.CommonName)
		}
		s.CommonName = cn
	}
	if len(seen) == 0 {
		return fmt.Errorf("at least one --domain or --ip is required")
	}
	if len(seen) > 100 {
		return fmt.Errorf("%d names: ACME CAs accept at most 100 per certificate", len(seen))
	}
	if pk := s.PrivateKey; pk != nil {
		if err := validatePrivateKey(pk); err != nil {
			return err
		}
	}
	for _, u := range s.Usages {
		if err := ValidateUsage(u); err != nil {
			return fmt.Errorf("usages: %w", err)
		}
	}
	if s.Duration != nil && s.RenewBefore != nil && s.RenewBefore.Duration >= s.Duration.Duration {
		return fmt.Errorf("renewBefore %s must be shorter than duration %s, or the certificate is due as soon as it is issued", s.RenewBefore.Duration, s.Duration.Duration)
	}
	return nil
}

func validatePrivateKey(pk *CertificatePrivateKey) error {
	switch strings.ToUpper(pk.Algorithm) {
	case "", "RSA":
		switch pk.Size {
		case 0, 2048, 3072, 4096:
		default:
			return fmt.Errorf("RSA key size %d: use 2048, 3072 or 4096", pk.Size)
		}
	case "ECDSA":
		switch pk.Size {
		case 0, 256, 384:
		default:
			return fmt.Errorf("ECDSA key size %d: use 256 or 384", pk.Size)
		}
	default:
		return fmt.Errorf("key algorithm %q: use RSA or ECDSA", pk.Algorithm)
	}
	switch pk.Encoding {
	case "", "PKCS1", "PKCS8":
	default:
		return fmt.Errorf("key encoding %q: use PKCS1 or PKCS8", pk.Encoding)
	}
	switch pk.RotationPolicy {
	case "", "Always", "Never":
	default:
		return fmt.Errorf("key rotation policy %q: use Always or Never", pk.RotationPolicy)
	}
	return nil
}

// ValidateIngressPathType checks a path type override (an Issuer's
// AnnotationIngressPathType, or a flag); what names it in the error.
func ValidateIngressPathType(what, v string) error {
	for _, t := range IngressPathTypes {
		if v == t {
			return nil
		}
	}
	return fmt.Errorf("%s %q: want one of %s (the Ingress API's path types, spelled as in pathType)", what, v, strings.Join(IngressPathTypes, ", "))
}

// Key usages of a TLS server certificate, as cert-manager spells them
// (pkg/apis/certmanager/v1/types_certificate.go KeyUsage). cert-manager
// sends a Certificate's usages in the CSR's extension request; ACME CAs
// issue server certificates only, so these are the only usages they honour.
const (
	UsageDigitalSignature = "digital signature"
	UsageKeyEncipherment  = "key encipherment"
	UsageServerAuth       = "server auth"
)

// TLSServerUsages are the usages a Certificate of an ACME issuer may ask for.
var TLSServerUsages = []string{UsageDigitalSignature, UsageKeyEncipherment, UsageServerAuth}

// whyNotUsage says why an ACME CA will not honour a usage cert-manager knows
// (the KeyUsage list of cert-manager.io/v1).
var whyNotUsage = map[string]string{
	"client auth":        "TLS client authentication: ACME CAs issue server certificates (Let's Encrypt stopped including the clientAuth EKU in 2025)",
	"code signing":       "code signing certificates are not issued by ACME CAs",
	"email protection":   "S/MIME certificates are not issued by ACME CAs",
	"s/mime":             "S/MIME certificates are not issued by ACME CAs",
	"timestamping":       "timestamping certificates are not issued by ACME CAs",
	"ocsp signing":       "OCSP signing belongs to a CA's own responder certificates",
	"cert sign":          "certificate signing makes a CA certificate, which ACME CAs never issue",
	"crl sign":           "CRL signing makes a CA certificate, which ACME CAs never issue",
	"ipsec end system":   "IPsec certificates are not issued by ACME CAs",
	"ipsec tunnel":       "IPsec certificates are not issued by ACME CAs",
	"ipsec user":         "IPsec certificates are not issued by ACME CAs",
	"microsoft sgc":      "server-gated cryptography is obsolete and not issued by ACME CAs",
	"netscape sgc":       "server-gated cryptography is obsolete and not issued by ACME CAs",
	"signing":            "a generic signing usage is not part of a TLS server certificate; use \"digital signature\"",
	"content commitment": "content commitment (non-repudiation) is not part of a TLS server certificate",
	"key agreement":      "key agreement is not requested by cert-manager's TLS defaults and ACME CAs decide it themselves; use \"digital signature\"",
	"data encipherment":  "data encipherment is not part of a TLS server certificate",
	"encipher only":      "encipher only is not part of a TLS server certificate",
	"decipher only":      "decipher only is not part of a TLS server certificate",
	"any":                "the anyExtendedKeyUsage EKU is not issued by ACME CAs",
}

// ValidateUsage checks one of a Certificate's usages: the TLS server usages
// pass; every other is refused with why.
func ValidateUsage(u string) error {
	for _, ok := range TLSServerUsages {
		if u == ok {
			return nil
		}
	}
	if why, ok := whyNotUsage[u]; ok {
		return fmt.Errorf("%q: not possible with an ACME CA: %s; keep only %s", u, why, quoteList(TLSServerUsages))
	}
	return fmt.Errorf("%q is not a cert-manager key usage; an ACME certificate may ask for %s", u, quoteList(TLSServerUsages))
}

func quoteList(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// X509Usages turns a Certificate's usages into what the CSR asks for.
// Without usages nothing is asked for and the CA decides, as it does
// anyway for an ACME certificate.
func X509Usages(usages []string) (x509.KeyUsage, []x509.ExtKeyUsage, error) {
	var ku x509.KeyUsage
	var eku []x509.ExtKeyUsage
	for _, u := range usages {
		if err := ValidateUsage(u); err != nil {
			return 0, nil, err
		}
		switch u {
		case UsageDigitalSignature:
			ku |= x509.KeyUsageDigitalSignature
		case UsageKeyEncipherment:
			ku |= x509.KeyUsageKeyEncipherment
		case UsageServerAuth:
			eku = append(eku, x509.ExtKeyUsageServerAuth)
		}
	}
	return ku, eku, nil
}
