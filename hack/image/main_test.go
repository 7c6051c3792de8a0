package main

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// Same input, same bytes: the tarball and so the digest; and the image is
// what the pod spec of `kubectl acme schedule` expects.
func TestImageIsReproducible(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.WriteFile(bin, []byte("\x7fELF not really"), 0o755); err != nil {
		t.Fatal(err)
	}
	var tars [][]byte
	for _, o := range []string{"a", "b"} {
		out := filepath.Join(dir, o)
		if err := run([]string{"-epoch", "1700000000", "-out", out, "-ref", "r:v1", "linux/amd64=" + bin, "linux/arm64=" + bin}); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(out, "kubectl-acme-oci.tar"))
		if err != nil {
			t.Fatal(err)
		}
		tars = append(tars, b)
	}
	if !bytes.Equal(tars[0], tars[1]) {
		t.Fatal("two builds of the same binary differ")
	}

	// Unpack the layout and look inside.
	lay := filepath.Join(dir, "layout")
	tr := tar.NewReader(bytes.NewReader(tars[0]))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(lay, h.Name)
		if h.Typeflag == tar.TypeDir {
			os.MkdirAll(p, 0o755)
			continue
		}
		b, _ := io.ReadAll(tr)
		os.WriteFile(p, b, 0o644)
	}
	idx, err := layout.ImageIndexFromPath(lay)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	inner, err := idx.ImageIndex(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := inner.IndexManifest()
	if len(m.Manifests) != 2 || m.Manifests[0].Platform.Architecture != "amd64" || m.Manifests[1].Platform.Architecture != "arm64" {
		t.Fatalf("platforms: %+v", m.Manifests)
	}
	img, err := inner.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	if cf.Config.User != "65532:65532" || len(cf.Config.Entrypoint) != 1 || cf.Config.Entrypoint[0] != "/kubectl-acme" {
		t.Errorf("config: user %q entrypoint %q", cf.Config.User, cf.Config.Entrypoint)
	}
	layers, _ := img.Layers()
	rc, _ := layers[0].Uncompressed()
	defer rc.Close()
	files := map[string]bool{}
	lt := tar.NewReader(rc)
	for {
		h, err := lt.Next()
		if err != nil {
			break
		}
		files[h.Name] = true
		if h.Name == "kubectl-acme" && h.Mode != 0o755 {
			t.Errorf("binary mode %o", h.Mode)
		}
	}
	for _, want := range []string{"kubectl-acme", "etc/ssl/certs/ca-certificates.crt", "etc/passwd", "tmp/"} {
		if !files[want] {
			t.Errorf("layer has no %s: %v", want, files)
		}
	}
	for _, shell := range []string{"bin/sh", "bin/", "usr/"} {
		if files[shell] {
			t.Errorf("layer has %s", shell)
		}
	}
}
