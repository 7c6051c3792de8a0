package manifest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
)

// Annotations cert-manager's ingress-shim and gateway-shim read on an
// Ingress, Gateway or ListenerSet (pkg/apis/certmanager/v1/types.go,
// pkg/apis/acme/v1/types.go), and the ones they set on the Certificates
// they make from them.
const (
	AnnotationIssuer          = "cert-manager.io/issuer"
	AnnotationClusterIssuer   = "cert-manager.io/cluster-issuer"
	AnnotationIssuerKind      = "cert-manager.io/issuer-kind"
	AnnotationIssuerGroup     = "cert-manager.io/issuer-group"
	AnnotationCommonName      = "cert-manager.io/common-name"
	AnnotationAltNames        = "cert-manager.io/alt-names"
	AnnotationIPSANs          = "cert-manager.io/ip-sans"
	AnnotationURISANs         = "cert-manager.io/uri-sans"
	AnnotationEmailSANs       = "cert-manager.io/email-sans"
	AnnotationDuration        = "cert-manager.io/duration"
	AnnotationRenewBefore     = "cert-manager.io/renew-before"
	AnnotationRenewBeforePct  = "cert-manager.io/renew-before-percentage"
	AnnotationUsages          = "cert-manager.io/usages"
	AnnotationRevisionLimit   = "cert-manager.io/revision-history-limit"
	AnnotationKeyAlgorithm    = "cert-manager.io/private-key-algorithm"
	AnnotationKeyEncoding     = "cert-manager.io/private-key-encoding"
	AnnotationKeySize         = "cert-manager.io/private-key-size"
	AnnotationKeyRotation     = "cert-manager.io/private-key-rotation-policy"
	AnnotationSecretTemplate  = "cert-manager.io/secret-template"
	AnnotationIgnoreListeners = "cert-manager.io/ignore-tls-listeners"
	AnnotationEditInPlace     = "acme.cert-manager.io/http01-edit-in-place"
	AnnotationHTTP01Class     = "acme.cert-manager.io/http01-ingress-class"
	AnnotationHTTP01ClassName = "acme.cert-manager.io/http01-ingress-ingressclassname"
	AnnotationParentFallback  = "acme.cert-manager.io/http01-parentreffallback"
	// AnnotationTLSACME asks for a certificate from the default issuer
	// (cert-manager's --default-issuer-name), on Ingresses only.
	AnnotationTLSACME = "kubernetes.io/tls-acme"
	// LegacyAnnotationPrefix is what cert-manager before v0.11 read
	// (certmanager.k8s.io/issuer, ...); v0.11 renamed the group.
	LegacyAnnotationPrefix = "certmanager.k8s.io/"
)

// legacyAnnotations maps the certmanager.k8s.io annotations of cert-manager
// v0.5 to v0.10 (docs/reference/ingress-shim.rst on the release-0.10
// branch) to today's names.
var legacyAnnotations = map[string]string{
	"certmanager.k8s.io/issuer":                    AnnotationIssuer,
	"certmanager.k8s.io/cluster-issuer":            AnnotationClusterIssuer,
	"certmanager.k8s.io/issuer-kind":               AnnotationIssuerKind,
	"certmanager.k8s.io/common-name":               AnnotationCommonName,
	"certmanager.k8s.io/alt-names":                 AnnotationAltNames,
	"certmanager.k8s.io/ip-sans":                   AnnotationIPSANs,
	"certmanager.k8s.io/duration":                  AnnotationDuration,
	"certmanager.k8s.io/renew-before":              AnnotationRenewBefore,
	"certmanager.k8s.io/acme-http01-edit-in-place": AnnotationEditInPlace,
	"certmanager.k8s.io/acme-http01-ingress-class": AnnotationHTTP01Class,
	"certmanager.k8s.io/acme-challenge-type":       "",
	"certmanager.k8s.io/acme-dns01-provider":       "",
}

