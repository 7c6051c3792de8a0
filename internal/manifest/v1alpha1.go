package manifest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
)

// The legacy certmanager.k8s.io/v1alpha1 shape (cert-manager v0.5 to
// v0.10), which many platform docs still show: the Issuer enables HTTP-01
// with `http01: {}` (optionally with a serviceType) and each Certificate
// says per domain how to solve it, in spec.acme.config. Since v0.8 the
// Issuer may also carry solvers[] in the shape cert-manager.io/v1 kept.

type v1alpha1Issuer struct {
	APIVersion string             `json:"apiVersion"`
	Kind       string             `json:"kind"`
	Metadata   metav1.ObjectMeta  `json:"metadata"`
	Spec       v1alpha1IssuerSpec `json:"spec"`
	Status     json.RawMessage    `json:"status,omitempty"`
}

type v1alpha1IssuerSpec struct {
	ACME       *v1alpha1ACMEIssuer `json:"acme,omitempty"`
	CA         json.RawMessage     `json:"ca,omitempty"`
	Vault      json.RawMessage     `json:"vault,omitempty"`
	SelfSigned json.RawMessage     `json:"selfSigned,omitempty"`
	Venafi     json.RawMessage     `json:"venafi,omitempty"`
}

type v1alpha1ACMEIssuer struct {
	Email         string                        `json:"email,omitempty"`
	Server        string                        `json:"server"`
	SkipTLSVerify bool                          `json:"skipTLSVerify,omitempty"`
	PrivateKey    certmanager.SecretKeySelector `json:"privateKeySecretRef"`
	HTTP01        *v1alpha1IssuerHTTP01         `json:"http01,omitempty"`
	DNS01         json.RawMessage               `json:"dns01,omitempty"`
	Solvers       []v1Solver                    `json:"solvers,omitempty"`
}

type v1alpha1IssuerHTTP01 struct {
	ServiceType corev1.ServiceType `json:"serviceType,omitempty"`
}

type v1alpha1Certificate struct {
	APIVersion string                  `json:"apiVersion"`
	Kind       string                  `json:"kind"`
	Metadata   metav1.ObjectMeta       `json:"metadata"`
	Spec       v1alpha1CertificateSpec `json:"spec"`
	Status     json.RawMessage         `json:"status,omitempty"`
}

type v1alpha1CertificateSpec struct {
	CommonName   string                   `json:"commonName,omitempty"`
	DNSNames     []string                 `json:"dnsNames,omitempty"`
	IPAddresses  []string                 `json:"ipAddresses,omitempty"`
	SecretName   string                   `json:"secretName"`
	IssuerRef    certmanager.IssuerRef    `json:"issuerRef"`
	Duration     *string                  `json:"duration,omitempty"`
	RenewBefore  *string                  `json:"renewBefore,omitempty"`
	KeySize      int                      `json:"keySize,omitempty"`
	KeyAlgorithm string                   `json:"keyAlgorithm,omitempty"`
	KeyEncoding  string                   `json:"keyEncoding,omitempty"`
	ACME         *v1alpha1CertificateACME `json:"acme,omitempty"`

	Organization json.RawMessage `json:"organization,omitempty"`
	IsCA         json.RawMessage `json:"isCA,omitempty"`
	Usages       json.RawMessage `json:"usages,omitempty"`
	URISANs      json.RawMessage `json:"uriSANs,omitempty"`
}

type v1alpha1CertificateACME struct {
	Config []v1alpha1DomainSolverConfig `json:"config"`
}

type v1alpha1DomainSolverConfig struct {
	Domains []string                    `json:"domains"`
	HTTP01  *v1alpha1HTTP01SolverConfig `json:"http01,omitempty"`
	DNS01   json.RawMessage             `json:"dns01,omitempty"`
}

type v1alpha1HTTP01SolverConfig struct {
	// Ingress names an existing Ingress to add the challenge paths to.
	Ingress string `json:"ingress,omitempty"`
	// IngressClass is the kubernetes.io/ingress.class of new Ingresses.
	IngressClass *string `json:"ingressClass,omitempty"`
}

