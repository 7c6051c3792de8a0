package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/kube"
)

// cert-manager's annotations on issued Secrets, read by existing tools.
const (
	AnnotationCMCommonName      = "cert-manager.io/common-name"
	AnnotationCMAltNames        = "cert-manager.io/alt-names"
	AnnotationCMIPSANs          = "cert-manager.io/ip-sans"
	AnnotationCMURISANs         = "cert-manager.io/uri-sans"
	AnnotationCMIssuerName      = "cert-manager.io/issuer-name"
	AnnotationCMIssuerKind      = "cert-manager.io/issuer-kind"
	AnnotationCMIssuerGroup     = "cert-manager.io/issuer-group"
	AnnotationCMCertificateName = "cert-manager.io/certificate-name"
)

// AnnotationRevoked on a Certificate ConfigMap holds the revocation reason
// of the stored certificate.
const AnnotationRevoked = "acme.kubectl.io/revoked"

// GetCertificate reads a Certificate.
func (s *Store) GetCertificate(ctx context.Context, ns, name string) (*certmanager.Certificate, error) {
	cm, err := s.Client.CoreV1().ConfigMaps(ns).Get(ctx, CertificateConfigMapName(name), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("certificate %q %w in namespace %q", name, ErrNotFound, ns)
	}
	if err != nil {
		return nil, kube.Describe(err, "get", "configmaps", ns)
	}
	return DecodeCertificate(cm)
}

// DecodeCertificate reads a Certificate from its ConfigMap.
func DecodeCertificate(cm *corev1.ConfigMap) (*certmanager.Certificate, error) {
	c := &certmanager.Certificate{}
	if err := yaml.Unmarshal([]byte(cm.Data[certificateKey]), c); err != nil {
		return nil, fmt.Errorf("configmap %s/%s: bad %s: %w", cm.Namespace, cm.Name, certificateKey, err)
	}
	c.Namespace = cm.Namespace
	c.CreationTimestamp = cm.CreationTimestamp
	c.ResourceVersion = cm.ResourceVersion
	return c, nil
}

// SaveCertificate creates or updates the Certificate's ConfigMap, with the
// fields `status` prints copied into annotations so listing needs no
// decoding.
func (s *Store) SaveCertificate(ctx context.Context, c *certmanager.Certificate) error {
	stored := *c
	stored.TypeMeta = metav1.TypeMeta{APIVersion: certmanager.GroupVersion, Kind: certmanager.KindCertificate}
	stored.ObjectMeta = metav1.ObjectMeta{Name: c.Name, Namespace: c.Namespace, Labels: c.Labels, Annotations: c.Annotations}
	data, err := yaml.Marshal(&stored)
	if err != nil {
		return err
	}
	dns, ips := c.Spec.Identifiers()
	ann := map[string]string{
		AnnotationSecret:  c.Spec.SecretName,
		AnnotationDomains: strings.Join(append(dns, ips...), ","),
		AnnotationIssuer:  IssuerRefString(c.Spec.IssuerRef),
	}
	st := c.Status
	if st.NotAfter != nil {
		ann[AnnotationNotAfter] = st.NotAfter.UTC().Format(time.RFC3339)
	}
	if st.RenewalTime != nil {
		ann[AnnotationRenewAfter] = st.RenewalTime.UTC().Format(time.RFC3339)
	}
	if st.LastFailure != "" {
		ann[AnnotationLastFailure] = st.LastFailure
	}
	if st.Revoked != nil && st.Revoked.Serial == st.Serial {
		ann[AnnotationRevoked] = st.Revoked.Reason
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name:        CertificateConfigMapName(c.Name),
			Namespace:   c.Namespace,
			Labels:      map[string]string{LabelManagedBy: ManagedBy, LabelKind: certmanager.KindCertificate, LabelName: c.Name},
			Annotations: ann,
		},
		Data: map[string]string{certificateKey: string(data)},
	}
	rv, err := s.upsertConfigMap(ctx, cm, c.ResourceVersion)
	if err != nil {
		return err
	}
	c.ResourceVersion = rv
	return nil
}

// IssuerRefString renders an issuer reference as Kind/name.
func IssuerRefString(r certmanager.IssuerRef) string {
	kind := r.Kind
	if kind == "" {
		kind = certmanager.KindIssuer
	}
	return kind + "/" + r.Name
}

// CertificateSelector selects the ConfigMaps holding Certificates.
const CertificateSelector = LabelManagedBy + "=" + ManagedBy + "," + LabelKind + "=" + certmanager.KindCertificate

