package plugin

import (
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

func TestExportValidate(t *testing.T) {
	tests := []struct {
		name string
		set  func(o *ExportOptions)
		err  string
	}{
		{"names", func(o *ExportOptions) { o.Names = []string{"web"} }, ""},
		{"all", func(o *ExportOptions) { o.All = true; o.Output.set("json") }, ""},
		{"name output", func(o *ExportOptions) { o.All = true; o.Output.set("name") }, ""},
		{"all namespaces", func(o *ExportOptions) { o.All, o.AllNamespaces = true, true }, ""},
		{"nothing", func(o *ExportOptions) {}, "give certificate names, or --all"},
		{"both", func(o *ExportOptions) { o.All, o.Names = true, []string{"web"} }, "not both"},
		{"-A alone", func(o *ExportOptions) { o.AllNamespaces, o.Names = true, []string{"web"} }, "--all-namespaces needs --all"},
		{"output", func(o *ExportOptions) { o.All = true; o.Output.set("xml") }, `unsupported output format "xml"`},
		{"table output", func(o *ExportOptions) { o.All = true; o.Output.set("") }, "unsupported output format"},
		{"to", func(o *ExportOptions) { o.All, o.To = true, "vault" }, "only cert-manager"},
		{"bad name", func(o *ExportOptions) { o.Names = []string{"Web"} }, "invalid certificate name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := NewExportOptions(genericiooptions.NewTestIOStreamsDiscard())
			tt.set(o)
			wantErr(t, o.Validate(), tt.err)
		})
	}
}
