package acme

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	xacme "golang.org/x/crypto/acme"
)

func TestCertID(t *testing.T) {
	// The example of RFC 9773 section 4.1.
	leaf := &x509.Certificate{
		AuthorityKeyId: []byte{0x69, 0x88, 0x5B, 0x6B, 0x87, 0x46, 0x40, 0x41, 0xE1, 0xB3, 0x7B, 0x84, 0x7B, 0xA0, 0xAE, 0x2C, 0xDE, 0x01, 0xC8, 0xD4},
		SerialNumber:   new(big.Int).SetBytes([]byte{0x00, 0x87, 0x65, 0x43, 0x21}),
	}
	id, err := CertID(leaf)
	if err != nil {
		t.Fatal(err)
	}
	if want := "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"; id != want {
		t.Errorf("CertID = %s, want %s", id, want)
	}
	if _, err := CertID(&x509.Certificate{SerialNumber: big.NewInt(1)}); err == nil {
		t.Error("a certificate without AKI got a CertID")
	}
}

func TestJWSVerifies(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	body, err := jwsEncode(key, "https://ca/acct/1", "nonce", "https://ca/new-order", []byte(`{"replaces":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	var jws struct{ Protected, Payload, Signature string }
	if err := json.Unmarshal(body, &jws); err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	hdr, _ := enc.DecodeString(jws.Protected)
	if !strings.Contains(string(hdr), `"alg":"ES256"`) || !strings.Contains(string(hdr), `"kid":"https://ca/acct/1"`) {
		t.Errorf("header %s", hdr)
	}
	sig, _ := enc.DecodeString(jws.Signature)
	digest := sha256.Sum256([]byte(jws.Protected + "." + jws.Payload))
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	if len(sig) != 64 || !ecdsa.Verify(&key.PublicKey, digest[:], r, s) {
		t.Error("signature does not verify")
	}
}

func TestProblemKeepsContextAndChain(t *testing.T) {
	p := &xacme.Error{StatusCode: 429, ProblemType: "urn:ietf:params:acme:error:rateLimited", Detail: "too many",
		Header: http.Header{"Retry-After": []string{"120"}}}
	err := fmt.Errorf("issuer %q: %w", "le", fmt.Errorf("create order: %w", Explain(p)))
	if got := err.Error(); !strings.HasPrefix(got, `issuer "le": create order: rateLimited: too many (retry after `) {
		t.Errorf("message = %q", got)
	}
	var ae *xacme.Error
	if !errors.As(err, &ae) || ae != p {
		t.Error("errors.As does not find the *xacme.Error")
	}
	if d, ok := RateLimit(err); !ok || d != 120*time.Second {
		t.Errorf("RateLimit = %v, %v; want 2m0s, true", d, ok)
	}
	if _, ok := RateLimit(errors.New("plain")); ok {
		t.Error("RateLimit of a plain error")
	}
	plain := errors.New("plain")
	if Explain(plain) != plain || Explain(nil) != nil {
		t.Error("Explain changed an error without a problem")
	}
	if Explain(err) != err {
		t.Error("Explain rewrapped a wrapped problem")
	}
}

func TestRenewalTimeUsesAKI(t *testing.T) {
	// A self-signed certificate has an AKI only if set; CertID needs it.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(255), Subject: pkix.Name{CommonName: "x"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), AuthorityKeyId: []byte{1, 2, 3}, SubjectKeyId: []byte{1, 2, 3}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	id, err := CertID(leaf)
	if err != nil || id != "AQID.AP8" {
		t.Errorf("CertID = %q, %v; want AQID.AP8 (255 needs a leading zero octet)", id, err)
	}
}
