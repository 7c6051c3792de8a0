package plugin

import (
	"strings"
	"testing"
	"time"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

func TestCleanupValidate(t *testing.T) {
	tests := []struct {
		name string
		set  func(o *CleanupOptions)
		err  string
	}{
		{name: "defaults", set: func(o *CleanupOptions) {}},
		{name: "everything now", set: func(o *CleanupOptions) { o.OlderThan, o.AllNamespaces, o.DryRun = 0, true, true }},
		{name: "negative --older-than", set: func(o *CleanupOptions) { o.OlderThan = -time.Second }, err: "--older-than -1s: must not be negative"},
		{name: "timeout", set: func(o *CleanupOptions) { o.Timeout = 0 }, err: "--timeout must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := NewCleanupOptions(genericiooptions.NewTestIOStreamsDiscard())
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