func (c *doc) decodeV1Alpha1(apiVersion, kind string, js []byte) {
	before := c.errCount()
	switch kind {
	case certmanager.KindIssuer, certmanager.KindClusterIssuer:
		var w v1alpha1Issuer
		if !c.strict(js, &w) {
			return
		}
		iss := c.v1alpha1Issuer(kind, &w)
		if iss == nil || !c.checkIssuer(iss) || c.errCount() != before {
			return
		}
		c.add(&Object{Location: c.loc, APIVersion: apiVersion, Kind: kind, Issuer: iss})
	case certmanager.KindCertificate:
		var w v1alpha1Certificate
		if !c.strict(js, &w) {
			return
		}
		cert := c.v1alpha1Certificate(&w)
		if cert == nil || !c.checkCertificate(cert) {
			return
		}
		solvers := c.legacySolvers(cert, w.Spec.ACME)
		if c.errCount() != before {
			return
		}
		c.add(&Object{Location: c.loc, APIVersion: apiVersion, Kind: kind, Certificate: cert, LegacySolvers: solvers})
	default:
		c.fail("kind", fmt.Sprintf("%s %s is not supported: kubectl-acme applies Issuer, ClusterIssuer and Certificate", apiVersion, kind))
	}
}

func (c *doc) v1alpha1Issuer(kind string, w *v1alpha1Issuer) *certmanager.Issuer {
	before := c.errCount()
	for _, f := range []struct {
		name string
		raw  json.RawMessage
	}{{"ca", w.Spec.CA}, {"vault", w.Spec.Vault}, {"selfSigned", w.Spec.SelfSigned}, {"venafi", w.Spec.Venafi}} {
		if present(f.raw) {
			c.fail("spec."+f.name, whyOnlyACME)
		}
	}
	if w.Spec.ACME == nil {
		if c.errCount() == before {
			c.fail("spec.acme", "required: kubectl-acme implements ACME issuers only")
		}
		return nil
	}
	a := w.Spec.ACME
	if present(a.DNS01, "{}") {
		c.fail("spec.acme.dns01", whyDNS01)
	}
	iss := newIssuer(kind, &w.Metadata)
	iss.Spec.ACME = &certmanager.ACMEIssuer{
		Server:              a.Server,
		Email:               a.Email,
		SkipTLSVerify:       a.SkipTLSVerify,
		PrivateKeySecretRef: a.PrivateKey,
		Solvers:             c.v1Solvers("spec.acme.solvers", a.Solvers),
	}
	if a.HTTP01 != nil {
		// `http01: {}` enables HTTP-01 for every name through a new
		// Ingress; a Certificate's acme.config may choose otherwise.
		iss.Spec.ACME.Solvers = append(iss.Spec.ACME.Solvers, certmanager.ACMEChallengeSolver{
			HTTP01: &certmanager.ACMEChallengeSolverHTTP01{Ingress: &certmanager.ACMEChallengeSolverHTTP01Ingress{ServiceType: a.HTTP01.ServiceType}},
		})
	}
	return iss
}

func (c *doc) v1alpha1Certificate(w *v1alpha1Certificate) *certmanager.Certificate {
	s := &w.Spec
	for _, f := range []struct {
		name, why string
		raw       json.RawMessage
		zero      []string
	}{
		{"organization", whySubject, s.Organization, []string{"[]"}},
		{"isCA", whyIsCA, s.IsCA, []string{"false"}},
		{"uriSANs", whyIdentifiers, s.URISANs, []string{"[]"}},
	} {
		if present(f.raw, f.zero...) {
			c.fail("spec."+f.name, f.why)
		}
	}
	cert := newCertificate(&w.Metadata)
	cert.Spec = certmanager.CertificateSpec{
		SecretName:  s.SecretName,
		CommonName:  s.CommonName,
		DNSNames:    s.DNSNames,
		IPAddresses: s.IPAddresses,
		IssuerRef:   s.IssuerRef,
		Duration:    c.duration("spec.duration", s.Duration),
		RenewBefore: c.duration("spec.renewBefore", s.RenewBefore),
	}
	if s.KeySize != 0 || s.KeyAlgorithm != "" || s.KeyEncoding != "" {
		cert.Spec.PrivateKey = &certmanager.CertificatePrivateKey{
			Algorithm: strings.ToUpper(s.KeyAlgorithm),
			Size:      s.KeySize,
			Encoding:  strings.ToUpper(s.KeyEncoding),
		}
	}
	if present(s.Usages, "[]") && json.Unmarshal(s.Usages, &cert.Spec.Usages) != nil {
		c.fail("spec.usages", "want a list of key usages")
	}
	return cert
}

