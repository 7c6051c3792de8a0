package manifest

import (
	"encoding/json"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
)

// The cert-manager.io/v1 wire types embed kubectl-acme's api types, which
// hold what kubectl-acme honours, and add every other field cert-manager
// has, so that such a field is reported as unsupported (with why) rather
// than as unknown. Fields whose text needs checking with a precise path
// (durations, base64) shadow the embedded ones as strings.

type v1Issuer struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       v1IssuerSpec      `json:"spec"`
	Status     json.RawMessage   `json:"status,omitempty"`
}

type v1IssuerSpec struct {
	ACME       *v1ACMEIssuer   `json:"acme,omitempty"`
	CA         json.RawMessage `json:"ca,omitempty"`
	Vault      json.RawMessage `json:"vault,omitempty"`
	SelfSigned json.RawMessage `json:"selfSigned,omitempty"`
	Venafi     json.RawMessage `json:"venafi,omitempty"`
}

type v1ACMEIssuer struct {
	certmanager.ACMEIssuer
	CABundle *string    `json:"caBundle,omitempty"`
	Solvers  []v1Solver `json:"solvers,omitempty"`
	// EnableDurationFeature makes cert-manager send a Certificate's
	// duration to the CA; kubectl-acme always does when it is set.
	EnableDurationFeature bool `json:"enableDurationFeature,omitempty"`
}

type v1Solver struct {
	Selector               *certmanager.CertificateDNSNameSelector `json:"selector,omitempty"`
	HTTP01                 *v1HTTP01                               `json:"http01,omitempty"`
	DNS01                  json.RawMessage                         `json:"dns01,omitempty"`
	WaitInsteadOfSelfCheck *string                                 `json:"waitInsteadOfSelfCheck,omitempty"`
}

type v1HTTP01 struct {
	Ingress          *certmanager.ACMEChallengeSolverHTTP01Ingress          `json:"ingress,omitempty"`
	GatewayHTTPRoute *certmanager.ACMEChallengeSolverHTTP01GatewayHTTPRoute `json:"gatewayHTTPRoute,omitempty"`
}

type v1Certificate struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       v1CertificateSpec `json:"spec"`
	Status     json.RawMessage   `json:"status,omitempty"`
}

type v1CertificateSpec struct {
	certmanager.CertificateSpec
	Duration    *string `json:"duration,omitempty"`
	RenewBefore *string `json:"renewBefore,omitempty"`

	Subject               json.RawMessage `json:"subject,omitempty"`
	LiteralSubject        json.RawMessage `json:"literalSubject,omitempty"`
	URIs                  json.RawMessage `json:"uris,omitempty"`
	OtherNames            json.RawMessage `json:"otherNames,omitempty"`
	EmailAddresses        json.RawMessage `json:"emailAddresses,omitempty"`
	IsCA                  json.RawMessage `json:"isCA,omitempty"`
	Keystores             json.RawMessage `json:"keystores,omitempty"`
	SignatureAlgorithm    json.RawMessage `json:"signatureAlgorithm,omitempty"`
	EncodeUsagesInRequest json.RawMessage `json:"encodeUsagesInRequest,omitempty"`
	RevisionHistoryLimit  json.RawMessage `json:"revisionHistoryLimit,omitempty"`
	NameConstraints       json.RawMessage `json:"nameConstraints,omitempty"`
	Renewal               json.RawMessage `json:"renewal,omitempty"`
}

