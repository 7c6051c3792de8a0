package plugin

import (
	"strings"
	"testing"
	"time"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

func TestCheckValidate(t *testing.T) {
	tests := []struct {
		name string
		set  func(o *CheckOptions)
		err  string
	}{
		{name: "defaults", set: func(o *CheckOptions) {}},
		{name: "role", set: func(o *CheckOptions) { o.Output.set("yaml") }},
		{name: "cluster issuer", set: func(o *CheckOptions) { o.Issuer, o.ClusterIssuer = "le", true; o.Output.set("wide") }},
		{name: "output", set: func(o *CheckOptions) { o.Output.set("table") }, err: "unsupported output format"},
		{name: "cluster without issuer", set: func(o *CheckOptions) { o.ClusterIssuer = true }, err: "--cluster-issuer needs --issuer"},
		{name: "issuer name", set: func(o *CheckOptions) { o.Issuer = "Le" }, err: "invalid issuer name"},
		{name: "timeout", set: func(o *CheckOptions) { o.Timeout = 0 }, err: "--timeout must be positive"},
		{name: "negative timeout", set: func(o *CheckOptions) { o.Timeout = -time.Second }, err: "--timeout must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := NewCheckOptions(genericiooptions.NewTestIOStreamsDiscard())
			tt.set(o)
			err := o.Validate()
			if tt.err == "" && err != nil {
				t.Fatalf("unexpected %v", err)
			}
			if tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("error %v, want containing %q", err, tt.err)
			}
		})
	}
}
