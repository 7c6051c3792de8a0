package plugin

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// corpusDirs are the real cert-manager manifests apply is judged by: the
// copy in the repository and, where it exists next to the checkout, the
// shared corpus it was copied from (so a file added there is judged too).
var corpusDirs = []string{"../test/corpus", "../../shared/corpus"}

// corpusExceptions are the files whose outcome differs from their tags,
// each with why. Keep it short: the issue allows at most 4.
var corpusExceptions = map[string]string{
	// Tagged as a feature, but cert-manager v0.5 itself could not use it:
	// its DomainSolverConfig inlines SolverConfig{HTTP01, DNS01}
	// (pkg/apis/certmanager/v1alpha1/types_certificate.go at v0.5.0), so an
	// entry with ingressClass beside domains configures no solver; the v0.5
	// docs' shorthand is a docs bug. Refused, naming the field.
	"091-cm-r0.5-certificates-certificates.yaml": "acme.config[].ingressClass outside http01 never configured a solver",
}

// corpusFile is one manifest and what its header says about it.
type corpusFile struct {
	path         string
	tags         map[string]bool
	placeholders []string
	// hasIssuer: the file holds an Issuer or ClusterIssuer.
	hasIssuer bool
}

func readCorpus(t *testing.T) []corpusFile {
	seen := map[string][]byte{}
	var files []corpusFile
	for _, dir := range corpusDirs {
		paths, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		sort.Strings(paths)
		for _, p := range paths {
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			base := filepath.Base(p)
			if prev, ok := seen[base]; ok {
				if !bytes.Equal(prev, data) {
					t.Errorf("%s differs from the copy in %s: copy the corpus again", p, corpusDirs[0])
				}
				continue
			}
			seen[base] = data
			f := corpusFile{path: p, tags: map[string]bool{}, hasIssuer: regexp.MustCompile(`(?m)^kind:\s*(Cluster)?Issuer\s*$`).Match(data)}
			sc := bufio.NewScanner(bytes.NewReader(data))
			for sc.Scan() {
				l := sc.Text()
				if v, ok := strings.CutPrefix(l, "# expect:"); ok {
					for _, tag := range strings.Fields(v) {
						f.tags[tag] = true
					}
				}
				if v, ok := strings.CutPrefix(l, "# placeholders:"); ok {
					for _, ph := range strings.Split(v, ", ") {
						// Elisions (..., [...]) are no values to
						// replace: they break the YAML (tagged invalid)
						// or end the document (yamlDocEnd).
						if ph = strings.TrimSpace(ph); ph != "" && strings.Trim(ph, ".[]") != "" {
							f.placeholders = append(f.placeholders, ph)
						}
					}
				}
			}
			files = append(files, f)
		}
	}
	if len(files) == 0 {
		t.Fatalf("no corpus in %v", corpusDirs)
	}
	return files
}

// Issuer kinds cert-manager has besides ACME, as the refusal names them.
var nonACMEKinds = regexp.MustCompile(`spec\.(ca|selfSigned|vault|venafi): not supported: kubectl-acme implements ACME issuers only`)

// judge says how the outcome of apply --dry-run=client on f differs from
// what its tags expect, or "" when it does not.
func (f corpusFile) judge(err error, out string) string {
	base := filepath.Base(f.path)
	refusedAt := regexp.MustCompile(regexp.QuoteMeta(base) + `:\d+: `)
	switch {
	case f.tags["invalid"]:
		if err == nil {
			return "accepted, but the snippet is broken (tagged invalid)"
		}
		if !refusedAt.MatchString(out) {
			return "refused without naming file:line: " + firstLine(out)
		}
		if !regexp.MustCompile(regexp.QuoteMeta(base) + `:\d+: [^\n]*(\): [a-zA-Z.\[\]0-9/-]+: |YAML syntax error|document \d+: [a-zA-Z.\[\]0-9]+: )`).MatchString(out) {
			return "refused without naming the field: " + firstLine(out)
		}
	case f.tags["dns01"]:
		if err == nil {
			return "accepted, but it needs DNS-01"
		}
		if !strings.Contains(out, "DNS-01") {
			return "refused without naming DNS-01: " + firstLine(out)
		}
	case f.tags["non-acme"] && f.hasIssuer:
		if err == nil {
			return "accepted, but its issuer is not ACME"
		}
		if !nonACMEKinds.MatchString(out) {
			return "refused without naming the issuer type: " + firstLine(out)
		}
	case f.tags["non-acme"]:
		// Certificates and Ingresses for an issuer the file does not hold:
		// a client dry run cannot know the issuer's type, so it must say
		// that it did not check it, unless it refuses them for another
		// reason (--dry-run=server looks the issuer up).
		if err == nil && !strings.Contains(out, "is not in the input and was not checked") {
			return "accepted without saying that its issuer was not checked"
		}
	case len(f.placeholders) > 0:
		if err == nil {
			return "accepted with placeholders " + strings.Join(f.placeholders, ", ")
		}
		named := false
		for _, ph := range f.placeholders {
			named = named || strings.Contains(out, ph)
		}
		if !named {
			return "refused without naming the placeholder: " + firstLine(out)
		}
	default:
		if err != nil {
			return "refused: " + out
		}
	}
	return ""
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " ..."
	}
	return s
}

// TestApplyCorpus runs every corpus file through the apply command as a
// user would (kubectl acme apply -f FILE --dry-run=client) and checks the
// outcome against its # expect: tags.
func TestApplyCorpus(t *testing.T) {
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kc, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", kc)
	files := readCorpus(t)
	bad := 0
	for _, f := range files {
		base := filepath.Base(f.path)
		t.Run(strings.TrimSuffix(base, ".yaml"), func(t *testing.T) {
			streams, _, stdout, stderr := genericiooptions.NewTestIOStreams()
			cmd := NewCmdACME(streams, BuildInfo{Version: "test"})
			cmd.SetArgs([]string{"apply", "-f", f.path, "--dry-run=client"})
			cmd.SetOut(stdout)
			cmd.SetErr(stderr)
			err := cmd.ExecuteContext(context.Background())
			out := stdout.String() + stderr.String()
			if err != nil {
				out = err.Error() + "\n" + out
			}
			why := f.judge(err, out)
			exc, excepted := corpusExceptions[base]
			switch {
			case why != "" && !excepted:
				bad++
				t.Errorf("%s (tags %v): %s", base, keys(f.tags), why)
			case why == "" && excepted:
				t.Errorf("%s now behaves as its tags say: remove it from corpusExceptions (%s)", base, exc)
			case why != "":
				bad++
				t.Logf("known exception: %s: %s", exc, why)
			}
		})
	}
	t.Logf("%d of %d corpus files behave as their tags say", len(files)-bad, len(files))
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
