package manifest

import (
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
)

// checkIssuer validates a converted Issuer, reporting each problem with
// its path; it reports whether there was none.
func (c *doc) checkIssuer(iss *certmanager.Issuer) bool {
	before := c.errCount()
	what := "issuer"
	if iss.IsCluster() {
		what = "clusterissuer"
	}
	if err := certmanager.ValidateName(what, iss.Name); err != nil {
		c.fail("metadata.name", err.Error())
	}
	if v, ok := iss.Annotations[certmanager.AnnotationIngressPathType]; ok {
		if err := certmanager.ValidateIngressPathType("value", v); err != nil {
			c.fail("metadata.annotations["+certmanager.AnnotationIngressPathType+"]", err.Error())
		}
	}
	a := iss.Spec.ACME
	const p = "spec.acme"
	if a.Server == "" {
		c.fail(p+".server", "required: the ACME directory URL")
	} else if u, err := url.Parse(a.Server); err != nil || u.Scheme != "https" || u.Host == "" {
		c.fail(p+".server", fmt.Sprintf("%q: want an https:// ACME directory URL", a.Server))
	}
	if err := certmanager.ValidateEmail(a.Email); err != nil {
		c.fail(p+".email", err.Error())
	}
	c.secretRef(p+".privateKeySecretRef", a.PrivateKeySecretRef)
	if eab := a.ExternalAccountBinding; eab != nil {
		if eab.KeyID == "" {
			c.fail(p+".externalAccountBinding.keyID", "required: the key ID your CA issued")
		}
		c.secretRef(p+".externalAccountBinding.keySecretRef", eab.Key)
		switch eab.KeyAlgorithm {
		case "", "HS256":
		default:
			c.fail(p+".externalAccountBinding.keyAlgorithm", fmt.Sprintf("%q: kubectl-acme signs the binding with HS256 only (cert-manager ignores this deprecated field too); remove it", eab.KeyAlgorithm))
		}
	}
	for i, sv := range a.Solvers {
		c.checkSolver(index(p+".solvers", i), &sv)
	}
	return c.errCount() == before
}

func (c *doc) secretRef(path string, ref certmanager.SecretKeySelector) {
	if ref.Name == "" {
		c.fail(path+".name", "required: the Secret's name")
	} else if errs := validation.IsDNS1123Subdomain(ref.Name); len(errs) > 0 {
		c.fail(path+".name", fmt.Sprintf("%q is not a valid Secret name: %s", ref.Name, strings.Join(errs, "; ")))
	}
	if ref.Key != "" {
		if errs := validation.IsConfigMapKey(ref.Key); len(errs) > 0 {
			c.fail(path+".key", fmt.Sprintf("%q is not a valid Secret key: %s", ref.Key, strings.Join(errs, "; ")))
		}
	}
}

