package manifest

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
)

// Annotations cert-manager's ingress-shim reads on an Ingress, and the
// ones it sets on the Certificates it makes from them.
const (
	AnnotationIssuer          = "cert-manager.io/issuer"
	AnnotationClusterIssuer   = "cert-manager.io/cluster-issuer"
	AnnotationIssuerKind      = "cert-manager.io/issuer-kind"
	AnnotationIssuerGroup     = "cert-manager.io/issuer-group"
	AnnotationCommonName      = "cert-manager.io/common-name"
	AnnotationAltNames        = "cert-manager.io/alt-names"
	AnnotationIPSANs          = "cert-manager.io/ip-sans"
	AnnotationDuration        = "cert-manager.io/duration"
	AnnotationRenewBefore     = "cert-manager.io/renew-before"
	AnnotationRenewBeforePct  = "cert-manager.io/renew-before-percentage"
	AnnotationKeyAlgorithm    = "cert-manager.io/private-key-algorithm"
	AnnotationKeyEncoding     = "cert-manager.io/private-key-encoding"
	AnnotationKeySize         = "cert-manager.io/private-key-size"
	AnnotationKeyRotation     = "cert-manager.io/private-key-rotation-policy"
	AnnotationSecretTemplate  = "cert-manager.io/secret-template"
	AnnotationEditInPlace     = "acme.cert-manager.io/http01-edit-in-place"
	AnnotationHTTP01Class     = "acme.cert-manager.io/http01-ingress-class"
	AnnotationHTTP01ClassName = "acme.cert-manager.io/http01-ingress-ingressclassname"
)

// unsupportedIngressAnnotations are ingress-shim annotations kubectl-acme
// cannot honour, with why.
var unsupportedIngressAnnotations = map[string]string{
	"cert-manager.io/email-sans":                  whyIdentifiers,
	"cert-manager.io/uri-sans":                    whyIdentifiers,
	"cert-manager.io/usages":                      whyUsages,
	"cert-manager.io/revision-history-limit":      whyRevisionLimit,
	"cert-manager.io/subject-organizations":       whySubject,
	"cert-manager.io/subject-organizationalunits": whySubject,
	"cert-manager.io/subject-countries":           whySubject,
	"cert-manager.io/subject-provinces":           whySubject,
	"cert-manager.io/subject-localities":          whySubject,
	"cert-manager.io/subject-streetaddresses":     whySubject,
	"cert-manager.io/subject-postalcodes":         whySubject,
	"cert-manager.io/subject-serialnumber":        whySubject,
}

