package plugin

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/manifest"
)

// shimFlags are apply's flags for Ingresses and Gateways whose
// cert-manager annotations ask for certificates.
type shimFlags struct {
	DefaultIssuerName string
	DefaultIssuerKind string
	ApplyIngress      bool
}

// defaultIssuer is cert-manager's --default-issuer-name/-kind: the issuer
// of an Ingress annotated only with kubernetes.io/tls-acme: "true".
func (f *shimFlags) defaultIssuer() *certmanager.IssuerRef {
	if f.DefaultIssuerName == "" {
		return nil
	}
	return &certmanager.IssuerRef{Name: f.DefaultIssuerName, Kind: f.DefaultIssuerKind, Group: certmanager.Group}
}

func (f *shimFlags) validate(decoded *manifest.Result) error {
	switch f.DefaultIssuerKind {
	case certmanager.KindIssuer, certmanager.KindClusterIssuer:
	default:
		return fmt.Errorf("--default-issuer-kind %q: use Issuer or ClusterIssuer", f.DefaultIssuerKind)
	}
	if !f.ApplyIngress || decoded == nil {
		return nil
	}
	var bad []string
	for _, sh := range decoded.Shims {
		if sh.Unserved != "" {
			bad = append(bad, fmt.Sprintf("%s: %s: %s", sh.File, sh.Location, sh.Unserved))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("--apply-ingress cannot apply these as written; nothing was changed:\n%s", strings.Join(bad, "\n"))
	}
	return nil
}

// shimHint tells the user how to apply what apply did not.
func shimHint(sh *manifest.Shim) string {
	what := strings.ToLower(sh.Kind) + "/" + sh.Name
	if sh.Unserved != "" {
		return fmt.Sprintf("%s itself was not applied: %s", what, sh.Unserved)
	}
	return fmt.Sprintf("%s itself was not applied (kubectl-acme issued its certificates only): run kubectl apply -f %s, or give --apply-ingress", what, sh.File)
}

// derivedYAML is a Certificate made from an Ingress or Gateway, as
// cert-manager would create it.
func derivedYAML(c *certmanager.Certificate) (string, error) {
	b, err := yaml.Marshal(struct {
		APIVersion string                      `json:"apiVersion"`
		Kind       string                      `json:"kind"`
		Metadata   metav1.ObjectMeta           `json:"metadata"`
		Spec       certmanager.CertificateSpec `json:"spec"`
	}{certmanager.GroupVersion, certmanager.KindCertificate, metav1.ObjectMeta{Name: c.Name, Namespace: c.Namespace, Labels: c.Labels, Annotations: c.Annotations}, c.Spec})
	return string(b), err
}
