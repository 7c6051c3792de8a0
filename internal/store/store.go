// Package store keeps kubectl-acme's Issuers, Certificates and keys in
// ordinary Kubernetes objects, so no CRD or controller is needed and the
// user's namespace RBAC covers them:
//
//   - Issuer NAME:        ConfigMap acme-issuer-NAME (data issuer.yaml)
//   - ClusterIssuer NAME: ConfigMap acme-clusterissuer-NAME in the cluster
//     resource namespace (default kubectl-acme)
//   - account key:        Secret privateKeySecretRef.name (key tls.key)
//   - Certificate NAME:   ConfigMap acme-certificate-NAME (data
//     certificate.yaml, summary in annotations for fast listing)
//   - issued certificate: Secret spec.secretName, type kubernetes.io/tls,
//     with cert-manager's annotations.
//
// docs/storage.md describes the layout for users.
package store

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-acme/kubectl-acme/acme"
	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/kube"
)

// Labels and annotations of stored objects.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "kubectl-acme"
	// LabelKind is Issuer, ClusterIssuer, Certificate or AccountKey.
	LabelKind = "acme.kubectl.io/kind"
	// LabelName carries the Issuer's or Certificate's name.
	LabelName = "acme.kubectl.io/name"

	AnnotationServer        = "acme.kubectl.io/server"
	AnnotationEmail         = "acme.kubectl.io/email"
	AnnotationAccountStatus = "acme.kubectl.io/account-status"
	AnnotationSolver        = "acme.kubectl.io/solver"

	AnnotationSecret      = "acme.kubectl.io/secret"
	AnnotationDomains     = "acme.kubectl.io/domains"
	AnnotationIssuer      = "acme.kubectl.io/issuer"
	AnnotationNotAfter    = "acme.kubectl.io/not-after"
	AnnotationRenewAfter  = "acme.kubectl.io/renew-after"
	AnnotationLastFailure = "acme.kubectl.io/last-failure"

	issuerKey      = "issuer.yaml"
	certificateKey = "certificate.yaml"
	// AccountKeyKey is cert-manager's key for the account key in its Secret.
	AccountKeyKey = "tls.key"
)

// DefaultClusterNamespace holds ClusterIssuers and their account keys, as
// cert-manager's cluster resource namespace does.
const DefaultClusterNamespace = "kubectl-acme"

// ErrNotFound is returned for a missing Issuer or Certificate.
var ErrNotFound = errors.New("not found")

// Store reads and writes kubectl-acme's objects.
type Store struct {
	Client kubernetes.Interface
	// Dynamic reaches the kinds client-go has no typed client for: the
	// Gateway API's HTTPRoutes, which the HTTPRoute solver creates. Nil
	// where no such solver runs.
	Dynamic dynamic.Interface
	// ClusterNamespace holds ClusterIssuers; DefaultClusterNamespace if empty.
	ClusterNamespace string
	// Cluster is the API server's URL; it tells apart the same namespace
	// and name in two clusters in local files (issuance's recovery records).
	Cluster string
}

func (s *Store) clusterNamespace() string {
	if s.ClusterNamespace != "" {
		return s.ClusterNamespace
	}
	return DefaultClusterNamespace
}

// IssuerConfigMapName is the ConfigMap holding an Issuer or ClusterIssuer.
func IssuerConfigMapName(name string, cluster bool) string {
	if cluster {
		return "acme-clusterissuer-" + name
	}
	return "acme-issuer-" + name
}

// CertificateConfigMapName is the ConfigMap holding a Certificate.
func CertificateConfigMapName(name string) string { return "acme-certificate-" + name }

// IssuerNamespace is where an Issuer's objects live.
func (s *Store) IssuerNamespace(iss *certmanager.Issuer) string {
	if iss.IsCluster() {
		return s.clusterNamespace()
	}
	return iss.Namespace
}

// GetIssuer reads an Issuer (ns is ignored for a ClusterIssuer).
func (s *Store) GetIssuer(ctx context.Context, ns, name string, cluster bool) (*certmanager.Issuer, error) {
	if cluster {
		ns = s.clusterNamespace()
	}
	cm, err := s.Client.CoreV1().ConfigMaps(ns).Get(ctx, IssuerConfigMapName(name, cluster), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		kind := "Issuer"
		if cluster {
			kind = "ClusterIssuer"
		}
		return nil, fmt.Errorf("%s %q %w in namespace %q (create it with kubectl acme create issuer)", kind, name, ErrNotFound, ns)
	}
	if err != nil {
		return nil, kube.Describe(err, "get", "configmaps", ns)
	}
	return decodeIssuer(cm)
}