// legacySolvers turns spec.acme.config into solvers selecting their
// domains by name. It returns nil after reporting a problem.
func (c *doc) legacySolvers(cert *certmanager.Certificate, acme *v1alpha1CertificateACME) []certmanager.ACMEChallengeSolver {
	if acme == nil {
		return nil
	}
	before := c.errCount()
	dns, ips := cert.Spec.Identifiers()
	names := map[string]bool{}
	for _, n := range append(dns, ips...) {
		names[n] = true
	}
	where := map[string]string{}
	var out []certmanager.ACMEChallengeSolver
	for i, cfg := range acme.Config {
		p := index("spec.acme.config", i)
		if present(cfg.DNS01) {
			c.fail(p+".dns01", whyDNS01)
			continue
		}
		if cfg.HTTP01 == nil {
			c.fail(p, "http01 is required (kubectl-acme solves HTTP-01 challenges only)")
			continue
		}
		if cfg.HTTP01.Ingress != "" && cfg.HTTP01.IngressClass != nil {
			c.fail(p+".http01", "only one of ingress and ingressClass may be set")
			continue
		}
		if len(cfg.Domains) == 0 {
			c.fail(p+".domains", "required: the names this entry solves")
			continue
		}
		var domains []string
		for j, d := range cfg.Domains {
			dp := index(p+".domains", j)
			n, err := certmanager.NormalizeIP(d)
			if err != nil {
				n, err = certmanager.NormalizeDomain(d)
			}
			switch {
			case err != nil:
				c.fail(dp, err.Error())
			case !names[n]:
				c.fail(dp, fmt.Sprintf("%q is not one of the certificate's names (commonName, dnsNames, ipAddresses)", d))
			case where[n] != "":
				c.fail(dp, fmt.Sprintf("%q is already configured at %s", d, where[n]))
			default:
				where[n] = dp
				domains = append(domains, n)
			}
		}
		in := &certmanager.ACMEChallengeSolverHTTP01Ingress{Name: cfg.HTTP01.Ingress}
		if cfg.HTTP01.IngressClass != nil {
			class := *cfg.HTTP01.IngressClass
			in.Class = &class
		}
		out = append(out, certmanager.ACMEChallengeSolver{
			Selector: &certmanager.CertificateDNSNameSelector{DNSNames: domains},
			HTTP01:   &certmanager.ACMEChallengeSolverHTTP01{Ingress: in},
		})
	}
	if c.errCount() != before {
		return nil
	}
	if out == nil {
		out = []certmanager.ACMEChallengeSolver{}
	}
	return out
}

// MergeSolvers puts a legacy Certificate's solvers (see
// Object.LegacySolvers) in front of the Issuer's, as cert-manager v0.11
// asked users to do by hand, and returns how many it added. A solver the
// Issuer already has is not added twice. A new solver inherits the
// serviceType of the Issuer's catch-all solver (the legacy http01 field).
// It fails when the Issuer already selects one of the names by dnsNames
// with a different configuration.
func MergeSolvers(iss *certmanager.Issuer, solvers []certmanager.ACMEChallengeSolver) (int, error) {
	a := iss.Spec.ACME
	if a == nil {
		return 0, fmt.Errorf("issuer %q has no acme section", iss.Name)
	}
	var serviceType corev1.ServiceType
	for _, sv := range a.Solvers {
		if sv.Selector == nil && sv.HTTP01 != nil && sv.HTTP01.Ingress != nil {
			serviceType = sv.HTTP01.Ingress.ServiceType
			break
		}
	}
	var add []certmanager.ACMEChallengeSolver
	for _, sv := range solvers {
		in := *sv.HTTP01.Ingress
		if in.ServiceType == "" {
			in.ServiceType = serviceType
		}
		sv.HTTP01 = &certmanager.ACMEChallengeSolverHTTP01{Ingress: &in}
		dup := false
		for i, have := range a.Solvers {
			if reflect.DeepEqual(have, sv) {
				dup = true
				break
			}
			if have.Selector == nil || have.HTTP01 == nil || reflect.DeepEqual(have.HTTP01, sv.HTTP01) {
				continue
			}
			for _, n := range sv.Selector.DNSNames {
				for _, hn := range have.Selector.DNSNames {
					if n == hn {
						return 0, fmt.Errorf("issuer %q already solves %s with a different http01 configuration (spec.acme.solvers[%d])", iss.Name, n, i)
					}
				}
			}
		}
		if !dup {
			add = append(add, sv)
		}
	}
	a.Solvers = append(add, a.Solvers...)
	return len(add), nil
}
