package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// buildImage runs hack/image.sh as `make image` does, into dir, with
// extra arguments (--ref), and returns the REF@DIGEST it prints.
func buildImage(t *testing.T, dir string, args ...string) string {
	t.Helper()
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), filepath.Join(repo, "hack/image.sh"), append([]string{"--out", dir}, args...)...)
	cmd.Dir = repo
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("hack/image.sh: %v\n%s", err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// TestImageIsReproducible: two image builds of the same tree give the same
// tarball and digest.
func TestImageIsReproducible(t *testing.T) {
	tmp := t.TempDir()
	a, b := buildImage(t, filepath.Join(tmp, "a")), buildImage(t, filepath.Join(tmp, "b"))
	if a != b || !strings.Contains(a, "@sha256:") {
		t.Fatalf("two builds: %q and %q", a, b)
	}
	ta, _ := os.ReadFile(filepath.Join(tmp, "a", "kubectl-acme-oci.tar"))
	tb, _ := os.ReadFile(filepath.Join(tmp, "b", "kubectl-acme-oci.tar"))
	if len(ta) == 0 || string(ta) != string(tb) {
		t.Fatal("the two tarballs differ")
	}
	digest, _ := os.ReadFile(filepath.Join(tmp, "a", "kubectl-acme-oci.digest"))
	if !strings.HasSuffix(a, "@"+strings.TrimSpace(string(digest))) {
		t.Errorf("printed %s, digest file %s", a, digest)
	}
}