// Why kubectl-acme cannot honour fields cert-manager has.
const (
	whyOnlyACME      = "not supported: kubectl-acme implements ACME issuers only"
	whyDNS01         = "not supported: kubectl-acme solves HTTP-01 challenges only (so no DNS-01 and no wildcard names); remove this solver, or keep using cert-manager for these names"
	whySubject       = "not possible with an ACME CA: the CA writes only the requested names (and a common name) into the certificate, never other subject fields; remove it"
	whyIdentifiers   = "not possible with an ACME CA: ACME identifiers are DNS names and IP addresses only; remove it"
	whyIsCA          = "not possible with an ACME CA: ACME CAs issue end-entity certificates only, never CA certificates; remove it"
	whySigAlg        = "not possible with an ACME CA: the CA chooses the signature algorithm; remove it"
	whyEncodeUsages  = "not possible with an ACME CA: the CA ignores usages in the request; remove it"
	whyNameConstr    = "not possible with an ACME CA: name constraints apply to CA certificates, which ACME CAs do not issue; remove it"
	whyKeystores     = "not supported: kubectl-acme writes PEM (plus the DER and CombinedPEM additionalOutputFormats), not JKS or PKCS#12 keystores"
	whyRevisionLimit = "not supported: kubectl-acme keeps no CertificateRequest history; remove it"
	whyRenewal       = "not supported: kubectl-acme renews when you run it; use renewBefore or renewBeforePercentage to say when a renewal is due"
)

// present reports whether a raw field holds a value other than null, or
// the type's zero value given.
func present(raw json.RawMessage, zero ...string) bool {
	s := string(raw)
	if len(s) == 0 || s == "null" {
		return false
	}
	for _, z := range zero {
		if s == z {
			return false
		}
	}
	return true
}

func (c *doc) decodeV1(kind string, js []byte) {
	before := c.errCount()
	switch kind {
	case certmanager.KindIssuer, certmanager.KindClusterIssuer:
		var w v1Issuer
		if !c.strict(js, &w) {
			return
		}
		iss := c.v1Issuer(kind, &w)
		if iss == nil || !c.checkIssuer(iss) || c.errCount() != before {
			return
		}
		c.add(&Object{Location: c.loc, APIVersion: w.APIVersion, Kind: kind, Issuer: iss})
	case certmanager.KindCertificate:
		var w v1Certificate
		if !c.strict(js, &w) {
			return
		}
		cert := c.v1Certificate(&w)
		if cert == nil || !c.checkCertificate(cert) || c.errCount() != before {
			return
		}
		c.add(&Object{Location: c.loc, APIVersion: w.APIVersion, Kind: kind, Certificate: cert})
	default:
		c.fail("kind", fmt.Sprintf("%s %s is not supported: kubectl-acme applies Issuer, ClusterIssuer and Certificate", VersionV1, kind))
	}
}

func (c *doc) add(o *Object) { c.d.res.Objects = append(c.d.res.Objects, o) }

// errCount is used to tell whether a conversion step reported anything.
func (c *doc) errCount() int { return len(c.d.res.Errors) }

func (c *doc) v1Issuer(kind string, w *v1Issuer) *certmanager.Issuer {
	before := c.errCount()
	for _, f := range []struct {
		name string
		raw  json.RawMessage
	}{{"ca", w.Spec.CA}, {"vault", w.Spec.Vault}, {"selfSigned", w.Spec.SelfSigned}, {"venafi", w.Spec.Venafi}} {
		if present(f.raw) {
			c.fail("spec."+f.name, whyOnlyACME)
		}
	}
	iss := newIssuer(kind, &w.Metadata)
	if w.Spec.ACME == nil {
		if c.errCount() == before {
			c.fail("spec.acme", "required: kubectl-acme implements ACME issuers only")
		}
		return nil
	}
	a := w.Spec.ACME.ACMEIssuer
	a.CABundle = c.base64("spec.acme.caBundle", w.Spec.ACME.CABundle)
	a.Solvers = c.v1Solvers("spec.acme.solvers", w.Spec.ACME.Solvers)
	iss.Spec.ACME = &a
	return iss
}