func (c *doc) checkSolver(p string, sv *certmanager.ACMEChallengeSolver) {
	if sel := sv.Selector; sel != nil {
		for i, n := range sel.DNSNames {
			if n == "" {
				c.fail(index(p+".selector.dnsNames", i), "empty name")
			}
		}
		for i, z := range sel.DNSZones {
			if strings.Trim(z, ".") == "" {
				c.fail(index(p+".selector.dnsZones", i), "empty zone")
			}
		}
		c.labels(p+".selector.matchLabels", sel.MatchLabels)
	}
	if rt := sv.HTTP01.GatewayHTTPRoute; rt != nil {
		c.checkHTTPRouteSolver(p+".http01.gatewayHTTPRoute", rt)
		return
	}
	in := sv.HTTP01.Ingress
	ip := p + ".http01.ingress"
	set := 0
	for _, b := range []bool{in.Class != nil, in.IngressClassName != nil, in.Name != ""} {
		if b {
			set++
		}
	}
	if set > 1 {
		c.fail(ip, "only one of class, ingressClassName and name may be set")
	}
	if in.IngressClassName != nil {
		if errs := validation.IsDNS1123Subdomain(*in.IngressClassName); len(errs) > 0 {
			c.fail(ip+".ingressClassName", fmt.Sprintf("%q: %s", *in.IngressClassName, strings.Join(errs, "; ")))
		}
	}
	if in.Class != nil && *in.Class == "" {
		c.fail(ip+".class", "empty class: remove the field to use the cluster's default class")
	}
	if in.Name != "" {
		if errs := validation.IsDNS1123Subdomain(in.Name); len(errs) > 0 {
			c.fail(ip+".name", fmt.Sprintf("%q is not a valid Ingress name: %s", in.Name, strings.Join(errs, "; ")))
		}
	}
	c.checkWorkload(ip, in.ServiceType, in.PodTemplate)
	if t := in.IngressTemplate; t != nil {
		if in.Name != "" {
			c.fail(ip+".ingressTemplate", "has no effect with name: the existing Ingress is not relabelled")
		}
		c.labels(ip+".ingressTemplate.metadata.labels", t.Labels)
		c.annotations(ip+".ingressTemplate.metadata.annotations", t.Annotations)
	}
}

// checkWorkload checks what both kinds of solver say about the pod and
// Service.
func (c *doc) checkWorkload(p string, st corev1.ServiceType, t *certmanager.ACMEChallengeSolverHTTP01IngressPodTemplate) {
	switch st {
	case "", corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort:
	default:
		c.fail(p+".serviceType", fmt.Sprintf("%q: use ClusterIP or NodePort", st))
	}
	if t != nil {
		c.labels(p+".podTemplate.metadata.labels", t.Labels)
		c.annotations(p+".podTemplate.metadata.annotations", t.Annotations)
		c.labels(p+".podTemplate.spec.nodeSelector", t.Spec.NodeSelector)
	}
}

// checkHTTPRouteSolver checks what the API server would refuse in the
// HTTPRoute, before any order.
func (c *doc) checkHTTPRouteSolver(p string, rt *certmanager.ACMEChallengeSolverHTTP01GatewayHTTPRoute) {
	// No parentRefs is fine since cert-manager 1.20: a Certificate's
	// acme.cert-manager.io/http01-parentref* annotations (which the
	// gateway-shim sets) name the parent; certmanager.SolversFor checks
	// that every Certificate ends up with one.
	for i, pr := range rt.ParentRefs {
		pp := index(p+".parentRefs", i)
		if pr.Name == "" {
			c.fail(pp+".name", "required: the Gateway's name")
		} else if errs := validation.IsDNS1123Subdomain(string(pr.Name)); len(errs) > 0 {
			c.fail(pp+".name", fmt.Sprintf("%q is not a valid Gateway name: %s", pr.Name, strings.Join(errs, "; ")))
		}
		if pr.Namespace != nil {
			if errs := validation.IsDNS1123Label(string(*pr.Namespace)); len(errs) > 0 {
				c.fail(pp+".namespace", fmt.Sprintf("%q is not a valid namespace: %s", *pr.Namespace, strings.Join(errs, "; ")))
			}
		}
	}
	c.labels(p+".labels", rt.Labels)
	c.checkWorkload(p, rt.ServiceType, rt.PodTemplate)
}

func (c *doc) labels(path string, m map[string]string) {
	for k, v := range m {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			c.fail(path, fmt.Sprintf("key %q: %s", k, strings.Join(errs, "; ")))
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			c.fail(joinPath(path, k), fmt.Sprintf("value %q: %s", v, strings.Join(errs, "; ")))
		}
	}
}

func (c *doc) annotations(path string, m map[string]string) {
	for k := range m {
		if errs := validation.IsQualifiedName(strings.ToLower(k)); len(errs) > 0 {
			c.fail(path, fmt.Sprintf("key %q: %s", k, strings.Join(errs, "; ")))
		}
	}
}

