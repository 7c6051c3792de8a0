package manifest

import (
	"encoding/json"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
)

// Shim is an Ingress, Gateway or ListenerSet of the input whose
// cert-manager annotations asked for Certificates. apply issues those; the
// object itself is applied only when asked to (kubectl applies it as well).
type Shim struct {
	Location
	APIVersion, Kind, Name, Namespace string
	// JSON is the object as written, for applying it.
	JSON []byte
	// Certificates are the names of the Certificates made from it.
	Certificates []string
	// Unserved says why the cluster cannot take the object as written
	// (an Ingress API version Kubernetes 1.22 removed); empty if it can.
	Unserved string
}

// Ingress API versions (networking.k8s.io/v1 since Kubernetes 1.19; the
// beta versions were removed in 1.22).
const (
	IngressV1         = "networking.k8s.io/v1"
	ingressV1beta1    = "networking.k8s.io/v1beta1"
	ingressExtensions = "extensions/v1beta1"
	gatewayGroup      = "gateway.networking.k8s.io"
	gatewayXGroup     = "gateway.networking.x-k8s.io"
)

// ingressDoc is what the shim reads of an Ingress, in every API version:
// metadata and spec.tls have the same shape in all of them. The rest of the
// object is the ingress controller's business and is not checked here.
type ingressDoc struct {
	APIVersion string            `json:"apiVersion"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       ingressSpec       `json:"spec"`
}

// Named types, so that a mistyped field reads "want a mapping, got ...".
type ingressSpec struct {
	TLS []ingressTLS `json:"tls"`
}

type ingressTLS struct {
	Hosts      []string `json:"hosts"`
	SecretName string   `json:"secretName"`
}

// gatewayDoc is what the gateway-shim reads of a Gateway or ListenerSet.
type gatewayDoc struct {
	APIVersion string            `json:"apiVersion"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       gatewaySpec       `json:"spec"`
}

type gatewaySpec struct {
	ParentRef *struct {
		Name      string  `json:"name"`
		Namespace *string `json:"namespace"`
	} `json:"parentRef"`
	Listeners []struct {
		Name     string  `json:"name"`
		Hostname *string `json:"hostname"`
		Protocol string  `json:"protocol"`
		TLS      *struct {
			Mode            *string `json:"mode"`
			CertificateRefs []struct {
				Group     *string `json:"group"`
				Kind      *string `json:"kind"`
				Name      string  `json:"name"`
				Namespace *string `json:"namespace"`
			} `json:"certificateRefs"`
		} `json:"tls"`
	} `json:"listeners"`
}

func (c *doc) newShim(kind string, m *metav1.ObjectMeta) *shim {
	return &shim{
		kind: kind, name: m.Name, namespace: m.Namespace, labels: m.Labels, ann: m.Annotations, opts: c.d.opts,
		fail: c.fail,
		note: func(s string) { c.d.res.Notes = append(c.d.res.Notes, fmt.Sprintf("%s: %s: %s", c.d.file, c.loc, s)) },
	}
}

// checkShimMeta checks the names the API server would refuse.
func (c *doc) checkShimMeta(m *metav1.ObjectMeta) {
	if m.Name == "" {
		c.fail("metadata.name", "required")
	} else if errs := validation.IsDNS1123Subdomain(m.Name); len(errs) > 0 {
		c.fail("metadata.name", fmt.Sprintf("%q: %s", m.Name, strings.Join(errs, "; ")))
	}
	if m.Namespace != "" {
		if errs := validation.IsDNS1123Label(m.Namespace); len(errs) > 0 {
			c.fail("metadata.namespace", fmt.Sprintf("%q: %s", m.Namespace, strings.Join(errs, "; ")))
		}
	}
}

func (c *doc) notef(format string, args ...any) {
	c.d.res.Notes = append(c.d.res.Notes, fmt.Sprintf("%s: %s: ", c.d.file, c.loc)+fmt.Sprintf(format, args...))
}

// addShim records the object and the Certificates made from it.
func (c *doc) addShim(apiVersion, kind string, m *metav1.ObjectMeta, js []byte, certs []*certmanager.Certificate, unserved string) {
	sh := &Shim{Location: c.loc, APIVersion: apiVersion, Kind: kind, Name: m.Name, Namespace: m.Namespace, JSON: js, Unserved: unserved}
	for _, cert := range certs {
		sh.Certificates = append(sh.Certificates, cert.Name)
		c.add(&Object{Location: c.loc, APIVersion: apiVersion, Kind: certmanager.KindCertificate, Certificate: cert, From: kind + " " + m.Name})
	}
	c.d.res.Shims = append(c.d.res.Shims, sh)
}

