package store

import (
	"bytes"
	"encoding/pem"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
)

// applySecretTemplate adds the Certificate's secretTemplate labels and
// annotations to its Secret (except the managed-by label and cert-manager's
// annotations, which kubectl-acme sets) and writes the additional output formats cert-manager writes:
// tls-combined.pem (the key, then the chain) for CombinedPEM and key.der
// (the key's DER) for DER. A format no longer asked for is removed.
func applySecretTemplate(sec *corev1.Secret, c *certmanager.Certificate, chainPEM, keyPEM []byte) {
	if t := c.Spec.SecretTemplate; t != nil {
		if sec.Labels == nil {
			sec.Labels = map[string]string{}
		}
		if sec.Annotations == nil {
			sec.Annotations = map[string]string{}
		}
		for k, v := range t.Labels {
			if k != LabelManagedBy {
				sec.Labels[k] = v
			}
		}
		for k, v := range t.Annotations {
			if !strings.HasPrefix(k, "cert-manager.io/") {
				sec.Annotations[k] = v
			}
		}
	}
	want := map[string]bool{}
	for _, f := range c.Spec.AdditionalOutputFormats {
		want[f.Type] = true
	}
	if want[certmanager.OutputFormatCombinedPEM] {
		sec.Data[certmanager.OutputFormatCombinedPEMKey] = bytes.Join([][]byte{keyPEM, chainPEM}, []byte("\n"))
	} else {
		delete(sec.Data, certmanager.OutputFormatCombinedPEMKey)
	}
	if block, _ := pem.Decode(keyPEM); want[certmanager.OutputFormatDER] && block != nil {
		sec.Data[certmanager.OutputFormatDERKey] = block.Bytes
	} else {
		delete(sec.Data, certmanager.OutputFormatDERKey)
	}
}