func decodeIssuer(cm *corev1.ConfigMap) (*certmanager.Issuer, error) {
	iss := &certmanager.Issuer{}
	if err := yaml.Unmarshal([]byte(cm.Data[issuerKey]), iss); err != nil {
		return nil, fmt.Errorf("configmap %s/%s: bad %s: %w", cm.Namespace, cm.Name, issuerKey, err)
	}
	iss.CreationTimestamp = cm.CreationTimestamp
	iss.ResourceVersion = cm.ResourceVersion
	return iss, nil
}

// SaveIssuer creates or updates the Issuer's ConfigMap. An existing
// ConfigMap of that name that kubectl-acme did not create is left alone.
func (s *Store) SaveIssuer(ctx context.Context, iss *certmanager.Issuer) error {
	ns := s.IssuerNamespace(iss)
	stored := *iss
	stored.TypeMeta = metav1.TypeMeta{APIVersion: certmanager.GroupVersion, Kind: iss.Kind}
	stored.ObjectMeta = metav1.ObjectMeta{Name: iss.Name, Namespace: iss.Namespace}
	if iss.IsCluster() {
		stored.Namespace = ""
	}
	// kubectl-acme's own settings, which cert-manager's Issuer has no
	// field for, are kept; other metadata is not the Issuer's to store.
	for k, v := range iss.Annotations {
		if strings.HasPrefix(k, certmanager.AnnotationPrefix) {
			if stored.Annotations == nil {
				stored.Annotations = map[string]string{}
			}
			stored.Annotations[k] = v
		}
	}
	data, err := yaml.Marshal(&stored)
	if err != nil {
		return err
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name:      IssuerConfigMapName(iss.Name, iss.IsCluster()),
			Namespace: ns,
			Labels:    map[string]string{LabelManagedBy: ManagedBy, LabelKind: iss.Kind, LabelName: iss.Name},
			Annotations: map[string]string{
				AnnotationServer: iss.Spec.ACME.Server,
				AnnotationEmail:  iss.Spec.ACME.Email,
			},
		},
		Data: map[string]string{issuerKey: string(data)},
	}
	if st := iss.Status.ACME; st != nil {
		cm.Annotations[AnnotationAccountStatus] = st.AccountStatus
	}
	if class, legacy := iss.Spec.ACME.IngressClass(); class != "" {
		if legacy {
			cm.Annotations[AnnotationSolver] = "http01 ingress class=" + class
		} else {
			cm.Annotations[AnnotationSolver] = "http01 ingressClassName=" + class
		}
	}
	rv, err := s.upsertConfigMap(ctx, cm, iss.ResourceVersion)
	if err != nil {
		return err
	}
	iss.ResourceVersion = rv
	return nil
}

// upsertConfigMap writes cm and returns its new resourceVersion. With the
// resourceVersion the object was read at, it updates directly: the
// precondition proves the object is unchanged, so still ours. Without one
// it creates. Only when that fails does it read the object, refusing to
// overwrite one kubectl-acme did not create.
func (s *Store) upsertConfigMap(ctx context.Context, cm *corev1.ConfigMap, knownRV string) (string, error) {
	cms := s.Client.CoreV1().ConfigMaps(cm.Namespace)
	if knownRV != "" {
		cm.ResourceVersion = knownRV
		out, err := cms.Update(ctx, cm, metav1.UpdateOptions{})
		if err == nil {
			return out.ResourceVersion, nil
		}
		if !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
			return "", kube.Describe(err, "update", "configmaps", cm.Namespace)
		}
	} else {
		out, err := cms.Create(ctx, cm, metav1.CreateOptions{})
		if err == nil {
			return out.ResourceVersion, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return "", kube.Describe(err, "create", "configmaps", cm.Namespace)
		}
	}
	cm.ResourceVersion = ""
	old, err := cms.Get(ctx, cm.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		out, err := cms.Create(ctx, cm, metav1.CreateOptions{})
		if err != nil {
			return "", kube.Describe(err, "create", "configmaps", cm.Namespace)
		}
		return out.ResourceVersion, nil
	}
	if err != nil {
		return "", kube.Describe(err, "get", "configmaps", cm.Namespace)
	}
	if old.Labels[LabelManagedBy] != ManagedBy {
		return "", fmt.Errorf("configmap %s/%s exists and was not created by kubectl-acme; not overwriting it", cm.Namespace, cm.Name)
	}
	// Optimistic concurrency: a concurrent writer makes this a conflict
	// instead of a lost update.
	cm.ResourceVersion = old.ResourceVersion
	out, err := cms.Update(ctx, cm, metav1.UpdateOptions{})
	if err != nil {
		return "", kube.Describe(err, "update", "configmaps", cm.Namespace)
	}
	return out.ResourceVersion, nil
}

