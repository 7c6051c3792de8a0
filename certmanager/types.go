// Package certmanager holds the Issuer, ClusterIssuer and Certificate types in the
// shape of cert-manager's cert-manager.io/v1 API, limited to the fields
// kubectl-acme understands, so manifests written for cert-manager read as-is
// and what kubectl-acme stores can be handed to cert-manager later.
package certmanager

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// cert-manager's API group and kinds.
const (
	GroupVersion      = "cert-manager.io/v1"
	Group             = "cert-manager.io"
	KindIssuer        = "Issuer"
	KindClusterIssuer = "ClusterIssuer"
	KindCertificate   = "Certificate"
)

// Issuer is an ACME Issuer or ClusterIssuer (Kind tells which).
type Issuer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              IssuerSpec   `json:"spec"`
	Status            IssuerStatus `json:"status,omitempty"`
}

// IsCluster reports whether the Issuer is a ClusterIssuer.
func (i *Issuer) IsCluster() bool { return i.Kind == KindClusterIssuer }

// IssuerSpec mirrors cert-manager's IssuerConfig; only ACME is supported.
type IssuerSpec struct {
	ACME *ACMEIssuer `json:"acme,omitempty"`
}

// ACMEIssuer mirrors cert-manager's ACMEIssuer.
type ACMEIssuer struct {
	Server              string                `json:"server"`
	Email               string                `json:"email,omitempty"`
	PrivateKeySecretRef SecretKeySelector     `json:"privateKeySecretRef"`
	SkipTLSVerify       bool                  `json:"skipTLSVerify,omitempty"`
	CABundle            []byte                `json:"caBundle,omitempty"`
	PreferredChain      string                `json:"preferredChain,omitempty"`
	Profile             string                `json:"profile,omitempty"`
	Solvers             []ACMEChallengeSolver `json:"solvers,omitempty"`
	// ExternalAccountBinding binds a new account to one the CA issued.
	ExternalAccountBinding *ACMEExternalAccountBinding `json:"externalAccountBinding,omitempty"`
	// DisableAccountKeyGeneration refuses to create the account key: its
	// Secret must exist.
	DisableAccountKeyGeneration bool `json:"disableAccountKeyGeneration,omitempty"`
}

// SecretKeySelector names a key of a Secret in the Issuer's namespace.
type SecretKeySelector struct {
	Name string `json:"name"`
	Key  string `json:"key,omitempty"`
}

// ACMEChallengeSolver mirrors cert-manager's solver entry (HTTP-01 only).
type ACMEChallengeSolver struct {
	// Selector limits the solver to some names; nil selects every name.
	Selector *CertificateDNSNameSelector `json:"selector,omitempty"`
	HTTP01   *ACMEChallengeSolverHTTP01  `json:"http01,omitempty"`
	// WaitInsteadOfSelfCheck, when set, skips the self-check and waits
	// this long after the challenge is presented before asking the CA to
	// validate it (cert-manager 1.21, pkg/apis/acme/v1/types_issuer.go):
	// for split-horizon DNS or NAT hairpinning, where the challenge URL
	// cannot be reached from here although the CA reaches it.
	WaitInsteadOfSelfCheck *metav1.Duration `json:"waitInsteadOfSelfCheck,omitempty"`
}

// ACMEChallengeSolverHTTP01 mirrors cert-manager's http01 solver: exactly
// one of Ingress and GatewayHTTPRoute is set.
type ACMEChallengeSolverHTTP01 struct {
	Ingress          *ACMEChallengeSolverHTTP01Ingress          `json:"ingress,omitempty"`
	GatewayHTTPRoute *ACMEChallengeSolverHTTP01GatewayHTTPRoute `json:"gatewayHTTPRoute,omitempty"`
}

// ACMEChallengeSolverHTTP01GatewayHTTPRoute mirrors cert-manager's
// http01.gatewayHTTPRoute: the challenge paths are routed by an HTTPRoute
// (Gateway API) attached to ParentRefs instead of an Ingress.
type ACMEChallengeSolverHTTP01GatewayHTTPRoute struct {
	ServiceType corev1.ServiceType `json:"serviceType,omitempty"`
	// Labels are added to the HTTPRoute, for Gateways that select routes
	// by label.
	Labels      map[string]string                            `json:"labels,omitempty"`
	ParentRefs  []gatewayv1.ParentReference                  `json:"parentRefs,omitempty"`
	PodTemplate *ACMEChallengeSolverHTTP01IngressPodTemplate `json:"podTemplate,omitempty"`
}

