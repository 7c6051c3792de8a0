package plugin

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-acme/kubectl-acme/internal/store"
)

func TestLabelledNames(t *testing.T) {
	item := func(objName, label, desc string) metav1.PartialObjectMetadata {
		m := metav1.PartialObjectMetadata{}
		m.Name = objName
		if label != "" {
			m.Labels = map[string]string{store.LabelName: label}
		}
		if desc != "" {
			m.Annotations = map[string]string{store.AnnotationDomains: desc}
		}
		return m
	}
	items := []metav1.PartialObjectMetadata{
		item("acme-certificate-web", "web", "example.com,www.example.com"),
		item("acme-certificate-api", "api", ""),
		item("acme-certificate-www", "www", "www.example.com"),
		item("unlabelled", "", "x"),
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"", []string{"api", "web\texample.com,www.example.com", "www\twww.example.com"}},
		{"w", []string{"web\texample.com,www.example.com", "www\twww.example.com"}},
		{"we", []string{"web\texample.com,www.example.com"}},
		{"x", nil},
	}
	for _, tt := range tests {
		if got := labelledNames(items, tt.prefix, store.AnnotationDomains); !slices.Equal(got, tt.want) {
			t.Errorf("prefix %q: got %q, want %q", tt.prefix, got, tt.want)
		}
	}
	if got := objectNames(items, "acme-certificate-w"); !slices.Equal(got, []string{"acme-certificate-web", "acme-certificate-www"}) {
		t.Errorf("objectNames: got %q", got)
	}
}

// complete runs the hidden __complete command in-process, as shells do, and
// returns the candidates without their descriptions, then the directive.
func complete(t *testing.T, args ...string) []string {
	t.Helper()
	var out bytes.Buffer
	cmd := NewCmdACME(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &bytes.Buffer{}}, BuildInfo{})
	cmd.SetArgs(append([]string{cobra.ShellCompRequestCmd}, args...))
	if err := cmd.Execute(); err != nil {
		t.Fatalf("__complete %q: %v", args, err)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		name, _, _ := strings.Cut(l, "\t")
		got = append(got, name)
	}
	return got
}

// Completions that need no cluster.
func TestCompleteStatic(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"st"}, []string{"status", ":4"}},
		{[]string{"version", "-o", ""}, []string{"json", "yaml", ":4"}},
		{[]string{"status", "-o", "w"}, []string{"wide", ":4"}},
		{[]string{"issue", "web", "--key-algorithm", ""}, []string{"rsa", "ecdsa", ":4"}},
		{[]string{"create", "issuer", "x", "--server", ""}, []string{"letsencrypt", "letsencrypt-staging", ":4"}},
		{[]string{"create", "issuer", "x", "--server", "letsencrypt-"}, []string{"letsencrypt-staging", ":4"}},
		{[]string{"create", "issuer", ""}, []string{":4"}},
	}
	for _, tt := range tests {
		if got := complete(t, tt.args...); !slices.Equal(got, tt.want) {
			t.Errorf("__complete %q: got %q, want %q", tt.args, got, tt.want)
		}
	}
}

// Every command that takes flags registers the completions meant for it.
func TestCompletionRegistered(t *testing.T) {
	root := NewCmdACME(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}}, BuildInfo{})
	for _, tt := range []struct {
		path  []string
		flags []string
	}{
		{[]string{"issue"}, []string{"issuer", "namespace", "context"}},
		{[]string{"status"}, []string{"output", "namespace"}},
		{[]string{"create", "issuer"}, []string{"server", "ingress-class", "gateway", "ca-bundle"}},
	} {
		cmd, _, err := root.Find(tt.path)
		if err != nil {
			t.Fatal(err)
		}
		if cmd.ValidArgsFunction == nil {
			t.Errorf("%s: no ValidArgsFunction", cmd.CommandPath())
		}
		for _, f := range tt.flags {
			if _, ok := cmd.GetFlagCompletionFunc(f); !ok {
				t.Errorf("%s --%s: no completion", cmd.CommandPath(), f)
			}
		}
	}
}

func TestCompletionCommand(t *testing.T) {
	for _, tt := range []struct {
		shell, want string
		noDesc      bool
	}{
		{"bash", "__start_kubectl-acme", false},
		{"zsh", "#compdef kubectl-acme", false},
		{"zsh", "__completeNoDesc", true},
		{"fish", "complete -c kubectl-acme", false},
		{"powershell", "Register-ArgumentCompleter", false},
	} {
		var out bytes.Buffer
		cmd := NewCmdACME(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &bytes.Buffer{}}, BuildInfo{})
		args := []string{"completion", tt.shell}
		if tt.noDesc {
			args = append(args, "--no-descriptions")
		}
		cmd.SetArgs(args)
		if err := cmd.Execute(); err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		if !strings.Contains(out.String(), tt.want) {
			t.Errorf("%q: output lacks %q", args, tt.want)
		}
	}
}

func TestCompletionValidate(t *testing.T) {
	for shell, err := range map[string]string{"bash": "", "zsh": "", "fish": "", "powershell": "", "tcsh": `unsupported shell "tcsh": use one of ["bash" "zsh" "fish" "powershell"]`} {
		o := NewCompletionOptions(genericiooptions.NewTestIOStreamsDiscard())
		o.Shell = shell
		wantErr(t, o.Validate(), err)
	}
}
