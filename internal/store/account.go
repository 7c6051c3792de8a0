package store

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"

	xacme "golang.org/x/crypto/acme"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/kube"
)

// Keys of an account key Secret during a key rollover: the new key is
// staged beside the old one before the CA is asked, and the old one is
// kept after, so no step of the rollover can lose the only working key.
const (
	nextKeySuffix     = ".next"
	previousKeySuffix = ".previous"
)

func accountKeyName(iss *certmanager.Issuer) string {
	if k := iss.Spec.ACME.PrivateKeySecretRef.Key; k != "" {
		return k
	}
	return AccountKeyKey
}

// StagedAccountKey returns a staged rollover key, or nil.
func (s *Store) StagedAccountKey(ctx context.Context, iss *certmanager.Issuer) ([]byte, error) {
	ns := s.IssuerNamespace(iss)
	sec, err := s.Client.CoreV1().Secrets(ns).Get(ctx, iss.Spec.ACME.PrivateKeySecretRef.Name, metav1.GetOptions{})
	if err != nil {
		return nil, kube.Describe(err, "get", "secrets", ns)
	}
	return sec.Data[accountKeyName(iss)+nextKeySuffix], nil
}

// StageAccountKey adds the new key beside the current one.
func (s *Store) StageAccountKey(ctx context.Context, iss *certmanager.Issuer, keyPEM []byte) error {
	return s.updateAccountSecret(ctx, iss, func(data map[string][]byte) {
		data[accountKeyName(iss)+nextKeySuffix] = keyPEM
	})
}

// CommitAccountKey makes the staged key current and keeps the old one as
// KEY.previous.
func (s *Store) CommitAccountKey(ctx context.Context, iss *certmanager.Issuer) error {
	k := accountKeyName(iss)
	return s.updateAccountSecret(ctx, iss, func(data map[string][]byte) {
		if next, ok := data[k+nextKeySuffix]; ok {
			data[k+previousKeySuffix] = data[k]
			data[k] = next
			delete(data, k+nextKeySuffix)
		}
	})
}

// DropStagedAccountKey removes a staged key the CA did not accept.
func (s *Store) DropStagedAccountKey(ctx context.Context, iss *certmanager.Issuer) error {
	return s.updateAccountSecret(ctx, iss, func(data map[string][]byte) {
		delete(data, accountKeyName(iss)+nextKeySuffix)
	})
}

func (s *Store) updateAccountSecret(ctx context.Context, iss *certmanager.Issuer, mutate func(map[string][]byte)) error {
	ns := s.IssuerNamespace(iss)
	secrets := s.Client.CoreV1().Secrets(ns)
	sec, err := secrets.Get(ctx, iss.Spec.ACME.PrivateKeySecretRef.Name, metav1.GetOptions{})
	if err != nil {
		return kube.Describe(err, "get", "secrets", ns)
	}
	if sec.Data == nil {
		return fmt.Errorf("account key secret %s/%s is empty", ns, sec.Name)
	}
	mutate(sec.Data)
	// resourceVersion from the Get: a concurrent change is a conflict.
	if _, err := secrets.Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
		if apierrors.IsConflict(err) {
			return fmt.Errorf("account key secret %s/%s changed meanwhile; run the command again: %w", ns, sec.Name, err)
		}
		return kube.Describe(err, "update", "secrets", ns)
	}
	return nil
}

// DeleteIssuer deletes an Issuer's ConfigMap. The account key Secret is
// never deleted: it is the account.
func (s *Store) DeleteIssuer(ctx context.Context, iss *certmanager.Issuer) error {
	ns := s.IssuerNamespace(iss)
	err := s.Client.CoreV1().ConfigMaps(ns).Delete(ctx, IssuerConfigMapName(iss.Name, iss.IsCluster()), metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return kube.Describe(err, "delete", "configmaps", ns)
	}
	return nil
}

// ExternalAccountBinding reads the Issuer's EAB key ID and HMAC key. The
// HMAC key is base64url in the Secret, as CAs hand it out.
func (s *Store) ExternalAccountBinding(ctx context.Context, iss *certmanager.Issuer) (*xacme.ExternalAccountBinding, error) {
	eab := iss.Spec.ACME.ExternalAccountBinding
	ns := s.IssuerNamespace(iss)
	sec, err := s.Client.CoreV1().Secrets(ns).Get(ctx, eab.Key.Name, metav1.GetOptions{})
	if err != nil {
		return nil, kube.Describe(err, "get", "secrets", ns)
	}
	key := eab.Key.Key
	if key == "" {
		key = EABKeyKey
	}
	raw, ok := sec.Data[key]
	if !ok {
		return nil, fmt.Errorf("external account binding: secret %s/%s has no key %q", ns, sec.Name, key)
	}
	hmac, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(strings.TrimSpace(string(raw)), "="))
	if err != nil {
		return nil, fmt.Errorf("external account binding: secret %s/%s key %q is not base64url", ns, sec.Name, key)
	}
	return &xacme.ExternalAccountBinding{KID: eab.KeyID, Key: hmac}, nil
}

// EABKeyKey is the default key of the EAB HMAC in its Secret.
const EABKeyKey = "secret"
