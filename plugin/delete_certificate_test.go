package plugin

import (
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

func TestDeleteCertificateValidate(t *testing.T) {
	tests := []struct {
		name string
		set  func(o *DeleteCertificateOptions)
		err  string
	}{
		{"ok", func(o *DeleteCertificateOptions) {}, ""},
		{"with secret", func(o *DeleteCertificateOptions) { o.DeleteSecret = true }, ""},
		{"bad name", func(o *DeleteCertificateOptions) { o.Name = "web_tls" }, "invalid certificate name"},
		{"timeout", func(o *DeleteCertificateOptions) { o.Timeout = -1 }, "--timeout must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := NewDeleteCertificateOptions(genericiooptions.NewTestIOStreamsDiscard())
			o.Name = "web"
			tt.set(o)
			wantErr(t, o.Validate(), tt.err)
		})
	}
}
