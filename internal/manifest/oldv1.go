package manifest

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
)

// cert-manager.io/v1alpha2, v1alpha3 and v1beta1 (cert-manager 0.11 to
// 1.5; 1.6 stopped serving them) are read as cmctl convert converts them
// (cert-manager/cmctl pkg/convert/internal/apis/certmanager/*/conversion.go):
// Issuers are unchanged (the ACME fields kept their shape); a
// Certificate's emailSANs and uriSANs became emailAddresses and uris, and
// in v1alpha2 and v1alpha3 its spec-level keyAlgorithm, keySize,
// keyEncoding and organization became privateKey and subject.organizations.
func (c *doc) decodeOldV1(apiVersion, kind, name string, js []byte) {
	switch kind {
	case certmanager.KindIssuer, certmanager.KindClusterIssuer:
	case certmanager.KindCertificate:
		converted, err := convertOldCertificate(apiVersion, js)
		if err != nil {
			c.fail("", err.Error())
			return
		}
		js = converted
	default:
		c.fail("kind", fmt.Sprintf("%s %s is not supported: kubectl-acme applies Issuer, ClusterIssuer and Certificate", apiVersion, kind))
		return
	}
	before := c.errCount()
	c.decodeV1(kind, js)
	if c.errCount() == before {
		c.notef("%s %s: converted from %s to %s as cmctl convert does (cert-manager 1.6 stopped serving %s)", kind, name, apiVersion, VersionV1, apiVersion)
	}
}

// convertOldCertificate renames a Certificate's fields into their v1
// places; fields that do not move are left for the v1 decoding to check.
func convertOldCertificate(apiVersion string, js []byte) ([]byte, error) {
	var obj map[string]any
	if err := json.Unmarshal(js, &obj); err != nil {
		return nil, err
	}
	spec, ok := obj["spec"].(map[string]any)
	if !ok {
		return js, nil
	}
	move := func(from, to string) {
		if v, ok := spec[from]; ok {
			if _, taken := spec[to]; !taken {
				spec[to] = v
				delete(spec, from)
			}
		}
	}
	move("emailSANs", "emailAddresses")
	move("uriSANs", "uris")
	if !strings.HasSuffix(apiVersion, "/v1beta1") {
		pk := map[string]any{}
		if v, ok := spec["privateKey"].(map[string]any); ok {
			pk = v
		}
		for from, to := range map[string]string{"keyAlgorithm": "algorithm", "keySize": "size", "keyEncoding": "encoding"} {
			v, ok := spec[from]
			if !ok {
				continue
			}
			delete(spec, from)
			// v1alpha2 spelled the algorithm and encoding in lower case
			// (rsa, ecdsa, pkcs1, pkcs8).
			if s, isStr := v.(string); isStr && to != "size" {
				v = strings.ToUpper(s)
			}
			pk[to] = v
		}
		if len(pk) > 0 {
			spec["privateKey"] = pk
		}
		if v, ok := spec["organization"]; ok {
			delete(spec, "organization")
			sub, _ := spec["subject"].(map[string]any)
			if sub == nil {
				sub = map[string]any{}
			}
			sub["organizations"] = v
			spec["subject"] = sub
		}
	}
	return json.Marshal(obj)
}