// ShimOptions are what cert-manager's controller flags give its shims.
type ShimOptions struct {
	// DefaultIssuer is the issuer of an Ingress that asks with
	// kubernetes.io/tls-acme: "true" and names none (cert-manager's
	// --default-issuer-name, --default-issuer-kind, --default-issuer-group).
	DefaultIssuer *certmanager.IssuerRef
}

// shimEntry is one Secret an Ingress-like object asks for: an Ingress's
// spec.tls entry or the certificateRefs of Gateway listeners.
type shimEntry struct {
	path       string // of the entry, for messages
	secretName string
	hosts      []string
	hostPaths  []string
}

// shim makes Certificates the way cert-manager's certificate-shim does
// (pkg/controller/certificate-shim/sync.go buildCertificates, helper.go
// translateAnnotations), reporting each problem with fail and each
// conversion with note.
type shim struct {
	kind, name, namespace string
	labels, ann           map[string]string
	// issuer, when set, is the issuer given on the command line; it wins
	// over the annotations.
	issuer *certmanager.IssuerRef
	opts   ShimOptions
	fail   func(path, reason string)
	note   func(string)
}

func annPath(k string) string { return "metadata.annotations[" + k + "]" }

// wants (after readLegacy) reports whether the object asks for certificates: cert-manager
// syncs only objects with an issuer annotation, or (Ingresses) a true
// kubernetes.io/tls-acme.
func (s *shim) wants() bool {
	if s.issuer != nil {
		return true
	}
	if _, ok := s.ann[AnnotationIssuer]; ok {
		return true
	}
	if _, ok := s.ann[AnnotationClusterIssuer]; ok {
		return true
	}
	if s.kind == "Ingress" {
		b, _ := strconv.ParseBool(s.ann[AnnotationTLSACME])
		return b
	}
	return false
}

// readLegacy renames certmanager.k8s.io annotations to today's, noting
// each; a current annotation given too wins.
func (s *shim) readLegacy() {
	var keys []string
	for k := range s.ann {
		if strings.HasPrefix(k, LegacyAnnotationPrefix) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return
	}
	sort.Strings(keys)
	ann := cloneMap(s.ann)
	for _, k := range keys {
		v := ann[k]
		to, known := legacyAnnotations[k]
		switch {
		case k == "certmanager.k8s.io/acme-challenge-type":
			if v != "http01" {
				s.fail(annPath(k), fmt.Sprintf("%q: kubectl-acme solves HTTP-01 challenges only (no DNS-01)", v))
			}
		case k == "certmanager.k8s.io/acme-dns01-provider":
			s.fail(annPath(k), "DNS-01 is not supported: kubectl-acme solves HTTP-01 challenges only")
		case !known || to == "":
			s.fail(annPath(k), "not an annotation cert-manager ever read on an "+s.kind)
		case ann[to] != "":
			s.note(fmt.Sprintf("%s %s: %s ignored: %s is set too", s.kind, s.name, k, to))
		default:
			ann[to] = v
			s.note(fmt.Sprintf("%s %s: legacy annotation %s read as %s (cert-manager v0.11 renamed the certmanager.k8s.io annotations)", s.kind, s.name, k, to))
		}
	}
	s.ann = ann
}