// FromIngress makes the Certificates cert-manager's ingress-shim would
// make for ing: one per spec.tls entry, named after its secretName, for its
// hosts, with the issuer from issuer if given, else from the Ingress's
// cert-manager.io/issuer or cert-manager.io/cluster-issuer annotation, and
// the other cert-manager.io annotations applied. Every problem is reported.
func FromIngress(ing *networkingv1.Ingress, issuer *certmanager.IssuerRef) ([]*certmanager.Certificate, error) {
	var errs []error
	fail := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("ingress %s/%s: %s: %s", ing.Namespace, ing.Name, path, fmt.Sprintf(format, args...)))
	}
	ann := ing.Annotations
	annPath := func(k string) string { return "metadata.annotations[" + k + "]" }

	ref := certmanager.IssuerRef{Kind: certmanager.KindIssuer, Group: certmanager.Group}
	switch name, cluster := ann[AnnotationIssuer], ann[AnnotationClusterIssuer]; {
	case issuer != nil:
		ref = *issuer
	case name != "" && cluster != "":
		fail("metadata.annotations", "both %s and %s are set; keep one", AnnotationIssuer, AnnotationClusterIssuer)
	case name != "":
		ref.Name = name
		if k := ann[AnnotationIssuerKind]; k != "" {
			ref.Kind = k
		}
	case cluster != "":
		ref.Name, ref.Kind = cluster, certmanager.KindClusterIssuer
	default:
		fail("metadata.annotations", "no issuer: give --issuer, or annotate the Ingress with %s or %s", AnnotationIssuer, AnnotationClusterIssuer)
	}
	if issuer == nil {
		switch ref.Kind {
		case certmanager.KindIssuer, certmanager.KindClusterIssuer:
		default:
			fail(annPath(AnnotationIssuerKind), "%q: use Issuer or ClusterIssuer", ref.Kind)
		}
		if g := ann[AnnotationIssuerGroup]; g != "" && g != certmanager.Group {
			fail(annPath(AnnotationIssuerGroup), "%q: external issuers are not supported", g)
		}
	}

	// Settings shared by every Certificate of the Ingress.
	var tmpl certmanager.CertificateSpec
	var certAnn map[string]string
	keys := make([]string, 0, len(ann))
	for k := range ann {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := ann[k]
		if why, ok := unsupportedIngressAnnotations[k]; ok {
			fail(annPath(k), "%s", why)
			continue
		}
		switch k {
		case AnnotationCommonName:
			tmpl.CommonName = v
		case AnnotationAltNames:
			tmpl.DNSNames = splitList(v)
		case AnnotationIPSANs:
			tmpl.IPAddresses = splitList(v)
		case AnnotationDuration, AnnotationRenewBefore:
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				fail(annPath(k), "%q is not a positive duration like 2160h", v)
				continue
			}
			if k == AnnotationDuration {
				tmpl.Duration = &metav1.Duration{Duration: d}
			} else {
				tmpl.RenewBefore = &metav1.Duration{Duration: d}
			}
		case AnnotationRenewBeforePct:
			p, err := strconv.Atoi(v)
			if err != nil || p <= 0 || p >= 100 {
				fail(annPath(k), "%q: want a percentage between 1 and 99", v)
				continue
			}
			p32 := int32(p)
			tmpl.RenewBeforePercentage = &p32
		case AnnotationKeyAlgorithm, AnnotationKeyEncoding, AnnotationKeyRotation, AnnotationKeySize:
			if tmpl.PrivateKey == nil {
				tmpl.PrivateKey = &certmanager.CertificatePrivateKey{}
			}
			switch k {
			case AnnotationKeyAlgorithm:
				tmpl.PrivateKey.Algorithm = strings.ToUpper(v)
			case AnnotationKeyEncoding:
				tmpl.PrivateKey.Encoding = strings.ToUpper(v)
			case AnnotationKeyRotation:
				tmpl.PrivateKey.RotationPolicy = v
			case AnnotationKeySize:
				n, err := strconv.Atoi(v)
				if err != nil {
					fail(annPath(k), "%q is not a number", v)
					continue
				}
				tmpl.PrivateKey.Size = n
			}
		case AnnotationSecretTemplate:
			var t certmanager.CertificateSecretTemplate
			dec := json.NewDecoder(strings.NewReader(v))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&t); err != nil {
				fail(annPath(k), "want JSON like {\"labels\": {...}, \"annotations\": {...}}: %v", err)
				continue
			}
			tmpl.SecretTemplate = &t
		case AnnotationEditInPlace:
			if v == "true" {
				certAnn = setAnn(certAnn, certmanager.AnnotationOverrideIngressName, ing.Name)
			}
		case AnnotationHTTP01Class:
			if v != "" {
				certAnn = setAnn(certAnn, certmanager.AnnotationOverrideIngressClass, v)
			}
		case AnnotationHTTP01ClassName:
			if v != "" {
				certAnn = setAnn(certAnn, certmanager.AnnotationOverrideIngressClassName, v)
			}
		}
	}
	if tmpl.PrivateKey != nil {
		probe := certmanager.CertificateSpec{SecretName: "x", IssuerRef: certmanager.IssuerRef{Name: "x"}, DNSNames: []string{"a.example"}, PrivateKey: tmpl.PrivateKey}
		if err := certmanager.ValidateCertificateSpec(&probe); err != nil {
			fail("metadata.annotations", "private key: %v", err)
		}
	}
	if err := checkOverrides(certAnn); err != nil {
		fail("metadata.annotations", "%v", err)
	}

	if len(ing.Spec.TLS) == 0 {
		fail("spec.tls", "no TLS entries: nothing to issue (cert-manager makes one Certificate per spec.tls entry)")
	}
	var certs []*certmanager.Certificate
	seen := map[string]string{}
	for i, tls := range ing.Spec.TLS {
		p := index("spec.tls", i)
		if tls.SecretName == "" {
			fail(p+".secretName", "required: the Secret, which also names the Certificate")
			continue
		}
		if prev, ok := seen[tls.SecretName]; ok {
			fail(p+".secretName", "%q is also used by %s; cert-manager makes one Certificate per Secret, so merge the hosts into one entry", tls.SecretName, prev)
			continue
		}
		seen[tls.SecretName] = p
		if err := certmanager.ValidateName("certificate", tls.SecretName); err != nil {
			fail(p+".secretName", "%v (kubectl-acme names the Certificate after the Secret)", err)
			continue
		}
		if len(tls.Hosts) == 0 && len(tmpl.DNSNames) == 0 && len(tmpl.IPAddresses) == 0 {
			fail(p+".hosts", "no hosts")
			continue
		}
		cert := &certmanager.Certificate{}
		cert.APIVersion, cert.Kind = certmanager.GroupVersion, certmanager.KindCertificate
		cert.Name, cert.Namespace = tls.SecretName, ing.Namespace
		cert.Annotations = cloneMap(certAnn)
		cert.Spec = tmpl
		cert.Spec.SecretName = tls.SecretName
		cert.Spec.IssuerRef = ref
		cert.Spec.DNSNames = append(append([]string(nil), tls.Hosts...), tmpl.DNSNames...)
		cert.Spec.IPAddresses = append([]string(nil), tmpl.IPAddresses...)
		if cert.Spec.CommonName != "" && !contains(cert.Spec.DNSNames, cert.Spec.CommonName) && !contains(cert.Spec.IPAddresses, cert.Spec.CommonName) {
			cert.Spec.DNSNames = append(cert.Spec.DNSNames, cert.Spec.CommonName)
		}
		if err := certmanager.ValidateCertificateSpec(&cert.Spec); err != nil {
			fail(p, "%v", err)
			continue
		}
		certs = append(certs, cert)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return certs, nil
}

// checkOverrides rejects more than one solver override annotation, as
// cert-manager does.
func checkOverrides(ann map[string]string) error {
	_, err := certmanager.IngressOverrides(certmanager.ACMEChallengeSolver{}, ann)
	return err
}

func setAnn(m map[string]string, k, v string) map[string]string {
	if m == nil {
		m = map[string]string{}
	}
	m[k] = v
	return m
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