// ListCertificates reads every Certificate in ns ("" for all namespaces).
func (s *Store) ListCertificates(ctx context.Context, ns string) ([]*certmanager.Certificate, error) {
	cms, err := s.Client.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{LabelSelector: CertificateSelector})
	if err != nil {
		return nil, kube.Describe(err, "list", "configmaps", ns)
	}
	out := make([]*certmanager.Certificate, 0, len(cms.Items))
	for i := range cms.Items {
		c, err := DecodeCertificate(&cms.Items[i])
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// ErrSecretNotOwned is returned when the target Secret exists and was not
// written by kubectl-acme for this Certificate.
type ErrSecretNotOwned struct{ Namespace, Name, Owner string }

func (e *ErrSecretNotOwned) Error() string {
	who := "was not created by kubectl-acme"
	if e.Owner != "" {
		who = "belongs to certificate " + e.Owner
	}
	return fmt.Sprintf("secret %s/%s exists and %s; refusing to overwrite it (use --force to replace it, or --secret to pick another name)", e.Namespace, e.Name, who)
}

// TargetSecret is a Certificate's Secret as read before its order, so that
// the write after it needs no second read: Existing is nil when there was
// none.
type TargetSecret struct {
	Existing *corev1.Secret
}

// ReadTargetSecret reads the Certificate's Secret before an order is placed,
// and fails early when it exists and belongs to someone else.
func (s *Store) ReadTargetSecret(ctx context.Context, c *certmanager.Certificate, force bool) (*TargetSecret, error) {
	sec, err := s.GetSecret(ctx, c)
	if err != nil {
		return nil, err
	}
	if sec != nil {
		if err := ownsSecret(sec, c.Name, force); err != nil {
			return nil, err
		}
	}
	return &TargetSecret{Existing: sec}, nil
}

// CheckSecretWritable fails when the Certificate's Secret exists and
// belongs to someone else.
func (s *Store) CheckSecretWritable(ctx context.Context, c *certmanager.Certificate, force bool) error {
	_, err := s.ReadTargetSecret(ctx, c, force)
	return err
}

func ownsSecret(sec *corev1.Secret, cert string, force bool) error {
	if force {
		return nil
	}
	owner := sec.Annotations[AnnotationCMCertificateName]
	if sec.Labels[LabelManagedBy] == ManagedBy && owner == cert {
		return nil
	}
	if sec.Labels[LabelManagedBy] != ManagedBy {
		owner = ""
	}
	return &ErrSecretNotOwned{Namespace: sec.Namespace, Name: sec.Name, Owner: owner}
}

// GetSecret reads the Certificate's Secret; nil if it does not exist.
func (s *Store) GetSecret(ctx context.Context, c *certmanager.Certificate) (*corev1.Secret, error) {
	sec, err := s.Client.CoreV1().Secrets(c.Namespace).Get(ctx, c.Spec.SecretName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, kube.Describe(err, "get", "secrets", c.Namespace)
	}
	return sec, nil
}

// WriteTLSSecret stores the chain and key in a kubernetes.io/tls Secret in
// one write, so an Ingress never sees a new certificate with an old key.
// known is the Secret as read before the order (nil: read it now). An
// update carries the resourceVersion read, so a concurrent writer causes a
// conflict rather than a silent overwrite; the caller retries with nil.
func (s *Store) WriteTLSSecret(ctx context.Context, c *certmanager.Certificate, known *TargetSecret, chainPEM, keyPEM []byte, force bool) error {
	dns, ips := c.Spec.Identifiers()
	ann := map[string]string{
		AnnotationCMCommonName:      c.Spec.CommonName,
		AnnotationCMAltNames:        strings.Join(dns, ","),
		AnnotationCMIPSANs:          strings.Join(ips, ","),
		AnnotationCMURISANs:         "",
		AnnotationCMIssuerName:      c.Spec.IssuerRef.Name,
		AnnotationCMIssuerKind:      orDefault(c.Spec.IssuerRef.Kind, certmanager.KindIssuer),
		AnnotationCMIssuerGroup:     certmanager.Group,
		AnnotationCMCertificateName: c.Name,
	}
	secrets := s.Client.CoreV1().Secrets(c.Namespace)
	if known == nil {
		old, err := s.GetSecret(ctx, c)
		if err != nil {
			return err
		}
		known = &TargetSecret{Existing: old}
	}
	if old := known.Existing; old != nil {
		if err := ownsSecret(old, c.Name, force); err != nil {
			return err
		}
		if old.Type != corev1.SecretTypeTLS {
			// The type of a Secret is immutable.
			return fmt.Errorf("secret %s/%s has type %s, not %s; delete it first", old.Namespace, old.Name, old.Type, corev1.SecretTypeTLS)
		}
		sec := old.DeepCopy()
		if sec.Labels == nil {
			sec.Labels = map[string]string{}
		}
		if sec.Annotations == nil {
			sec.Annotations = map[string]string{}
		}
		sec.Labels[LabelManagedBy] = ManagedBy
		for k, v := range ann {
			sec.Annotations[k] = v
		}
		if sec.Data == nil {
			sec.Data = map[string][]byte{}
		}
		sec.Data[corev1.TLSCertKey] = chainPEM
		sec.Data[corev1.TLSPrivateKeyKey] = keyPEM
		applySecretTemplate(sec, c, chainPEM, keyPEM)
		if _, err := secrets.Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
			return kube.Describe(err, "update", "secrets", c.Namespace)
		}
		return nil
	}
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:        c.Spec.SecretName,
			Namespace:   c.Namespace,
			Labels:      map[string]string{LabelManagedBy: ManagedBy},
			Annotations: ann,
		},
		Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: chainPEM, corev1.TLSPrivateKeyKey: keyPEM},
	}
	applySecretTemplate(sec, c, chainPEM, keyPEM)
	_, err := secrets.Create(ctx, sec, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		// Created meanwhile, perhaps by this very request retried after a
		// lost answer: write it through the update path, which checks it is ours.
		return s.WriteTLSSecret(ctx, c, nil, chainPEM, keyPEM, force)
	}
	if err != nil {
		return kube.Describe(err, "create", "secrets", c.Namespace)
	}
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// DeleteCertificate deletes a Certificate's ConfigMap.
func (s *Store) DeleteCertificate(ctx context.Context, c *certmanager.Certificate) error {
	err := s.Client.CoreV1().ConfigMaps(c.Namespace).Delete(ctx, CertificateConfigMapName(c.Name), metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return kube.Describe(err, "delete", "configmaps", c.Namespace)
	}
	return nil
}