func (c *doc) v1Solvers(path string, in []v1Solver) []certmanager.ACMEChallengeSolver {
	var out []certmanager.ACMEChallengeSolver
	for i, s := range in {
		p := index(path, i)
		if present(s.DNS01) {
			c.fail(p+".dns01", whyDNS01)
			continue
		}
		wait := c.duration(p+".waitInsteadOfSelfCheck", s.WaitInsteadOfSelfCheck)
		if wait != nil && wait.Duration < 0 {
			c.fail(p+".waitInsteadOfSelfCheck", "must not be negative (0 asks the CA right away)")
		}
		if s.HTTP01 == nil {
			c.fail(p, "a solver needs http01 (kubectl-acme solves HTTP-01 challenges only)")
			continue
		}
		sv := certmanager.ACMEChallengeSolver{Selector: s.Selector, HTTP01: &certmanager.ACMEChallengeSolverHTTP01{Ingress: s.HTTP01.Ingress, GatewayHTTPRoute: s.HTTP01.GatewayHTTPRoute}, WaitInsteadOfSelfCheck: wait}
		if (sv.HTTP01.Ingress == nil) == (sv.HTTP01.GatewayHTTPRoute == nil) {
			c.fail(p+".http01", "exactly one of ingress and gatewayHTTPRoute is required")
			continue
		}
		out = append(out, sv)
	}
	return out
}

func newIssuer(kind string, m *metav1.ObjectMeta) *certmanager.Issuer {
	iss := &certmanager.Issuer{}
	iss.APIVersion, iss.Kind = certmanager.GroupVersion, kind
	iss.Name, iss.Namespace = m.Name, m.Namespace
	if kind == certmanager.KindClusterIssuer {
		// Cluster-scoped: a namespace in the manifest means nothing.
		iss.Namespace = ""
	}
	// The one setting of kubectl-acme's own an Issuer carries.
	if v, ok := m.Annotations[certmanager.AnnotationIngressPathType]; ok {
		iss.Annotations = map[string]string{certmanager.AnnotationIngressPathType: v}
	}
	return iss
}

func newCertificate(m *metav1.ObjectMeta) *certmanager.Certificate {
	cert := &certmanager.Certificate{}
	cert.APIVersion, cert.Kind = certmanager.GroupVersion, certmanager.KindCertificate
	cert.Name, cert.Namespace = m.Name, m.Namespace
	// Labels take part in solver selection (matchLabels); annotations may
	// override the solver's ingress (acme.cert-manager.io/http01-override-*)
	// or the profile. kubectl's own bookkeeping is left out.
	cert.Labels = m.Labels
	for k, v := range m.Annotations {
		if k == "kubectl.kubernetes.io/last-applied-configuration" {
			continue
		}
		if cert.Annotations == nil {
			cert.Annotations = map[string]string{}
		}
		cert.Annotations[k] = v
	}
	return cert
}

func (c *doc) v1Certificate(w *v1Certificate) *certmanager.Certificate {
	s := &w.Spec
	for _, f := range []struct {
		name, why string
		raw       json.RawMessage
		zero      []string
	}{
		{"subject", whySubject, s.Subject, []string{"{}"}},
		{"literalSubject", whySubject, s.LiteralSubject, []string{`""`}},
		{"uris", whyIdentifiers, s.URIs, []string{"[]"}},
		{"otherNames", whyIdentifiers, s.OtherNames, []string{"[]"}},
		{"emailAddresses", whyIdentifiers, s.EmailAddresses, []string{"[]"}},
		{"isCA", whyIsCA, s.IsCA, []string{"false"}},
		{"keystores", whyKeystores, s.Keystores, []string{"{}"}},
		{"signatureAlgorithm", whySigAlg, s.SignatureAlgorithm, []string{`""`}},
		{"encodeUsagesInRequest", whyEncodeUsages, s.EncodeUsagesInRequest, []string{"false"}},
		{"revisionHistoryLimit", whyRevisionLimit, s.RevisionHistoryLimit, nil},
		{"nameConstraints", whyNameConstr, s.NameConstraints, nil},
		{"renewal", whyRenewal, s.Renewal, nil},
	} {
		if present(f.raw, f.zero...) {
			c.fail("spec."+f.name, f.why)
		}
	}
	cert := newCertificate(&w.Metadata)
	cert.Spec = s.CertificateSpec
	cert.Spec.Duration = c.duration("spec.duration", s.Duration)
	cert.Spec.RenewBefore = c.duration("spec.renewBefore", s.RenewBefore)
	return cert
}
