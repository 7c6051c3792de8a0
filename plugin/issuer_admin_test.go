package plugin

import (
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

func TestUpdateIssuerValidate(t *testing.T) {
	tests := []struct {
		name string
		set  func(o *UpdateIssuerOptions)
		err  string
	}{
		{"email", func(o *UpdateIssuerOptions) { o.Email, o.emailSet = "ops@example.com", true }, ""},
		{"remove email", func(o *UpdateIssuerOptions) { o.emailSet = true }, ""},
		{"rotate", func(o *UpdateIssuerOptions) { o.RotateAccountKey = true }, ""},
		{"nothing", func(o *UpdateIssuerOptions) {}, "nothing to update"},
		{"bad email", func(o *UpdateIssuerOptions) { o.Email, o.emailSet = "ops at example", true }, "invalid email"},
		{"bad name", func(o *UpdateIssuerOptions) { o.Name, o.RotateAccountKey = "LE", true }, `invalid issuer name "LE"`},
		{"timeout", func(o *UpdateIssuerOptions) { o.Timeout, o.RotateAccountKey = 0, true }, "--timeout must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := NewUpdateIssuerOptions(genericiooptions.NewTestIOStreamsDiscard())
			o.Name = "le"
			tt.set(o)
			wantErr(t, o.Validate(), tt.err)
		})
	}
}

func TestDeleteIssuerValidate(t *testing.T) {
	tests := []struct {
		name string
		set  func(o *DeleteIssuerOptions)
		err  string
	}{
		{"ok", func(o *DeleteIssuerOptions) {}, ""},
		{"deactivate", func(o *DeleteIssuerOptions) { o.DeactivateAccount, o.Cluster = true, true }, ""},
		{"bad name", func(o *DeleteIssuerOptions) { o.Name = "le.." }, "invalid issuer name"},
		{"timeout", func(o *DeleteIssuerOptions) { o.Timeout = 0 }, "--timeout must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := NewDeleteIssuerOptions(genericiooptions.NewTestIOStreamsDiscard())
			o.Name = "le"
			tt.set(o)
			wantErr(t, o.Validate(), tt.err)
		})
	}
}

func TestGetProfilesValidate(t *testing.T) {
	tests := []struct {
		name string
		set  func(o *GetProfilesOptions)
		err  string
	}{
		{"table", func(o *GetProfilesOptions) {}, ""},
		{"json", func(o *GetProfilesOptions) { o.Output.set("json") }, ""},
		{"no issuer", func(o *GetProfilesOptions) { o.Name = "" }, "issuer name is required"},
		{"wide", func(o *GetProfilesOptions) { o.Output.set("wide") }, `unsupported output format "wide"`},
		{"name", func(o *GetProfilesOptions) { o.Output.set("name") }, `unsupported output format "name"`},
		{"timeout", func(o *GetProfilesOptions) { o.Timeout = 0 }, "--timeout must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := NewGetProfilesOptions(genericiooptions.NewTestIOStreamsDiscard())
			o.Name = "le"
			tt.set(o)
			wantErr(t, o.Validate(), tt.err)
		})
	}
}

func TestGetIssuersValidate(t *testing.T) {
	for format, err := range map[string]string{"": "", "wide": "", "json": "", "yaml": "", "name": "", "xml": `unsupported output format "xml"`} {
		o := NewGetIssuersOptions(genericiooptions.NewTestIOStreamsDiscard())
		o.Output.set(format)
		wantErr(t, o.Validate(), err)
	}
}

// get profiles names a ClusterIssuer as issue and check do, and as the
// issuer commands do.
func TestGetProfilesClusterIssuerFlags(t *testing.T) {
	for _, args := range [][]string{{"--cluster-issuer"}, {"--cluster"}} {
		cmd := NewCmdGetProfiles(&Factory{}, genericiooptions.NewTestIOStreamsDiscard())
		if err := cmd.ParseFlags(append([]string{"--issuer", "le"}, args...)); err != nil {
			t.Fatal(err)
		}
		if v := cmd.Flags().Lookup("cluster-issuer").Value.String(); v != "true" {
			t.Errorf("%q: --cluster-issuer = %s", args, v)
		}
	}
}