// DeleteTLSSecret deletes the Certificate's Secret if kubectl-acme wrote
// it for this Certificate; a Secret owned by anyone else is an error. It
// reports whether a Secret was deleted.
func (s *Store) DeleteTLSSecret(ctx context.Context, c *certmanager.Certificate) (bool, error) {
	sec, err := s.GetSecret(ctx, c)
	if err != nil || sec == nil {
		return false, err
	}
	if err := ownsSecret(sec, c.Name, false); err != nil {
		return false, err
	}
	// Preconditions: delete exactly the Secret that was checked.
	uid, rv := sec.UID, sec.ResourceVersion
	err = s.Client.CoreV1().Secrets(c.Namespace).Delete(ctx, sec.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv},
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return false, kube.Describe(err, "delete", "secrets", c.Namespace)
	}
	return true, nil
}

// GetCertificateAndIssuer reads a Certificate and an Issuer of namespace ns
// with one request, a list by label, since issuing needs both before
// anything else. Either is nil when it is not found; GetCertificate and
// GetIssuer then say why.
func (s *Store) GetCertificateAndIssuer(ctx context.Context, ns, cert, issuer string) (*certmanager.Certificate, *certmanager.Issuer, error) {
	sel := fmt.Sprintf("%s=%s,%s in (%s,%s)", LabelManagedBy, ManagedBy, LabelName, cert, issuer)
	list, err := s.Client.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, nil, kube.Describe(err, "list", "configmaps", ns)
	}
	var c *certmanager.Certificate
	var iss *certmanager.Issuer
	for i := range list.Items {
		cm := &list.Items[i]
		switch cm.Name {
		case CertificateConfigMapName(cert):
			if c, err = DecodeCertificate(cm); err != nil {
				return nil, nil, err
			}
		case IssuerConfigMapName(issuer, false):
			if iss, err = decodeIssuer(cm); err != nil {
				return nil, nil, err
			}
		}
	}
	return c, iss, nil
}

// listByNameChunk bounds the names of one LIST's label selector, which
// travels in the request URL.
const listByNameChunk = 100

// GetCertificates reads the named Certificates of ns with one LIST by
// label per listByNameChunk names, instead of a GET each. A Certificate
// not stored is absent from the map. Names too long for a label value
// (over 63 characters) cannot be selected: they are read one by one.
func (s *Store) GetCertificates(ctx context.Context, ns string, names []string) (map[string]*certmanager.Certificate, error) {
	out := map[string]*certmanager.Certificate{}
	var selectable []string
	for _, n := range names {
		if len(validation.IsValidLabelValue(n)) > 0 {
			c, err := s.GetCertificate(ctx, ns, n)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			out[n] = c
			continue
		}
		selectable = append(selectable, n)
	}
	for len(selectable) > 0 {
		chunk := selectable[:min(len(selectable), listByNameChunk)]
		selectable = selectable[len(chunk):]
		sel := fmt.Sprintf("%s,%s in (%s)", CertificateSelector, LabelName, strings.Join(chunk, ","))
		cms, err := s.Client.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return nil, kube.Describe(err, "list", "configmaps", ns)
		}
		for i := range cms.Items {
			cm := &cms.Items[i]
			name := strings.TrimPrefix(cm.Name, CertificateConfigMapName(""))
			if cm.Name != CertificateConfigMapName(cm.Labels[LabelName]) {
				continue
			}
			c, err := DecodeCertificate(cm)
			if err != nil {
				return nil, err
			}
			out[name] = c
		}
	}
	return out, nil
}