func (c *doc) decodeIngress(apiVersion string, js []byte) {
	var ing ingressDoc
	if err := json.Unmarshal(js, &ing); err != nil {
		path, reason := typeError(err)
		c.fail(path, reason)
		return
	}
	unserved := ""
	if apiVersion != IngressV1 {
		unserved = fmt.Sprintf("%s Ingress is not served by Kubernetes 1.22 and later: rewrite it as %s (spec.rules[].http.paths[].backend.service, pathType) before applying it", apiVersion, IngressV1)
		c.notef("warning: Ingress %s: %s; its annotations and spec.tls are read as they are", ing.Metadata.Name, unserved)
	}
	s := c.newShim("Ingress", &ing.Metadata)
	c.checkShimMeta(&ing.Metadata)
	s.readLegacy()
	if !s.wants() {
		c.notef("Ingress %s: nothing to issue: it has no %s, %s or %s: \"true\" annotation, so cert-manager would make no Certificate for it", ing.Metadata.Name, AnnotationIssuer, AnnotationClusterIssuer, AnnotationTLSACME)
		return
	}
	before := c.errCount()
	if len(ing.Spec.TLS) == 0 {
		c.fail("spec.tls", "no TLS entries: nothing to issue (cert-manager makes one Certificate per spec.tls entry)")
		return
	}
	var entries []shimEntry
	for i, t := range ing.Spec.TLS {
		p := index("spec.tls", i)
		e := shimEntry{path: p, secretName: t.SecretName, hosts: t.Hosts}
		for j := range t.Hosts {
			e.hostPaths = append(e.hostPaths, index(p+".hosts", j))
		}
		entries = append(entries, e)
	}
	certs := s.certificates(entries, nil)
	if c.errCount() != before {
		return
	}
	c.addShim(apiVersion, "Ingress", &ing.Metadata, js, certs, unserved)
}

// decodeGateway reads a Gateway or ListenerSet as cert-manager's
// gateway-shim does (handleGatewayAPIListeners): one Certificate per
// Secret that HTTPS or TLS listeners in Terminate mode refer to, for their
// hostnames; the Certificate names its parent in the http01-parentref
// annotations (setIssuerSpecificConfig), so a gatewayHTTPRoute solver
// without parentRefs attaches its HTTPRoute there.
func (c *doc) decodeGateway(apiVersion, kind string, js []byte) {
	var gw gatewayDoc
	if err := json.Unmarshal(js, &gw); err != nil {
		path, reason := typeError(err)
		c.fail(path, reason)
		return
	}
	s := c.newShim(kind, &gw.Metadata)
	c.checkShimMeta(&gw.Metadata)
	if !s.wants() {
		c.d.res.Skipped = append(c.d.res.Skipped, fmt.Sprintf("%s: %s: %s %s %s skipped: it has no %s or %s annotation, so cert-manager would make no Certificate for it", c.d.file, c.loc, apiVersion, kind, gw.Metadata.Name, AnnotationIssuer, AnnotationClusterIssuer))
		return
	}
	ignored := map[string]bool{}
	for _, l := range splitList(s.ann[AnnotationIgnoreListeners]) {
		ignored[l] = true
	}
	var entries []shimEntry
	bySecret := map[string]int{}
	for i, l := range gw.Spec.Listeners {
		p := index("spec.listeners", i)
		if l.Protocol != "HTTPS" && l.Protocol != "TLS" {
			continue
		}
		if l.TLS != nil && l.TLS.Mode != nil && *l.TLS.Mode == "Passthrough" {
			continue
		}
		if ignored[l.Name] {
			continue
		}
		if l.Hostname == nil || *l.Hostname == "" {
			c.fail(p+".hostname", "required: cert-manager issues for a listener's hostname")
			continue
		}
		if l.TLS == nil || len(l.TLS.CertificateRefs) == 0 {
			c.fail(p+".tls.certificateRefs", "required: the Secret the certificate goes in")
			continue
		}
		for j, ref := range l.TLS.CertificateRefs {
			rp := index(p+".tls.certificateRefs", j)
			if ref.Group != nil && *ref.Group != "" && *ref.Group != "core" {
				c.fail(rp+".group", fmt.Sprintf("%q: the certificate goes in a core Secret", *ref.Group))
				continue
			}
			if ref.Kind != nil && *ref.Kind != "" && *ref.Kind != "Secret" {
				c.fail(rp+".kind", fmt.Sprintf("%q: the certificate goes in a Secret", *ref.Kind))
				continue
			}
			if ref.Namespace != nil && *ref.Namespace != "" && *ref.Namespace != gw.Metadata.Namespace {
				c.fail(rp+".namespace", "cross-namespace Secret references are not allowed in listeners (cert-manager refuses them too)")
				continue
			}
			k, ok := bySecret[ref.Name]
			if !ok {
				k = len(entries)
				bySecret[ref.Name] = k
				entries = append(entries, shimEntry{path: rp, secretName: ref.Name})
			}
			entries[k].hosts = append(entries[k].hosts, *l.Hostname)
			entries[k].hostPaths = append(entries[k].hostPaths, p+".hostname")
		}
	}
	before := c.errCount()
	if len(entries) == 0 {
		c.fail("spec.listeners", "no HTTPS or TLS listener in Terminate mode with a hostname and certificateRefs: nothing to issue")
		return
	}
	parent := map[string]string{certmanager.AnnotationParentRefKind: kind, certmanager.AnnotationParentRefName: gw.Metadata.Name}
	if kind == "ListenerSet" {
		if fb, _ := parseBool(s.ann[AnnotationParentFallback]); fb && gw.Spec.ParentRef != nil {
			parent[certmanager.AnnotationParentRefKind] = "Gateway"
			parent[certmanager.AnnotationParentRefName] = gw.Spec.ParentRef.Name
			if ns := gw.Spec.ParentRef.Namespace; ns != nil && *ns != "" {
				parent[certmanager.AnnotationParentRefNamespace] = *ns
			} else if gw.Metadata.Namespace != "" {
				parent[certmanager.AnnotationParentRefNamespace] = gw.Metadata.Namespace
			}
		}
	}
	certs := s.certificates(entries, parent)
	if c.errCount() != before {
		return
	}
	c.addShim(apiVersion, kind, &gw.Metadata, js, certs, "")
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "true", "1", "t", "yes":
		return true, nil
	}
	return false, nil
}
