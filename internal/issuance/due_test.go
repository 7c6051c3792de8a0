package issuance

import (
	"strings"
	"testing"

	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/store"
)

// A certificate with nothing stored yet is due: renewed, or with DryRun
// only named, whatever Force says.
func TestRenewalPrepareNothingStored(t *testing.T) {
	for _, tt := range []struct {
		force, dryRun bool
		skip          string
	}{
		{false, false, ""},
		{true, false, ""},
		{false, true, "due (no certificate stored yet); not renewed (dry run)"},
	} {
		cert := &certmanager.Certificate{}
		cert.Namespace, cert.Name, cert.Spec.SecretName = "app", "web", "web-tls"
		var warnings strings.Builder
		r := &Renewal{Options: Options{Store: &store.Store{Client: fake.NewClientset()}}, Force: tt.force, DryRun: tt.dryRun, Warnings: &warnings}
		j := &Job{Cert: cert}
		skip, err := r.Prepare(t.Context(), j)
		if err != nil || skip != tt.skip || j.Replaces != "" || warnings.Len() > 0 {
			t.Errorf("force %v, dry run %v: skip %q, err %v, replaces %q, warnings %q", tt.force, tt.dryRun, skip, err, j.Replaces, warnings.String())
		}
	}
}
