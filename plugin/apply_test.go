package plugin

import (
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-acme/kubectl-acme/internal/manifest"
)

func TestApplyValidate(t *testing.T) {
	ok := &manifest.Result{Objects: []*manifest.Object{{}}}
	files := []string{"a.yaml"}
	tests := []struct {
		name    string
		set     func(o *ApplyOptions)
		decoded *manifest.Result
		err     string
	}{
		{name: "ok", set: func(o *ApplyOptions) { o.Filenames = files }, decoded: ok},
		{name: "no files", set: func(o *ApplyOptions) {}, err: "-f FILE"},
		{name: "dry run", set: func(o *ApplyOptions) { o.Filenames, o.DryRun = files, "yes" }, err: "use none, client or server"},
		{name: "concurrency", set: func(o *ApplyOptions) { o.Filenames, o.Concurrency = files, 0 }, err: "at least 1"},
		{name: "connect-to", set: func(o *ApplyOptions) { o.Filenames, o.ConnectTo = files, "lb" }, err: "HOST:PORT"},
		{name: "timeout", set: func(o *ApplyOptions) { o.Filenames, o.Timeout = files, 0 }, err: "--timeout"},
		{name: "empty input", set: func(o *ApplyOptions) { o.Filenames = files }, decoded: &manifest.Result{}, err: "no Issuer, ClusterIssuer or Certificate"},
		{name: "manifest problems", set: func(o *ApplyOptions) { o.Filenames = files }, decoded: &manifest.Result{Errors: manifest.Errors{
			{Location: manifest.Location{File: "a.yaml", Doc: 1, Item: -1}, Line: 3, Path: "spec.usages", Reason: "not possible"},
		}}, err: "1 problem in the manifests; nothing was changed:\na.yaml:3: document 1: spec.usages: not possible"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := NewApplyOptions(genericiooptions.NewTestIOStreamsDiscard())
			tt.set(o)
			o.decoded = tt.decoded
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
