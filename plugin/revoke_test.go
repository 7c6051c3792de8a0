package plugin

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
)

func TestAlreadyRevokedMessage(t *testing.T) {
	at := metav1.NewTime(time.Date(2026, 12, 1, 22, 0, 0, 0, time.UTC))
	prev := &certmanager.RevocationStatus{Serial: "AB", Reason: "keyCompromise", Time: at}
	for _, tc := range []struct {
		name, reason string
		prev         *certmanager.RevocationStatus
		recorded     bool
		want, not    []string
	}{
		{"same reason", "keyCompromise", prev, true,
			[]string{"certificate/web already revoked (serial AB, reason keyCompromise, at 2026-12-01T22:00:00Z): nothing changed"}, []string{"not applied"}},
		{"other reason", "superseded", prev, true,
			[]string{"reason keyCompromise", "--reason superseded is not applied"}, nil},
		{"revoked elsewhere", "superseded", &certmanager.RevocationStatus{Serial: "AB", Reason: "unknown"}, false,
			[]string{"already revoked (serial AB)", "not through this record", "reason unknown"}, []string{"0001-01-01"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := alreadyRevokedMessage("web", tc.reason, tc.prev, tc.recorded)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("%q lacks %q", got, w)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(got, n) {
					t.Errorf("%q says %q", got, n)
				}
			}
		})
	}
}

func TestRevokeValidate(t *testing.T) {
	tests := []struct {
		name string
		set  func(o *RevokeOptions)
		err  string
	}{
		{"default reason", func(o *RevokeOptions) {}, ""},
		{"key compromise", func(o *RevokeOptions) { o.Reason = "keyCompromise" }, ""},
		{"bad name", func(o *RevokeOptions) { o.Name = "Web" }, "invalid certificate name"},
		{"bad reason", func(o *RevokeOptions) { o.Reason = "bogus" }, `--reason "bogus": use one of`},
		{"timeout", func(o *RevokeOptions) { o.Timeout = 0 }, "--timeout must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := NewRevokeOptions(genericiooptions.NewTestIOStreamsDiscard())
			o.Name = "web"
			tt.set(o)
			wantErr(t, o.Validate(), tt.err)
		})
	}
}
