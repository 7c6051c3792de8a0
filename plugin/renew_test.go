package plugin

import (
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

func TestRenewValidate(t *testing.T) {
	tests := []struct {
		name string
		set  func(o *RenewOptions)
		err  string
	}{
		{"names", func(o *RenewOptions) { o.Names = []string{"web", "api"} }, ""},
		{"all", func(o *RenewOptions) { o.All = true }, ""},
		{"all namespaces", func(o *RenewOptions) { o.All, o.AllNamespaces = true, true }, ""},
		{"nothing", func(o *RenewOptions) {}, "give certificate names, or --all to consider every certificate"},
		{"both", func(o *RenewOptions) { o.All, o.Names = true, []string{"web"} }, "give certificate names or --all, not both"},
		{"-A alone", func(o *RenewOptions) { o.AllNamespaces, o.Names = true, []string{"web"} }, "--all-namespaces needs --all"},
		{"bad name", func(o *RenewOptions) { o.Names = []string{"Web"} }, "invalid certificate name"},
		{"timeout", func(o *RenewOptions) { o.All, o.Timeout = true, 0 }, "--timeout must be positive"},
		{"connect-to", func(o *RenewOptions) { o.All, o.ConnectTo = true, "lb" }, "want HOST:PORT"},
		{"wait instead of self-check", func(o *RenewOptions) { o.All, o.WaitInsteadOfSelfCheck = true, -1 }, "--wait-instead-of-self-check must not be negative"},
		{"controller namespace", func(o *RenewOptions) { o.All, o.IngressControllerNamespace = true, "Ingress_NGINX" }, "--ingress-controller-namespace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := NewRenewOptions(genericiooptions.NewTestIOStreamsDiscard())
			tt.set(o)
			wantErr(t, o.Validate(), tt.err)
		})
	}
}