// issuerRef picks the issuer as cert-manager's issuerForIngressLike does.
func (s *shim) issuerRef() (certmanager.IssuerRef, bool) {
	if s.issuer != nil {
		return *s.issuer, true
	}
	ref := certmanager.IssuerRef{Kind: certmanager.KindIssuer, Group: certmanager.Group}
	name, hasName := s.ann[AnnotationIssuer]
	cluster, hasCluster := s.ann[AnnotationClusterIssuer]
	kind, hasKind := s.ann[AnnotationIssuerKind]
	group, hasGroup := s.ann[AnnotationIssuerGroup]
	ok := true
	switch {
	case hasName && hasCluster:
		s.fail("metadata.annotations", fmt.Sprintf("both %s and %s are set; keep one", AnnotationIssuer, AnnotationClusterIssuer))
		return ref, false
	case hasName:
		ref.Name = name
	case hasCluster:
		ref.Name, ref.Kind = cluster, certmanager.KindClusterIssuer
		if hasKind || hasGroup {
			s.fail("metadata.annotations", fmt.Sprintf("%s cannot be combined with %s or %s", AnnotationClusterIssuer, AnnotationIssuerKind, AnnotationIssuerGroup))
			ok = false
		}
	case s.opts.DefaultIssuer != nil:
		ref = *s.opts.DefaultIssuer
	default:
		s.fail(annPath(AnnotationTLSACME), "asks for a certificate from cert-manager's default issuer (its --default-issuer-name flag): give --default-issuer-name NAME (and --default-issuer-kind ClusterIssuer), or annotate with "+AnnotationIssuer+" or "+AnnotationClusterIssuer)
		return ref, false
	}
	if ref.Name == "" {
		s.fail("metadata.annotations", "the issuer annotation is empty: name the Issuer or ClusterIssuer")
		ok = false
	}
	if hasKind {
		ref.Kind = kind
	}
	if hasGroup {
		ref.Group = group
	}
	switch ref.Kind {
	case certmanager.KindIssuer, certmanager.KindClusterIssuer:
	default:
		s.fail(annPath(AnnotationIssuerKind), fmt.Sprintf("%q: use Issuer or ClusterIssuer", ref.Kind))
		ok = false
	}
	if ref.Group != "" && ref.Group != certmanager.Group {
		s.fail(annPath(AnnotationIssuerGroup), fmt.Sprintf("%q: external issuers are not supported; kubectl-acme is itself an ACME issuer (group %s)", ref.Group, certmanager.Group))
		ok = false
	}
	return ref, ok
}

// template reads the annotations every Certificate of the object shares,
// as translateAnnotations and setIssuerSpecificConfig do.
func (s *shim) template() (certmanager.CertificateSpec, map[string]string) {
	var tmpl certmanager.CertificateSpec
	var certAnn map[string]string
	keys := make([]string, 0, len(s.ann))
	for k := range s.ann {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := s.ann[k]
		switch {
		case k == AnnotationEmailSANs || k == AnnotationURISANs:
			s.fail(annPath(k), whyIdentifiers)
		case strings.HasPrefix(k, "cert-manager.io/subject-"):
			s.fail(annPath(k), whySubject)
		}
		switch k {
		case AnnotationCommonName:
			if len(v) > 64 {
				s.fail(annPath(k), "longer than 64 bytes, the X.509 limit")
				continue
			}
			tmpl.CommonName = v
		case AnnotationAltNames:
			tmpl.DNSNames = splitList(v)
		case AnnotationIPSANs:
			for _, ip := range splitList(v) {
				if net.ParseIP(ip) == nil {
					s.fail(annPath(k), fmt.Sprintf("%q is not an IP address", ip))
					continue
				}
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			}
		case AnnotationDuration, AnnotationRenewBefore:
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				s.fail(annPath(k), fmt.Sprintf("%q is not a positive duration like 2160h", v))
				continue
			}
			// cert-manager's minimums (MinimumCertificateDuration,
			// MinimumRenewBefore in pkg/apis/certmanager/v1).
			if k == AnnotationDuration && d < time.Hour {
				s.fail(annPath(k), fmt.Sprintf("%s: cert-manager requires at least 1h", d))
				continue
			}
			if k == AnnotationRenewBefore && d < 5*time.Minute {
				s.fail(annPath(k), fmt.Sprintf("%s: cert-manager requires at least 5m", d))
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
				s.fail(annPath(k), fmt.Sprintf("%q: want a percentage between 1 and 99", v))
				continue
			}
			p32 := int32(p)
			tmpl.RenewBeforePercentage = &p32
		case AnnotationUsages:
			for _, u := range strings.Split(v, ",") {
				u = strings.TrimSpace(u)
				if err := certmanager.ValidateUsage(u); err != nil {
					s.fail(annPath(k), err.Error())
					continue
				}
				tmpl.Usages = append(tmpl.Usages, u)
			}
		case AnnotationRevisionLimit:
			if n, err := strconv.Atoi(v); err != nil || n < 1 {
				s.fail(annPath(k), fmt.Sprintf("%q: want a positive number", v))
				continue
			}
			s.note(fmt.Sprintf("%s %s: %s has nothing to limit: kubectl-acme keeps no CertificateRequest history", s.kind, s.name, k))
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
					s.fail(annPath(k), fmt.Sprintf("%q is not a number", v))
					continue
				}
				tmpl.PrivateKey.Size = n
			}
		case AnnotationSecretTemplate:
			var t certmanager.CertificateSecretTemplate
			dec := json.NewDecoder(strings.NewReader(v))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&t); err != nil {
				s.fail(annPath(k), fmt.Sprintf("want JSON like {\"labels\": {...}, \"annotations\": {...}}: %v", err))
				continue
			}
			tmpl.SecretTemplate = &t
		case AnnotationEditInPlace:
			if v == "true" {
				certAnn = setAnn(certAnn, certmanager.AnnotationOverrideIngressName, s.name)
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
			s.fail("metadata.annotations", "private key: "+err.Error())
		}
	}
	if err := checkOverrides(certAnn); err != nil {
		s.fail("metadata.annotations", err.Error())
	}
	return tmpl, certAnn
}

