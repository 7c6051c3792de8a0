package plugin

import (
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

func TestScheduleValidate(t *testing.T) {
	digest := "registry.example.com/kubectl-acme@sha256:" + "ab0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd"[:64]
	tests := []struct {
		name string
		set  func(o *ScheduleOptions)
		err  string
	}{
		{"ok", func(o *ScheduleOptions) {}, ""},
		{"dry run yaml", func(o *ScheduleOptions) { o.DryRun = "client"; o.Output.set("yaml") }, ""},
		{"dry run name", func(o *ScheduleOptions) { o.DryRun = "client"; o.Output.set("name") }, ""},
		{"macro schedule", func(o *ScheduleOptions) { o.Schedule = "@daily" }, ""},
		{"-A", func(o *ScheduleOptions) { o.AllNamespaces = true }, "a schedule covers one namespace"},
		{"no image", func(o *ScheduleOptions) { o.Image = "" }, "give --image REPO@sha256:DIGEST"},
		{"tag", func(o *ScheduleOptions) { o.Image = "kubectl-acme:v1" }, "give the image by digest"},
		{"server dry run", func(o *ScheduleOptions) { o.DryRun = "server" }, "--dry-run=server: only none or client"},
		{"timeout", func(o *ScheduleOptions) { o.Timeout = 0 }, "--timeout must be positive"},
		{"schedule fields", func(o *ScheduleOptions) { o.Schedule = "3 * *" }, "want a cron expression of five fields"},
		{"output", func(o *ScheduleOptions) { o.Output.set("wide") }, `unsupported output format "wide"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := NewScheduleOptions(genericiooptions.NewTestIOStreamsDiscard(), BuildInfo{})
			o.Namespace, o.Image, o.Schedule = "app", digest, "17 3,15 * * *"
			tt.set(o)
			wantErr(t, o.Validate(), tt.err)
		})
	}
}

func TestUnscheduleValidate(t *testing.T) {
	o := NewUnscheduleOptions(genericiooptions.NewTestIOStreamsDiscard())
	wantErr(t, o.Validate(), "")
	o.Timeout = 0
	wantErr(t, o.Validate(), "--timeout must be positive")
}