// ListIssuers lists Issuers in ns ("" for all namespaces) and, if
// withCluster, ClusterIssuers.
func (s *Store) ListIssuers(ctx context.Context, ns string, withCluster bool) ([]*certmanager.Issuer, error) {
	var out []*certmanager.Issuer
	list := func(ns, kind string) error {
		cms, err := s.Client.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{
			LabelSelector: LabelManagedBy + "=" + ManagedBy + "," + LabelKind + "=" + kind,
		})
		if err != nil {
			return kube.Describe(err, "list", "configmaps", ns)
		}
		for i := range cms.Items {
			iss, err := decodeIssuer(&cms.Items[i])
			if err != nil {
				return err
			}
			out = append(out, iss)
		}
		return nil
	}
	if err := list(ns, certmanager.KindIssuer); err != nil {
		return nil, err
	}
	if withCluster {
		if err := list(s.clusterNamespace(), certmanager.KindClusterIssuer); err != nil && !apierrors.IsForbidden(errors.Unwrap(err)) {
			return nil, err
		}
	}
	return out, nil
}

// AccountKey returns the Issuer's account key, creating the Secret with a
// new ECDSA P-256 key only when it does not exist. An existing Secret is
// never replaced: losing an account key loses the account.
func (s *Store) AccountKey(ctx context.Context, iss *certmanager.Issuer) (key crypto.Signer, created bool, err error) {
	ns := s.IssuerNamespace(iss)
	ref := iss.Spec.ACME.PrivateKeySecretRef
	dataKey := ref.Key
	if dataKey == "" {
		dataKey = AccountKeyKey
	}
	secrets := s.Client.CoreV1().Secrets(ns)
	sec, err := secrets.Get(ctx, ref.Name, metav1.GetOptions{})
	if err == nil {
		return parseAccountKey(sec, dataKey)
	}
	if !apierrors.IsNotFound(err) {
		return nil, false, kube.Describe(err, "get", "secrets", ns)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, false, err
	}
	pemKey, err := acme.EncodeKey(k, "")
	if err != nil {
		return nil, false, err
	}
	sec = &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:      ref.Name,
			Namespace: ns,
			Labels:    map[string]string{LabelManagedBy: ManagedBy, LabelKind: "AccountKey", LabelName: iss.Name},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{dataKey: pemKey},
	}
	if _, err := secrets.Create(ctx, sec, metav1.CreateOptions{}); err != nil {
		if apierrors.IsAlreadyExists(err) {
			// Someone else created it first: use theirs.
			sec, err := secrets.Get(ctx, ref.Name, metav1.GetOptions{})
			if err != nil {
				return nil, false, kube.Describe(err, "get", "secrets", ns)
			}
			return parseAccountKey(sec, dataKey)
		}
		return nil, false, kube.Describe(err, "create", "secrets", ns)
	}
	return k, true, nil
}

// ExistingAccountKey returns the Issuer's account key and fails if its
// Secret is missing: issuing must not silently register a new account.
func (s *Store) ExistingAccountKey(ctx context.Context, iss *certmanager.Issuer) (crypto.Signer, error) {
	ns := s.IssuerNamespace(iss)
	ref := iss.Spec.ACME.PrivateKeySecretRef
	sec, err := s.Client.CoreV1().Secrets(ns).Get(ctx, ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("issuer %q: its account key secret %s/%s is missing; restore it, or run kubectl acme create issuer again to register a new account", iss.Name, ns, ref.Name)
	}
	if err != nil {
		return nil, kube.Describe(err, "get", "secrets", ns)
	}
	key := ref.Key
	if key == "" {
		key = AccountKeyKey
	}
	k, _, err := parseAccountKey(sec, key)
	return k, err
}

func parseAccountKey(sec *corev1.Secret, dataKey string) (crypto.Signer, bool, error) {
	data, ok := sec.Data[dataKey]
	if !ok {
		return nil, false, fmt.Errorf("account key secret %s/%s has no key %q; kubectl-acme will not replace it (fix the secret or choose another with privateKeySecretRef)", sec.Namespace, sec.Name, dataKey)
	}
	k, err := acme.ParseKey(data)
	if err != nil {
		// Never echo the data: it is a private key.
		return nil, false, fmt.Errorf("account key secret %s/%s key %q is not a PEM private key (%v); kubectl-acme will not replace it", sec.Namespace, sec.Name, dataKey, err)
	}
	return k, false, nil
}
