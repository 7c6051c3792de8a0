package plugin

import (
	"bytes"
	"testing"
)

func TestVersion(t *testing.T) {
	build := BuildInfo{Version: "v1.2.3", Commit: "abc", Date: "2026-01-02"}
	for format, want := range map[string]string{
		"":     "kubectl-acme v1.2.3 (commit abc, built 2026-01-02)\n",
		"json": "{\n    \"version\": \"v1.2.3\",\n    \"commit\": \"abc\",\n    \"date\": \"2026-01-02\"\n}\n",
		"yaml": "commit: abc\ndate: \"2026-01-02\"\nversion: v1.2.3\n",
	} {
		var b bytes.Buffer
		o := NewVersionOptions(genericStreams(&b), build)
		o.Output.set(format)
		wantErr(t, o.Validate(), "")
		if err := o.Run(t.Context()); err != nil || b.String() != want {
			t.Errorf("-o %q: %v %q, want %q", format, err, b.String(), want)
		}
	}
	o := NewVersionOptions(genericStreams(&bytes.Buffer{}), build)
	o.Output.set("name")
	wantErr(t, o.Validate(), `unsupported output format "name"`)
}
