package plugin

import (
	"context"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/manifest"
	"github.com/kubectl-acme/kubectl-acme/internal/store"
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

// shimResources are the kinds --apply-ingress applies.
var shimResources = map[string]schema.GroupVersionResource{
	"Ingress":     {Group: "networking.k8s.io", Version: "v1", Resource: "ingresses"},
	"Gateway":     {Group: "gateway.networking.k8s.io", Version: "v1", Resource: "gateways"},
	"ListenerSet": {Group: "gateway.networking.k8s.io", Version: "v1", Resource: "listenersets"},
}

// applyShims applies the Ingresses and Gateways themselves with
// server-side apply, as `kubectl apply --server-side` would, before their
// certificates are issued (an edit-in-place solver needs the Ingress).
func applyShims(ctx context.Context, st *store.Store, shims []*manifest.Shim, ns string) error {
	for _, sh := range shims {
		gv, err := schema.ParseGroupVersion(sh.APIVersion)
		if err != nil {
			return err
		}
		gvr, ok := shimResources[sh.Kind]
		if !ok || gvr.Group != gv.Group {
			gvr = schema.GroupVersionResource{Group: gv.Group, Version: gv.Version, Resource: strings.ToLower(sh.Kind) + "s"}
		}
		gvr.Version = gv.Version
		n := sh.Namespace
		if n == "" {
			n = ns
		}
		_, err = st.Dynamic.Resource(gvr).Namespace(n).Patch(ctx, sh.Name, types.ApplyPatchType, sh.JSON, metav1.PatchOptions{FieldManager: "kubectl-acme"})
		if err != nil {
			return fmt.Errorf("apply %s %s/%s: %w", strings.ToLower(sh.Kind), n, sh.Name, err)
		}
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
