package acme

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"testing"
)

// The usages requested go into the CSR's extension request in the shape
// crypto/x509 reads back from a certificate.
func TestCertRequestUsages(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := certRequest(Request{
		DNSNames: []string{"a.example.com"}, Key: key,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	var ku asn1.BitString
	var eku []asn1.ObjectIdentifier
	found := 0
	for _, e := range csr.Extensions {
		switch {
		case e.Id.Equal(oidExtKeyUsage):
			found++
			if !e.Critical {
				t.Error("key usage not critical")
			}
			if _, err := asn1.Unmarshal(e.Value, &ku); err != nil {
				t.Fatal(err)
			}
		case e.Id.Equal(oidExtExtKeyUsage):
			found++
			if _, err := asn1.Unmarshal(e.Value, &eku); err != nil {
				t.Fatal(err)
			}
		}
	}
	if found != 2 {
		t.Fatalf("extensions %v, want key usage and EKU", csr.Extensions)
	}
	// RFC 5280: digitalSignature is bit 0, keyEncipherment bit 2.
	if ku.At(0) != 1 || ku.At(1) != 0 || ku.At(2) != 1 || ku.BitLength != 3 {
		t.Errorf("key usage bits %x/%d", ku.Bytes, ku.BitLength)
	}
	if len(eku) != 1 || !eku[0].Equal(extKeyUsageOIDs[x509.ExtKeyUsageServerAuth]) {
		t.Errorf("EKU %v", eku)
	}

	plain, err := certRequest(Request{DNSNames: []string{"a.example.com"}, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	csr, _ = x509.ParseCertificateRequest(plain)
	for _, e := range csr.Extensions {
		if e.Id.Equal(oidExtKeyUsage) || e.Id.Equal(oidExtExtKeyUsage) {
			t.Errorf("usage extension %v without usages", e.Id)
		}
	}
}