// certificates makes one Certificate per entry, named after its Secret.
func (s *shim) certificates(entries []shimEntry, extraAnn map[string]string) []*certmanager.Certificate {
	ref, refOK := s.issuerRef()
	tmpl, certAnn := s.template()
	for k, v := range extraAnn {
		certAnn = setAnn(certAnn, k, v)
	}
	if !refOK {
		return nil
	}
	var certs []*certmanager.Certificate
	seen := map[string]string{}
	for _, e := range entries {
		if e.secretName == "" {
			s.fail(e.path+".secretName", "required: the Secret, which also names the Certificate")
			continue
		}
		if prev, ok := seen[e.secretName]; ok {
			s.fail(e.path+".secretName", fmt.Sprintf("%q is also used by %s; cert-manager makes one Certificate per Secret, so merge the hosts into one entry", e.secretName, prev))
			continue
		}
		seen[e.secretName] = e.path
		name := e.secretName
		if strings.Contains(name, ".") && validation.IsDNS1123Subdomain(name) == nil {
			// cert-manager names the Certificate after the Secret; a
			// Secret name may hold dots, but kubectl-acme's Certificate
			// names become Service names, which may not.
			name = strings.ReplaceAll(name, ".", "-")
			if prev, ok := seen[name]; ok && prev != e.path {
				s.fail(e.path+".secretName", fmt.Sprintf("%q would name its Certificate %q, as does %s", e.secretName, name, prev))
				continue
			}
			seen[name] = e.path
			s.note(fmt.Sprintf("%s %s: certificate for secret/%s is named %s: kubectl-acme's certificate names may not hold dots (cert-manager would name it %s)", s.kind, s.name, e.secretName, name, e.secretName))
		}
		if err := certmanager.ValidateName("certificate", name); err != nil {
			s.fail(e.path+".secretName", err.Error()+" (kubectl-acme names the Certificate after the Secret)")
			continue
		}
		if len(e.hosts) == 0 && len(tmpl.DNSNames) == 0 && len(tmpl.IPAddresses) == 0 {
			s.fail(e.path+".hosts", "no hosts")
			continue
		}
		cert := &certmanager.Certificate{}
		cert.APIVersion, cert.Kind = certmanager.GroupVersion, certmanager.KindCertificate
		cert.Name, cert.Namespace = name, s.namespace
		// cert-manager copies the labels (they take part in solver
		// selection), except the applyset label, which would get the
		// Certificate pruned.
		for k, v := range s.labels {
			if k != "applyset.kubernetes.io/part-of" {
				cert.Labels = setAnn(cert.Labels, k, v)
			}
		}
		cert.Annotations = cloneMap(certAnn)
		cert.Spec = tmpl
		cert.Spec.SecretName = e.secretName
		cert.Spec.IssuerRef = ref
		cert.Spec.DNSNames, cert.Spec.IPAddresses = nil, nil
		bad := false
		seenHost := map[string]bool{}
		for j, h := range e.hosts {
			p := e.path + ".hosts"
			if j < len(e.hostPaths) {
				p = e.hostPaths[j]
			}
			if seenHost[h] {
				continue // several listeners may name one host
			}
			seenHost[h] = true
			if ip := net.ParseIP(h); ip != nil {
				cert.Spec.IPAddresses = append(cert.Spec.IPAddresses, ip.String())
				continue
			}
			n, err := certmanager.NormalizeDomain(h)
			if err != nil {
				s.fail(p, err.Error())
				bad = true
				continue
			}
			cert.Spec.DNSNames = append(cert.Spec.DNSNames, n)
		}
		for _, d := range tmpl.DNSNames {
			n, err := certmanager.NormalizeDomain(d)
			if err != nil {
				s.fail(annPath(AnnotationAltNames), err.Error())
				bad = true
				continue
			}
			if !contains(cert.Spec.DNSNames, n) {
				cert.Spec.DNSNames = append(cert.Spec.DNSNames, n)
			}
		}
		cert.Spec.IPAddresses = append(cert.Spec.IPAddresses, tmpl.IPAddresses...)
		if cn := cert.Spec.CommonName; cn != "" && !contains(cert.Spec.DNSNames, cn) && !contains(cert.Spec.IPAddresses, cn) {
			if _, err := certmanager.NormalizeDomain(cn); err != nil && net.ParseIP(cn) == nil {
				s.fail(annPath(AnnotationCommonName), err.Error())
				bad = true
			} else if net.ParseIP(cn) != nil {
				cert.Spec.IPAddresses = append(cert.Spec.IPAddresses, cn)
			} else {
				cert.Spec.DNSNames = append(cert.Spec.DNSNames, cn)
			}
		}
		if bad {
			continue
		}
		if err := certmanager.ValidateCertificateSpec(&cert.Spec); err != nil {
			s.fail(e.path, err.Error())
			continue
		}
		certs = append(certs, cert)
	}
	return certs
}