// probeRouteSolver is a gatewayHTTPRoute solver without parents, to check
// a Certificate's parentRef annotations on their own.
var probeRouteSolver = certmanager.ACMEChallengeSolver{HTTP01: &certmanager.ACMEChallengeSolverHTTP01{GatewayHTTPRoute: &certmanager.ACMEChallengeSolverHTTP01GatewayHTTPRoute{}}}

// checkCertificate validates a converted Certificate and normalizes its
// names; it reports whether there was no problem.
func (c *doc) checkCertificate(cert *certmanager.Certificate) bool {
	before := c.errCount()
	if err := certmanager.ValidateName("certificate", cert.Name); err != nil {
		c.fail("metadata.name", err.Error()+" (kubectl-acme names its ConfigMap and solver objects after it)")
	}
	c.labels("metadata.labels", cert.Labels)
	if err := checkOverrides(cert.Annotations); err != nil {
		c.fail("metadata.annotations", err.Error())
	}
	if _, err := certmanager.ParentRefOverrides(probeRouteSolver, cert.Annotations, cert.Namespace); err != nil && !errors.Is(err, certmanager.ErrNoParentRefs) {
		c.fail("metadata.annotations", err.Error())
	}
	s := &cert.Spec
	for i, u := range s.Usages {
		if err := certmanager.ValidateUsage(u); err != nil {
			c.fail(index("spec.usages", i), err.Error())
		}
	}
	if s.SecretName == "" {
		c.fail("spec.secretName", "required: the Secret to store the certificate in")
	} else if errs := validation.IsDNS1123Subdomain(s.SecretName); len(errs) > 0 {
		c.fail("spec.secretName", fmt.Sprintf("%q is not a valid Secret name: %s", s.SecretName, strings.Join(errs, "; ")))
	}
	ref := s.IssuerRef
	if ref.Name == "" {
		c.fail("spec.issuerRef.name", "required: the Issuer or ClusterIssuer to use")
	}
	switch ref.Kind {
	case "", certmanager.KindIssuer, certmanager.KindClusterIssuer:
	default:
		c.fail("spec.issuerRef.kind", fmt.Sprintf("%q: use Issuer or ClusterIssuer", ref.Kind))
	}
	switch ref.Group {
	case "", certmanager.Group:
	default:
		c.fail("spec.issuerRef.group", fmt.Sprintf("%q: external issuers are not supported; kubectl-acme is itself an ACME issuer (group %s)", ref.Group, certmanager.Group))
	}

	seen := map[string]string{}
	names := 0
	for i, d := range s.DNSNames {
		p := index("spec.dnsNames", i)
		if net.ParseIP(d) != nil {
			c.fail(p, fmt.Sprintf("%q is an IP address: list it in ipAddresses", d))
			continue
		}
		n, err := certmanager.NormalizeDomain(d)
		if err != nil {
			c.fail(p, err.Error())
			continue
		}
		if prev, ok := seen[n]; ok {
			c.fail(p, fmt.Sprintf("%q is already given at %s", d, prev))
			continue
		}
		seen[n] = p
		s.DNSNames[i] = n
		names++
	}
	for i, ip := range s.IPAddresses {
		p := index("spec.ipAddresses", i)
		n, err := certmanager.NormalizeIP(ip)
		if err != nil {
			c.fail(p, err.Error())
			continue
		}
		if prev, ok := seen[n]; ok {
			c.fail(p, fmt.Sprintf("%q is already given at %s", ip, prev))
			continue
		}
		seen[n] = p
		s.IPAddresses[i] = n
		names++
	}
	if cn := s.CommonName; cn != "" {
		n, err := certmanager.NormalizeIP(cn)
		if err != nil {
			n, err = certmanager.NormalizeDomain(cn)
		}
		switch {
		case len(cn) > 64:
			c.fail("spec.commonName", fmt.Sprintf("%q is longer than 64 bytes, the X.509 limit", cn))
		case err != nil:
			c.fail("spec.commonName", err.Error())
		default:
			// cert-manager orders a commonName missing from the names as
			// one more name; so does kubectl-acme.
			s.CommonName = n
			if _, ok := seen[n]; !ok {
				if net.ParseIP(n) != nil {
					s.IPAddresses = append(s.IPAddresses, n)
				} else {
					s.DNSNames = append(s.DNSNames, n)
				}
				names++
			}
		}
	}
	if names == 0 && c.errCount() == before {
		c.fail("spec", "at least one of commonName, dnsNames and ipAddresses is required")
	}
	if names > 100 {
		c.fail("spec", fmt.Sprintf("%d names: ACME CAs accept at most 100 per certificate", names))
	}
	if pk := s.PrivateKey; pk != nil {
		probe := certmanager.CertificateSpec{SecretName: "x", IssuerRef: certmanager.IssuerRef{Name: "x"}, DNSNames: []string{"a.example"}, PrivateKey: pk}
		if err := certmanager.ValidateCertificateSpec(&probe); err != nil {
			c.fail("spec.privateKey", err.Error())
		}
	}
	if d := s.Duration; d != nil && d.Duration <= 0 {
		c.fail("spec.duration", "must be positive")
	}
	if s.RenewBefore != nil {
		if s.RenewBefore.Duration <= 0 {
			c.fail("spec.renewBefore", "must be positive")
		}
		if s.Duration != nil && s.RenewBefore.Duration >= s.Duration.Duration {
			c.fail("spec.renewBefore", fmt.Sprintf("%s is not shorter than duration %s", s.RenewBefore.Duration, s.Duration.Duration))
		}
		if s.RenewBeforePercentage != nil {
			c.fail("spec.renewBeforePercentage", "set either renewBefore or renewBeforePercentage, not both")
		}
	}
	if p := s.RenewBeforePercentage; p != nil && (*p <= 0 || *p >= 100) {
		c.fail("spec.renewBeforePercentage", fmt.Sprintf("%d: want a percentage between 1 and 99", *p))
	}
	if t := s.SecretTemplate; t != nil {
		c.labels("spec.secretTemplate.labels", t.Labels)
		c.annotations("spec.secretTemplate.annotations", t.Annotations)
	}
	formats := map[string]bool{}
	for i, f := range s.AdditionalOutputFormats {
		p := index("spec.additionalOutputFormats", i) + ".type"
		switch f.Type {
		case certmanager.OutputFormatDER, certmanager.OutputFormatCombinedPEM:
		default:
			c.fail(p, fmt.Sprintf("%q: use DER or CombinedPEM", f.Type))
		}
		if formats[f.Type] {
			c.fail(p, fmt.Sprintf("%s is given twice", f.Type))
		}
		formats[f.Type] = true
	}
	return c.errCount() == before
}

// duration parses a Go duration string such as 2160h.
func (c *doc) duration(path string, s *string) *metav1.Duration {
	if s == nil {
		return nil
	}
	d, err := time.ParseDuration(*s)
	if err != nil {
		c.fail(path, fmt.Sprintf("%q is not a duration: use hours, minutes and seconds like 2160h or 720h30m", *s))
		return nil
	}
	return &metav1.Duration{Duration: d}
}

// base64 decodes a caBundle: base64 of PEM certificates.
func (c *doc) base64(path string, s *string) []byte {
	if s == nil || *s == "" {
		return nil
	}
	b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(*s), ""))
	if err != nil {
		c.fail(path, "not base64: caBundle holds PEM CA certificates, base64-encoded (base64 -w0 ca.pem)")
		return nil
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		c.fail(path, "holds no PEM certificate: caBundle holds PEM CA certificates, base64-encoded (base64 -w0 ca.pem)")
		return nil
	}
	return b
}