// IsGatewayHTTPRoute reports whether the solver routes through an HTTPRoute.
func (sv *ACMEChallengeSolver) IsGatewayHTTPRoute() bool {
	return sv.HTTP01 != nil && sv.HTTP01.GatewayHTTPRoute != nil
}

// ACMEChallengeSolverHTTP01Ingress mirrors cert-manager's http01.ingress.
type ACMEChallengeSolverHTTP01Ingress struct {
	// Class sets the legacy kubernetes.io/ingress.class annotation.
	Class *string `json:"class,omitempty"`
	// IngressClassName sets spec.ingressClassName.
	IngressClassName *string `json:"ingressClassName,omitempty"`
	// Name adds the challenge paths to this existing Ingress instead of
	// creating one, and removes them afterwards.
	Name            string                                       `json:"name,omitempty"`
	ServiceType     corev1.ServiceType                           `json:"serviceType,omitempty"`
	PodTemplate     *ACMEChallengeSolverHTTP01IngressPodTemplate `json:"podTemplate,omitempty"`
	IngressTemplate *ACMEChallengeSolverHTTP01IngressTemplate    `json:"ingressTemplate,omitempty"`
}

// IssuerStatus records what the CA last said about the account.
type IssuerStatus struct {
	ACME *ACMEIssuerStatus `json:"acme,omitempty"`
}

// ACMEIssuerStatus mirrors cert-manager's, plus the account status.
type ACMEIssuerStatus struct {
	URI                 string `json:"uri,omitempty"`
	LastRegisteredEmail string `json:"lastRegisteredEmail,omitempty"`
	// AccountStatus is the account's status as the CA reported it (valid,
	// deactivated, revoked).
	AccountStatus string `json:"accountStatus,omitempty"`
}

// IngressClass returns the ingress class the issuer's HTTP-01 solver uses and
// whether it is the legacy annotation form.
func (s *ACMEIssuer) IngressClass() (class string, legacyAnnotation bool) {
	for _, sv := range s.Solvers {
		if sv.HTTP01 == nil || sv.HTTP01.Ingress == nil {
			continue
		}
		in := sv.HTTP01.Ingress
		if in.IngressClassName != nil {
			return *in.IngressClassName, false
		}
		if in.Class != nil {
			return *in.Class, true
		}
		return "", false
	}
	return "", false
}

// Certificate mirrors cert-manager's Certificate.
type Certificate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              CertificateSpec   `json:"spec"`
	Status            CertificateStatus `json:"status,omitempty"`
}

// CertificateSpec mirrors cert-manager's CertificateSpec.
type CertificateSpec struct {
	SecretName  string                 `json:"secretName"`
	CommonName  string                 `json:"commonName,omitempty"`
	DNSNames    []string               `json:"dnsNames,omitempty"`
	IPAddresses []string               `json:"ipAddresses,omitempty"`
	IssuerRef   IssuerRef              `json:"issuerRef"`
	PrivateKey  *CertificatePrivateKey `json:"privateKey,omitempty"`
	RenewBefore *metav1.Duration       `json:"renewBefore,omitempty"`
	// RenewBeforePercentage renews when this percentage of the lifetime
	// remains; used when RenewBefore is not set.
	RenewBeforePercentage   *int32                              `json:"renewBeforePercentage,omitempty"`
	Duration                *metav1.Duration                    `json:"duration,omitempty"`
	SecretTemplate          *CertificateSecretTemplate          `json:"secretTemplate,omitempty"`
	AdditionalOutputFormats []CertificateAdditionalOutputFormat `json:"additionalOutputFormats,omitempty"`
	// Usages are the key usages requested in the CSR; only those of a TLS
	// server certificate (TLSServerUsages) are accepted, as ACME CAs issue
	// nothing else.
	Usages []string `json:"usages,omitempty"`
}

// AnnotationProfile on a Certificate names the ACME profile to order it
// with; cert-manager's Certificate has no field for it.
const AnnotationProfile = "acme.kubectl.io/profile"

// AnnotationIngressPathType on an Issuer sets the pathType of the HTTP-01
// challenge paths its Ingress solvers create (Exact, Prefix or
// ImplementationSpecific), instead of the one decided from the ingress
// class's controller. cert-manager has no per-issuer setting for it, only
// the controller-wide feature gate ACMEHTTP01IngressPathTypeExact.
const AnnotationIngressPathType = AnnotationPrefix + "http01-ingress-path-type"

