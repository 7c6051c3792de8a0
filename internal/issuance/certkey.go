package issuance

import (
	"crypto"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubectl-acme/kubectl-acme/acme"
	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/store"
)

// certKey is a certificate's private key, made in the background when it
// is a new RSA key. An RSA key costs about 100 ms of CPU, and a batch's
// twenty keys on two cores made the first order wait a second; the CA
// needs the key only for the CSR at finalize, after the challenges, so the
// order goes out first. certKey is the crypto.Signer the CSR is signed
// with: it waits for the key.
type certKey struct {
	done chan struct{}
	key  crypto.Signer
	pem  []byte
	err  error
}

var _ crypto.Signer = (*certKey)(nil)

// keySlots bounds the RSA keys made at once, leaving a core to the
// orders and the API requests of the run.
var keySlots = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)-1))

// newCertKey is the key of cert's next certificate: the one kept in its
// Secret (rotationPolicy Never), read now, or a new one, made now (ECDSA)
// or in the background (RSA). Every error but the random source's comes
// back here, before the order.
func newCertKey(target *store.TargetSecret, cert *certmanager.Certificate) (*certKey, error) {
	spec := acme.KeySpec{}
	rotation := ""
	if pk := cert.Spec.PrivateKey; pk != nil {
		spec = acme.KeySpec{Algorithm: pk.Algorithm, Size: pk.Size, Encoding: pk.Encoding}
		rotation = pk.RotationPolicy
	}
	k := &certKey{done: make(chan struct{})}
	kept := rotation == "Never" && target.Existing != nil && target.Existing.Data[corev1.TLSPrivateKeyKey] != nil
	if kept || !strings.EqualFold(spec.Algorithm, "RSA") && spec.Algorithm != "" {
		defer close(k.done)
		k.key, k.err = privateKey(target, cert, spec, rotation)
		if k.err == nil {
			k.pem, k.err = acme.EncodeKey(k.key, spec.Encoding)
		}
		return k, k.err
	}
	go func() {
		defer close(k.done)
		keySlots <- struct{}{}
		defer func() { <-keySlots }()
		k.key, k.err = acme.GenerateKey(spec)
		if k.err == nil {
			k.pem, k.err = acme.EncodeKey(k.key, spec.Encoding)
		}
		if k.err != nil {
			k.err = fmt.Errorf("generate the certificate key: %w", k.err)
		}
	}()
	return k, nil
}

// PEM waits for the key and returns it PEM-encoded.
func (k *certKey) PEM() ([]byte, error) {
	<-k.done
	return k.pem, k.err
}

// failed is why the key could not be made; nil while it is being made.
func (k *certKey) failed() error {
	select {
	case <-k.done:
		return k.err
	default:
		return nil
	}
}

// Public waits for the key; nil when it could not be made (Err says why).
func (k *certKey) Public() crypto.PublicKey {
	<-k.done
	if k.err != nil {
		return nil
	}
	return k.key.Public()
}

// Sign waits for the key and signs with it.
func (k *certKey) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	<-k.done
	if k.err != nil {
		return nil, k.err
	}
	if k.key == nil {
		return nil, errors.New("no certificate key")
	}
	return k.key.Sign(rand, digest, opts)
}
