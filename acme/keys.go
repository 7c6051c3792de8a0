package acme

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// KeySpec says what private key to make for a certificate.
type KeySpec struct {
	Algorithm string // RSA or ECDSA
	Size      int    // RSA bits or ECDSA curve size
	Encoding  string // PKCS1 or PKCS8
}

// GenerateKey makes a fresh private key; RSA 2048 unless told otherwise.
func GenerateKey(spec KeySpec) (crypto.Signer, error) {
	switch strings.ToUpper(spec.Algorithm) {
	case "", "RSA":
		size := spec.Size
		if size == 0 {
			size = 2048
		}
		return rsa.GenerateKey(rand.Reader, size)
	case "ECDSA":
		switch spec.Size {
		case 0, 256:
			return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		case 384:
			return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		}
		return nil, fmt.Errorf("unsupported ECDSA size %d", spec.Size)
	}
	return nil, fmt.Errorf("unsupported key algorithm %q", spec.Algorithm)
}

// EncodeKey PEM-encodes key. PKCS1 (cert-manager's default) applies to RSA;
// ECDSA keys use SEC 1 in that case, as cert-manager does.
func EncodeKey(key crypto.Signer, encoding string) ([]byte, error) {
	if encoding == "PKCS8" {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), nil
	case *ecdsa.PrivateKey:
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			return nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
	}
	return nil, fmt.Errorf("unsupported key type %T", key)
}

// ParseKey reads a PEM private key in PKCS#1, SEC 1 or PKCS#8 form.
func ParseKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		return x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		return x509.ParseECPrivateKey(block.Bytes)
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("unsupported PKCS#8 key type %T", k)
		}
		return s, nil
	}
	return nil, fmt.Errorf("unsupported PEM block %q", block.Type)
}

// KeyDescription names a key's type and size, e.g. "ECDSA P-256".
func KeyDescription(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	}
	return fmt.Sprintf("%T", pub)
}
