package plugin

import (
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

func TestStatusValidate(t *testing.T) {
	tests := []struct {
		name string
		set  func(o *StatusOptions)
		err  string
	}{
		{"list", func(o *StatusOptions) {}, ""},
		{"all namespaces", func(o *StatusOptions) { o.AllNamespaces = true }, ""},
		{"wide", func(o *StatusOptions) { o.AllNamespaces = true; o.Output.set("wide") }, ""},
		{"json", func(o *StatusOptions) { o.Output.set("json") }, ""},
		{"yaml", func(o *StatusOptions) { o.Name = "web"; o.Output.set("yaml") }, ""},
		{"name", func(o *StatusOptions) { o.Name = "web" }, ""},
		{"xml", func(o *StatusOptions) { o.Output.set("xml") }, `unsupported output format "xml": use one of ["" "wide" "json" "yaml"]`},
		// status offers no -o name, as before it had the shared flags.
		{"name output", func(o *StatusOptions) { o.Output.set("name") }, `unsupported output format "name"`},
		{"name and -A", func(o *StatusOptions) { o.Name, o.AllNamespaces = "web", true }, "cannot be combined with --all-namespaces; use -n NAMESPACE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := NewStatusOptions(genericiooptions.NewTestIOStreamsDiscard())
			tt.set(o)
			wantErr(t, o.Validate(), tt.err)
		})
	}
}