// AnnotationPrefix starts kubectl-acme's own annotations.
const AnnotationPrefix = "acme.kubectl.io/"

// IngressPathTypes are the values AnnotationIngressPathType takes: the
// Ingress API's path types (networking.k8s.io/v1 HTTPIngressPath).
var IngressPathTypes = []string{"Exact", "Prefix", "ImplementationSpecific"}

// IngressPathType is the issuer's path type override, or "".
func (i *Issuer) IngressPathType() string {
	return i.Annotations[AnnotationIngressPathType]
}

// IssuerRef points at an Issuer or ClusterIssuer.
type IssuerRef struct {
	Name  string `json:"name"`
	Kind  string `json:"kind,omitempty"`
	Group string `json:"group,omitempty"`
}

// CertificatePrivateKey mirrors cert-manager's private key options.
type CertificatePrivateKey struct {
	Algorithm      string `json:"algorithm,omitempty"`
	Size           int    `json:"size,omitempty"`
	Encoding       string `json:"encoding,omitempty"`
	RotationPolicy string `json:"rotationPolicy,omitempty"`
}

// CertificateStatus is cert-manager's status plus what kubectl-acme saw
// during the last order.
type CertificateStatus struct {
	NotBefore       *metav1.Time `json:"notBefore,omitempty"`
	NotAfter        *metav1.Time `json:"notAfter,omitempty"`
	RenewalTime     *metav1.Time `json:"renewalTime,omitempty"`
	Revision        int          `json:"revision,omitempty"`
	Serial          string       `json:"serial,omitempty"`
	LastFailureTime *metav1.Time `json:"lastFailureTime,omitempty"`
	// LastFailure is why the last attempt failed; empty after a success.
	LastFailure string       `json:"lastFailure,omitempty"`
	LastOrder   *OrderStatus `json:"lastOrder,omitempty"`
	// Revoked is set when the stored certificate was revoked.
	Revoked *RevocationStatus `json:"revoked,omitempty"`
	// RenewalInfo is the CA's last ARI answer for the stored certificate
	// (kubectl-acme's, not cert-manager's): renewal checks reuse it until
	// NextCheck instead of asking the CA on every run.
	RenewalInfo *RenewalInfoStatus `json:"renewalInfo,omitempty"`
}

// RenewalInfoStatus is a CA's suggested renewal window (RFC 9773) for the
// certificate with ARI identifier CertID.
type RenewalInfoStatus struct {
	CertID         string      `json:"certID"`
	WindowStart    metav1.Time `json:"windowStart"`
	WindowEnd      metav1.Time `json:"windowEnd"`
	ExplanationURL string      `json:"explanationURL,omitempty"`
	// NextCheck is when the CA said to ask again (Retry-After).
	NextCheck metav1.Time `json:"nextCheck"`
}

// RevocationStatus records a revocation of the certificate with Serial.
type RevocationStatus struct {
	Serial string      `json:"serial"`
	Reason string      `json:"reason"`
	Time   metav1.Time `json:"time"`
}

// OrderStatus records the last ACME order for a Certificate.
type OrderStatus struct {
	URL        string            `json:"url,omitempty"`
	State      string            `json:"state,omitempty"`
	Started    metav1.Time       `json:"started"`
	Finished   *metav1.Time      `json:"finished,omitempty"`
	Challenges []ChallengeStatus `json:"challenges,omitempty"`
}

// ChallengeStatus is one authorization's outcome.
type ChallengeStatus struct {
	Identifier string `json:"identifier"`
	Type       string `json:"type"`
	State      string `json:"state"`
	Detail     string `json:"detail,omitempty"`
}

// Identifiers returns the certificate's names: the common name first, if
// it is not repeated in dnsNames, then dnsNames and ipAddresses.
func (s *CertificateSpec) Identifiers() (dns []string, ips []string) {
	seen := map[string]bool{}
	add := func(list *[]string, v string) {
		if v != "" && !seen[v] {
			seen[v] = true
			*list = append(*list, v)
		}
	}
	if s.CommonName != "" && !isIP(s.CommonName) {
		add(&dns, s.CommonName)
	}
	for _, d := range s.DNSNames {
		add(&dns, d)
	}
	if s.CommonName != "" && isIP(s.CommonName) {
		add(&ips, s.CommonName)
	}
	for _, ip := range s.IPAddresses {
		add(&ips, ip)
	}
	return dns, ips
}