// FromIngress makes the Certificates cert-manager's ingress-shim would
// make for ing: one per spec.tls entry, named after its secretName, for its
// hosts, with the issuer from issuer if given, else from the Ingress's
// cert-manager.io/issuer or cert-manager.io/cluster-issuer annotation, and
// the other cert-manager.io annotations applied. Every problem is reported.
func FromIngress(ing *networkingv1.Ingress, issuer *certmanager.IssuerRef) ([]*certmanager.Certificate, error) {
	var errs []error
	s := &shim{
		kind: "Ingress", name: ing.Name, namespace: ing.Namespace, labels: ing.Labels, ann: ing.Annotations, issuer: issuer,
		fail: func(path, reason string) {
			errs = append(errs, fmt.Errorf("ingress %s/%s: %s: %s", ing.Namespace, ing.Name, path, reason))
		},
		note: func(string) {},
	}
	s.readLegacy()
	if !s.wants() {
		return nil, fmt.Errorf("ingress %s/%s: no issuer: give --issuer, or annotate the Ingress with %s or %s", ing.Namespace, ing.Name, AnnotationIssuer, AnnotationClusterIssuer)
	}
	if len(ing.Spec.TLS) == 0 {
		s.fail("spec.tls", "no TLS entries: nothing to issue (cert-manager makes one Certificate per spec.tls entry)")
	}
	certs := s.certificates(ingressEntries(ing.Spec.TLS), nil)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return certs, nil
}

func ingressEntries(tls []networkingv1.IngressTLS) []shimEntry {
	var out []shimEntry
	for i, t := range tls {
		p := index("spec.tls", i)
		e := shimEntry{path: p, secretName: t.SecretName, hosts: t.Hosts}
		for j := range t.Hosts {
			e.hostPaths = append(e.hostPaths, index(p+".hosts", j))
		}
		out = append(out, e)
	}
	return out
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
