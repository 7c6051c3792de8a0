package manifest

import (
	"fmt"
	"sort"
	"strings"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
)

// Exported is a cert-manager.io/v1 object as cert-manager's CRDs accept
// it: no status, no server-set metadata.
type Exported struct {
	APIVersion string       `json:"apiVersion"`
	Kind       string       `json:"kind"`
	Metadata   ExportedMeta `json:"metadata"`
	Spec       any          `json:"spec"`
}

// ExportedMeta is the metadata kept on export.
type ExportedMeta struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type exportedIssuerSpec struct {
	ACME exportedACME `json:"acme"`
}

type exportedACME struct {
	certmanager.ACMEIssuer
	// EnableDurationFeature makes cert-manager send a Certificate's
	// duration to the CA, as kubectl-acme does.
	EnableDurationFeature bool `json:"enableDurationFeature,omitempty"`
}

// Export turns stored Issuers and Certificates into cert-manager.io/v1
// manifests that adopt the same account key Secrets and TLS Secrets, so
// cert-manager takes over renewals without a new account or certificate.
// Issuers come first. notes say what a user must do or know for the
// hand-over; clusterNamespace is where kubectl-acme keeps ClusterIssuer
// Secrets.
func Export(issuers []*certmanager.Issuer, certs []*certmanager.Certificate, clusterNamespace string) (objs []Exported, notes []string) {
	duration := map[string]bool{}
	for _, c := range certs {
		if c.Spec.Duration != nil {
			duration[refKey(c.Namespace, c.Spec.IssuerRef)] = true
		}
	}
	sorted := append([]*certmanager.Issuer(nil), issuers...)
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if a.IsCluster() != b.IsCluster() {
			return a.IsCluster()
		}
		return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
	})
	for _, iss := range sorted {
		if iss.Spec.ACME == nil {
			continue
		}
		acme := exportedACME{ACMEIssuer: *iss.Spec.ACME}
		kind := iss.Kind
		if kind == "" {
			kind = certmanager.KindIssuer
		}
		ref := certmanager.IssuerRef{Name: iss.Name, Kind: kind}
		acme.EnableDurationFeature = duration[refKey(iss.Namespace, ref)]
		meta := ExportedMeta{Name: iss.Name, Namespace: iss.Namespace}
		if pt := iss.IngressPathType(); pt != "" {
			// Kept, so the manifest applied back to kubectl-acme keeps it;
			// cert-manager ignores it.
			meta.Annotations = map[string]string{certmanager.AnnotationIngressPathType: pt}
			notes = append(notes, fmt.Sprintf("%s/%s: its HTTP-01 Ingress paths use pathType %s (annotation %s); cert-manager has no per-issuer path type: it uses Exact unless its controller runs with --feature-gates=ACMEHTTP01IngressPathTypeExact=false, which gives ImplementationSpecific to every issuer",
				strings.ToLower(kind), iss.Name, pt, certmanager.AnnotationIngressPathType))
		}
		if iss.IsCluster() {
			meta.Namespace = ""
			notes = append(notes, fmt.Sprintf("clusterissuer/%s: its Secrets (account key %s) are in namespace %q; cert-manager reads a ClusterIssuer's Secrets from its cluster resource namespace (default cert-manager): copy them there, or run cert-manager with --cluster-resource-namespace=%s",
				iss.Name, iss.Spec.ACME.PrivateKeySecretRef.Name, clusterNamespace, clusterNamespace))
		}
		objs = append(objs, Exported{APIVersion: certmanager.GroupVersion, Kind: kind, Metadata: meta, Spec: exportedIssuerSpec{ACME: acme}})
	}
	sortedCerts := append([]*certmanager.Certificate(nil), certs...)
	sort.SliceStable(sortedCerts, func(i, j int) bool {
		return sortedCerts[i].Namespace+"/"+sortedCerts[i].Name < sortedCerts[j].Namespace+"/"+sortedCerts[j].Name
	})
	for _, c := range sortedCerts {
		spec := c.Spec
		if spec.IssuerRef.Kind == "" {
			spec.IssuerRef.Kind = certmanager.KindIssuer
		}
		if spec.IssuerRef.Group == "" {
			spec.IssuerRef.Group = certmanager.Group
		}
		ann := map[string]string{}
		for k, v := range c.Annotations {
			if k == certmanager.AnnotationProfile {
				notes = append(notes, fmt.Sprintf("certificate/%s (namespace %s): cert-manager has no per-certificate ACME profile; it orders with its issuer's profile, not %q", c.Name, c.Namespace, v))
				continue
			}
			if strings.HasPrefix(k, "acme.kubectl.io/") {
				continue
			}
			ann[k] = v
		}
		if len(ann) == 0 {
			ann = nil
		}
		objs = append(objs, Exported{
			APIVersion: certmanager.GroupVersion, Kind: certmanager.KindCertificate,
			Metadata: ExportedMeta{Name: c.Name, Namespace: c.Namespace, Labels: c.Labels, Annotations: ann},
			Spec:     spec,
		})
	}
	return objs, notes
}

func refKey(ns string, r certmanager.IssuerRef) string {
	if r.Kind == certmanager.KindClusterIssuer {
		return "ClusterIssuer//" + r.Name
	}
	return "Issuer/" + ns + "/" + r.Name
}
