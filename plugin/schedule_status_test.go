package plugin

import (
	"testing"
	"time"

	"github.com/kubectl-acme/kubectl-acme/internal/status"
)

func TestFailingRenewalSaysWhenItExpires(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	na := now.Add(50 * time.Hour)
	_, rows := CertificateTable([]status.Row{{Name: "web", NotAfter: &na, LastFailure: "CA unreachable"}}, false, true, now)
	if got, want := rows[0][6], "Failed (renewal failing, expires in 2d2h): CA unreachable"; got != want {
		t.Errorf("status %q, want %q", got, want)
	}
}
