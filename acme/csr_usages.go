package acme

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/bits"
)

// OIDs of RFC 5280 section 4.2.1.3 (key usage), 4.2.1.12 (extended key
// usage) and its id-kp arc.
var (
	oidExtKeyUsage    = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidExtExtKeyUsage = asn1.ObjectIdentifier{2, 5, 29, 37}
	extKeyUsageOIDs   = map[x509.ExtKeyUsage]asn1.ObjectIdentifier{
		x509.ExtKeyUsageServerAuth: {1, 3, 6, 1, 5, 5, 7, 3, 1},
		x509.ExtKeyUsageClientAuth: {1, 3, 6, 1, 5, 5, 7, 3, 2},
	}
)

// usageExtensions encodes the key usage and extended key usage extensions
// for a CSR's extension request. x509.CertificateRequest has no fields for
// them, so they go in as ExtraExtensions, encoded as crypto/x509 encodes
// them in certificates (critical key usage, a BIT STRING of RFC 5280's bit
// numbers; EKU a SEQUENCE of OIDs).
func usageExtensions(ku x509.KeyUsage, eku []x509.ExtKeyUsage) ([]pkix.Extension, error) {
	var exts []pkix.Extension
	if ku != 0 {
		var b [2]byte
		// Bit n of x509.KeyUsage is RFC 5280's bit n, which DER numbers
		// from the most significant bit of the first byte.
		b[0] = bits.Reverse8(byte(ku))
		b[1] = bits.Reverse8(byte(ku >> 8))
		n := 2
		if b[1] == 0 {
			n = 1
		}
		bs := asn1.BitString{Bytes: b[:n], BitLength: n*8 - bits.TrailingZeros8(b[n-1])}
		v, err := asn1.Marshal(bs)
		if err != nil {
			return nil, fmt.Errorf("encode key usage: %w", err)
		}
		exts = append(exts, pkix.Extension{Id: oidExtKeyUsage, Critical: true, Value: v})
	}
	if len(eku) > 0 {
		oids := make([]asn1.ObjectIdentifier, 0, len(eku))
		for _, u := range eku {
			oid, ok := extKeyUsageOIDs[u]
			if !ok {
				return nil, fmt.Errorf("extended key usage %d is not one an ACME CA issues", u)
			}
			oids = append(oids, oid)
		}
		v, err := asn1.Marshal(oids)
		if err != nil {
			return nil, fmt.Errorf("encode extended key usage: %w", err)
		}
		exts = append(exts, pkix.Extension{Id: oidExtExtKeyUsage, Value: v})
	}
	return exts, nil
}
