package main

import (
	"bytes"
	"os"
	"path"
	"strings"
	"testing"
)

func fakeSha(url string) (string, error) {
	// A different valid digest per archive, so a mix-up shows.
	name := path.Base(url)
	return strings.Repeat("a", 64-len(name)%10) + strings.Repeat("b", len(name)%10), nil
}

// The checked-in template renders to a manifest that follows the rules, and
// krew-release-bot's copy at the repository root is the same file.
func TestTemplate(t *testing.T) {
	text, err := os.ReadFile("../../krew/acme.yaml.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"v0.1.0", "v1.22.333-rc.1", "v0.0.0-20261129175947-bb385a0fb252-dirty"} {
		out, err := Render(string(text), tag, fakeSha)
		if err != nil {
			t.Fatalf("render %s: %v", tag, err)
		}
		if err := Check(out, tag); err != nil {
			t.Errorf("rendered for %s:\n%v", tag, err)
		}
		for _, want := range []string{
			"releases/download/" + tag + "/kubectl-acme_" + tag + "_linux_amd64.tar.gz\n    sha256: ",
			"os: windows\n        arch: arm64\n",
			"bin: kubectl-acme.exe\n",
		} {
			if !bytes.Contains(out, []byte(want)) {
				t.Errorf("rendered for %s: missing %q", tag, want)
			}
		}
		if bytes.Contains(out, []byte("{{")) {
			t.Errorf("rendered for %s: template actions left:\n%s", tag, out)
		}
	}

	bot, err := os.ReadFile("../../.krew.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(bot, text) {
		t.Error(".krew.yaml differs from krew/acme.yaml.tmpl: run `make krew-manifest` (it copies the template)")
	}
}

func TestCheck(t *testing.T) {
	good := `apiVersion: krew.googlecontainertools.github.com/v1alpha2
kind: Plugin
metadata:
  name: acme
spec:
  version: v1.0.0
  shortDescription: SHORT
  description: |
    DESC
  caveats: |
    CAVEATS
  platforms:
  - selector:
      matchLabels:
        os: linux
    uri: https://example.com/v1.0.0/a.tar.gz
    sha256: SHA
    bin: kubectl-acme
`
	sha := strings.Repeat("0123456789abcdef", 4)
	tests := []struct {
		name, short, desc, caveats, sha, tag string
		wantErr                              string
	}{
		{name: "ok", short: strings.Repeat("s", 50), desc: strings.Repeat("d", 76), caveats: "c", sha: sha, tag: "v1.0.0"},
		{name: "short description too long", short: strings.Repeat("s", 51), desc: "d", caveats: "c", sha: sha, tag: "v1.0.0", wantErr: "shortDescription has 51 characters"},
		{name: "description too wide", short: "s", desc: strings.Repeat("d", 77), caveats: "c", sha: sha, tag: "v1.0.0", wantErr: "description line 1 is 81 columns"},
		{name: "caveats too wide", short: "s", desc: "d", caveats: strings.Repeat("c", 77), sha: sha, tag: "v1.0.0", wantErr: "caveats line 1 is 81 columns"},
		{name: "numeric sha", short: "s", desc: "d", caveats: "c", sha: strings.Repeat("0", 64), tag: "v1.0.0", wantErr: "want 64 hex digits"},
		{name: "short sha", short: "s", desc: "d", caveats: "c", sha: "abc", tag: "v1.0.0", wantErr: "want 64 hex digits"},
		{name: "other tag", short: "s", desc: "d", caveats: "c", sha: sha, tag: "v2.0.0", wantErr: `spec.version "v1.0.0": want the tag "v2.0.0"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := strings.NewReplacer("SHORT", tt.short, "DESC", tt.desc, "CAVEATS", tt.caveats, "SHA", tt.sha).Replace(good)
			err := Check([]byte(m), tt.tag)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("error %v: want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// addURIAndSha and indent behave as krew-release-bot's.
func TestBotFunctions(t *testing.T) {
	tmpl := `  platforms:
  - {{addURIAndSha "https://h/{{ .TagName }}/a_{{ .Version }}.tgz" .TagName }}
    x: {{ indent 6 "a\nb" }}
`
	got, err := Render(tmpl, "v1.2.3", func(url string) (string, error) { return "SUM(" + url + ")", nil })
	if err != nil {
		t.Fatal(err)
	}
	want := header + `  platforms:
  - uri: https://h/v1.2.3/a_1.2.3.tgz
    sha256: SUM(https://h/v1.2.3/a_1.2.3.tgz)
    x: a
      b
`
	if string(got) != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}
