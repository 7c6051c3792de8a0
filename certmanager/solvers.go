package certmanager

import (
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// ACMEExternalAccountBinding mirrors cert-manager's: the key ID and the
// Secret key holding the base64url HMAC key the CA issued.
type ACMEExternalAccountBinding struct {
	KeyID        string            `json:"keyID"`
	Key          SecretKeySelector `json:"keySecretRef"`
	KeyAlgorithm string            `json:"keyAlgorithm,omitempty"`
}

// CertificateDNSNameSelector mirrors cert-manager's solver selector.
type CertificateDNSNameSelector struct {
	MatchLabels map[string]string `json:"matchLabels,omitempty"`
	DNSNames    []string          `json:"dnsNames,omitempty"`
	DNSZones    []string          `json:"dnsZones,omitempty"`
}

// ACMEChallengeSolverHTTP01IngressPodTemplate mirrors cert-manager's
// podTemplate: metadata and a few scheduling and security fields merged
// into the solver pod.
type ACMEChallengeSolverHTTP01IngressPodTemplate struct {
	ACMEChallengeSolverHTTP01IngressObjectMeta `json:"metadata"`
	Spec                                       ACMEChallengeSolverHTTP01IngressPodSpec `json:"spec"`
}

// ACMEChallengeSolverHTTP01IngressObjectMeta holds labels and annotations
// added to a solver object.
type ACMEChallengeSolverHTTP01IngressObjectMeta struct {
	Annotations map[string]string `json:"annotations,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
}

// ACMEChallengeSolverHTTP01IngressPodSpec mirrors cert-manager's.
type ACMEChallengeSolverHTTP01IngressPodSpec struct {
	NodeSelector       map[string]string                                   `json:"nodeSelector,omitempty"`
	Affinity           *corev1.Affinity                                    `json:"affinity,omitempty"`
	Tolerations        []corev1.Toleration                                 `json:"tolerations,omitempty"`
	PriorityClassName  string                                              `json:"priorityClassName,omitempty"`
	ServiceAccountName string                                              `json:"serviceAccountName,omitempty"`
	ImagePullSecrets   []corev1.LocalObjectReference                       `json:"imagePullSecrets,omitempty"`
	SecurityContext    *ACMEChallengeSolverHTTP01IngressPodSecurityContext `json:"securityContext,omitempty"`
	Resources          *ACMEChallengeSolverHTTP01IngressPodResources       `json:"resources,omitempty"`
}

// ACMEChallengeSolverHTTP01IngressPodSecurityContext mirrors cert-manager's
// subset of the pod security context.
type ACMEChallengeSolverHTTP01IngressPodSecurityContext struct {
	SELinuxOptions      *corev1.SELinuxOptions         `json:"seLinuxOptions,omitempty"`
	RunAsUser           *int64                         `json:"runAsUser,omitempty"`
	RunAsGroup          *int64                         `json:"runAsGroup,omitempty"`
	RunAsNonRoot        *bool                          `json:"runAsNonRoot,omitempty"`
	SupplementalGroups  []int64                        `json:"supplementalGroups,omitempty"`
	FSGroup             *int64                         `json:"fsGroup,omitempty"`
	Sysctls             []corev1.Sysctl                `json:"sysctls,omitempty"`
	FSGroupChangePolicy *corev1.PodFSGroupChangePolicy `json:"fsGroupChangePolicy,omitempty"`
	SeccompProfile      *corev1.SeccompProfile         `json:"seccompProfile,omitempty"`
}

// ACMEChallengeSolverHTTP01IngressPodResources sets the solver container's
// requests and limits.
type ACMEChallengeSolverHTTP01IngressPodResources struct {
	Limits   corev1.ResourceList `json:"limits,omitempty"`
	Requests corev1.ResourceList `json:"requests,omitempty"`
}

// ACMEChallengeSolverHTTP01IngressTemplate holds labels and annotations for
// the solver Ingress.
type ACMEChallengeSolverHTTP01IngressTemplate struct {
	ACMEChallengeSolverHTTP01IngressObjectMeta `json:"metadata"`
}

// CertificateSecretTemplate holds labels and annotations copied onto the
// Certificate's Secret.
type CertificateSecretTemplate struct {
	Annotations map[string]string `json:"annotations,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
}

// Additional output formats of the issued Secret, as cert-manager names them.
const (
	OutputFormatDER            = "DER"
	OutputFormatCombinedPEM    = "CombinedPEM"
	OutputFormatDERKey         = "key.der"
	OutputFormatCombinedPEMKey = "tls-combined.pem"
)

// CertificateAdditionalOutputFormat asks for an extra key in the Secret.
type CertificateAdditionalOutputFormat struct {
	Type string `json:"type"`
}

// RenewBeforeFor is how long before notAfter a certificate valid from
// notBefore should be renewed: renewBefore, or renewBeforePercentage of the
// lifetime, or zero for the default (see RenewalTime).
func (s *CertificateSpec) RenewBeforeFor(notBefore, notAfter time.Time) time.Duration {
	switch {
	case s.RenewBefore != nil:
		return s.RenewBefore.Duration
	case s.RenewBeforePercentage != nil:
		return notAfter.Sub(notBefore) * time.Duration(*s.RenewBeforePercentage) / 100
	}
	return 0
}

// SelectSolver returns the index of the solver cert-manager would pick for
// the identifier name of a Certificate with the given labels, or -1. Only
// HTTP-01 solvers take part. Precedence, as cert-manager's solver picker:
// a solver whose selector lists the name in dnsNames beats one that does
// not; then the one with the longest matching dnsZone; then the one
// matching the most labels; on a tie the earlier solver wins. A solver
// without selector matches every name with the lowest precedence.
func SelectSolver(solvers []ACMEChallengeSolver, labels map[string]string, name string) int {
	selected := -1
	var selNames, selZones, selLabels int
	for i, sv := range solvers {
		if sv.HTTP01 == nil {
			continue
		}
		if sv.Selector == nil {
			if selected < 0 {
				selected = i
			}
			continue
		}
		okL, nL := matchLabels(sv.Selector.MatchLabels, labels)
		okN, nN := matchDNSNames(sv.Selector.DNSNames, name)
		okZ, nZ := matchDNSZones(sv.Selector.DNSZones, name)
		if !okL || !okN || !okZ {
			continue
		}
		take := false
		switch {
		case selected < 0:
			take = true
		case (nN > 0) != (selNames > 0):
			take = nN > 0
		case nZ != selZones:
			take = nZ > selZones
		default:
			take = nL > selLabels
		}
		if take {
			selected, selNames, selZones, selLabels = i, nN, nZ, nL
		}
	}
	return selected
}

func matchLabels(want, have map[string]string) (bool, int) {
	for k, v := range want {
		if got, ok := have[k]; !ok || got != v {
			return false, 0
		}
	}
	return true, len(want)
}

func matchDNSNames(names []string, name string) (bool, int) {
	if len(names) == 0 {
		return true, 0
	}
	for _, n := range names {
		if n == name {
			return true, 1
		}
	}
	return false, 0
}

// matchDNSZones returns the number of labels of the longest zone that name
// is in (or is).
func matchDNSZones(zones []string, name string) (bool, int) {
	if len(zones) == 0 {
		return true, 0
	}
	best := 0
	nl := dnsLabels(name)
	for _, z := range zones {
		zl := dnsLabels(z)
		if len(zl) == 0 || len(zl) > len(nl) {
			continue
		}
		in := true
		for i := 1; i <= len(zl); i++ {
			if !strings.EqualFold(zl[len(zl)-i], nl[len(nl)-i]) {
				in = false
				break
			}
		}
		if in && len(zl) > best {
			best = len(zl)
		}
	}
	return best > 0, best
}

func dnsLabels(s string) []string {
	s = strings.Trim(s, ".")
	if s == "" {
		return nil
	}
	return strings.Split(s, ".")
}

// NoSolverError says which names of a Certificate no solver selects.
type NoSolverError struct {
	Issuer string
	Names  []string
}

func (e *NoSolverError) Error() string {
	return fmt.Sprintf("no HTTP-01 solver of issuer %q selects %s: add a solver without selector, or one whose dnsNames, dnsZones or matchLabels match",
		e.Issuer, strings.Join(e.Names, ", "))
}

// SolversFor maps each identifier of cert to the index of the issuer's
// solver that answers its challenge. It fails, naming every such identifier,
// when a name has none.
func SolversFor(iss *Issuer, cert *Certificate) (map[string]int, error) {
	if iss.Spec.ACME == nil {
		return nil, fmt.Errorf("issuer %q has no acme section", iss.Name)
	}
	dns, ips := cert.Spec.Identifiers()
	out := map[string]int{}
	var missing []string
	for _, id := range append(dns, ips...) {
		i := SelectSolver(iss.Spec.ACME.Solvers, cert.Labels, id)
		if i < 0 {
			missing = append(missing, id)
			continue
		}
		out[id] = i
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, &NoSolverError{Issuer: iss.Name, Names: missing}
	}
	var viaRoute []string
	for _, ip := range ips {
		if sv := iss.Spec.ACME.Solvers[out[ip]]; sv.IsGatewayHTTPRoute() {
			viaRoute = append(viaRoute, ip)
		}
	}
	if len(viaRoute) > 0 {
		return nil, &IPViaHTTPRouteError{Issuer: iss.Name, Certificate: cert.Name, IPs: viaRoute}
	}
	checked := map[int]bool{}
	for _, i := range out {
		if checked[i] {
			continue
		}
		checked[i] = true
		if _, err := ParentRefOverrides(iss.Spec.ACME.Solvers[i], cert.Annotations, cert.Namespace); err != nil {
			return nil, fmt.Errorf("issuer %q, solver %d: %w", iss.Name, i, err)
		}
	}
	return out, nil
}

// IPViaHTTPRouteError says that IP addresses of a Certificate would be
// validated through a gatewayHTTPRoute solver, which cannot route them: an
// HTTPRoute's hostnames are DNS names only (cert-manager fails the same way).
type IPViaHTTPRouteError struct {
	Issuer, Certificate string
	IPs                 []string
}

func (e *IPViaHTTPRouteError) Error() string {
	return fmt.Sprintf("certificate %q: IP address %s would be validated through a gatewayHTTPRoute solver of issuer %q, but HTTPRoute hostnames cannot be IP addresses: give IP addresses an http01.ingress solver (with a selector for the DNS names), or remove them",
		e.Certificate, strings.Join(e.IPs, ", "), e.Issuer)
}

// Annotations on a Certificate that override the ingress settings of the
// solver picked for it, as cert-manager's order controller does;
// cert-manager's ingress-shim sets them from an Ingress's
// acme.cert-manager.io/http01-* annotations.
const (
	AnnotationOverrideIngressName      = "acme.cert-manager.io/http01-override-ingress-name"
	AnnotationOverrideIngressClass     = "acme.cert-manager.io/http01-override-ingress-class"
	AnnotationOverrideIngressClassName = "acme.cert-manager.io/http01-override-ingress-ingressclassname"
)

// IngressOverrides returns sv with its http01.ingress class, ingressClassName
// and name replaced as a Certificate's override annotations say (sv itself
// is not changed). More than one override is an error, as in cert-manager.
func IngressOverrides(sv ACMEChallengeSolver, annotations map[string]string) (ACMEChallengeSolver, error) {
	name, hasName := annotations[AnnotationOverrideIngressName]
	class, hasClass := annotations[AnnotationOverrideIngressClass]
	className, hasClassName := annotations[AnnotationOverrideIngressClassName]
	n := 0
	for _, b := range []bool{hasName, hasClass, hasClassName} {
		if b {
			n++
		}
	}
	if n > 1 {
		return sv, fmt.Errorf("only one of the annotations %s, %s and %s may be set", AnnotationOverrideIngressName, AnnotationOverrideIngressClass, AnnotationOverrideIngressClassName)
	}
	if n == 0 || sv.HTTP01 == nil || sv.HTTP01.Ingress == nil {
		return sv, nil
	}
	in := *sv.HTTP01.Ingress
	in.Class, in.IngressClassName, in.Name = nil, nil, ""
	switch {
	case hasName:
		in.Name = name
	case hasClass:
		in.Class = &class
	case hasClassName:
		in.IngressClassName = &className
	}
	http01 := *sv.HTTP01
	http01.Ingress = &in
	sv.HTTP01 = &http01
	return sv, nil
}

// Annotations on a Certificate that name the parent of the HTTPRoute a
// gatewayHTTPRoute solver creates for it (cert-manager 1.20+,
// pkg/apis/acme/v1/types.go); cert-manager's gateway-shim sets them to the
// Gateway or ListenerSet the Certificate was made for.
const (
	AnnotationParentRefName      = "acme.cert-manager.io/http01-parentrefname"
	AnnotationParentRefKind      = "acme.cert-manager.io/http01-parentrefkind"
	AnnotationParentRefNamespace = "acme.cert-manager.io/http01-parentrefnamespace"
)

// ErrNoParentRefs says that an HTTPRoute would have no parent.
var ErrNoParentRefs = fmt.Errorf("the gatewayHTTPRoute solver has no parentRefs and the certificate names no parent: set the solver's parentRefs, or annotate the Certificate with %s and %s (cert-manager 1.20+)", AnnotationParentRefKind, AnnotationParentRefName)

// ParentRefOverrides returns sv with the parent the Certificate's
// annotations name added to its gatewayHTTPRoute parentRefs (replacing a
// configured one for the same parent), as cert-manager's order controller
// does (pkg/controller/acmeorders/util.go
// applyGatewayAPIAnnotationParentRefOverride): name and kind go together;
// the namespace defaults to the Certificate's. It fails when the solver
// ends up with no parent at all, as cert-manager does. sv is not changed.
func ParentRefOverrides(sv ACMEChallengeSolver, annotations map[string]string, certNamespace string) (ACMEChallengeSolver, error) {
	if !sv.IsGatewayHTTPRoute() {
		return sv, nil
	}
	name, hasName := annotations[AnnotationParentRefName]
	kind, hasKind := annotations[AnnotationParentRefKind]
	if hasName != hasKind {
		return sv, fmt.Errorf("the annotations %s and %s go together: set both or neither", AnnotationParentRefName, AnnotationParentRefKind)
	}
	rt := *sv.HTTP01.GatewayHTTPRoute
	if hasName {
		ns := certNamespace
		if v := annotations[AnnotationParentRefNamespace]; v != "" {
			ns = v
		}
		gns, gname, gkind := gatewayv1.Namespace(ns), gatewayv1.ObjectName(name), gatewayv1.Kind(kind)
		refs := make([]gatewayv1.ParentReference, 0, len(rt.ParentRefs)+1)
		for _, pr := range rt.ParentRefs {
			same := pr.Namespace != nil && *pr.Namespace == gns && pr.Name == gname && (pr.Kind == nil || *pr.Kind == gkind)
			if !same {
				refs = append(refs, pr)
			}
		}
		rt.ParentRefs = append(refs, gatewayv1.ParentReference{Name: gname, Namespace: &gns, Kind: &gkind})
	}
	if len(rt.ParentRefs) == 0 {
		return sv, ErrNoParentRefs
	}
	http01 := *sv.HTTP01
	http01.GatewayHTTPRoute = &rt
	sv.HTTP01 = &http01
	return sv, nil
}
