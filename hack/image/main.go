// Command image writes the kubectl-acme container image as an OCI image
// layout tarball, reproducibly and without a container engine: one layer
// holding the static binary at /kubectl-acme, the Mozilla/NSS root
// certificates (from the pinned golang.org/x/crypto/x509roots module, so
// the same source gives the same bytes on any host) at
// /etc/ssl/certs/ca-certificates.crt, an /etc/passwd with the non-root user
// 65532 and nothing else: no shell, no package manager. Every time in it
// is -epoch and every owner root (the user's home and /tmp aside), so the
// same binaries give the same digest.
//
//	go run . -epoch 1700000000 -out dist/image -ref ghcr.io/x/kubectl-acme:v1 linux/amd64=bin/a linux/arm64=bin/b
//
// It writes OUT/kubectl-acme-oci.tar (the layout: oci-layout, index.json,
// blobs/) and OUT/kubectl-acme-oci.digest, the digest of the image index
// (what a registry copy is pulled by).
// It lives in its own module so that the plugin does not depend on
// go-containerregistry.
package main

import (
	"archive/tar"
	"bytes"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// UID and GID of the image's user: distroless's "nonroot", which Pod
// Security's restricted profile admits (runAsNonRoot needs a non-zero uid).
const nonRoot = 65532

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fl := flag.NewFlagSet("image", flag.ContinueOnError)
	epoch := fl.Int64("epoch", 0, "Time of every file and of the image (SOURCE_DATE_EPOCH)")
	out := fl.String("out", "dist/image", "Directory for kubectl-acme-oci.tar and kubectl-acme-oci.digest")
	ref := fl.String("ref", "", "Image reference recorded in index.json (org.opencontainers.image.ref.name)")
	version := fl.String("version", "", "Version recorded in the image's annotations")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() == 0 {
		return errors.New("give one or more OS/ARCH=BINARY")
	}
	created := time.Unix(*epoch, 0).UTC()
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, a := range fl.Args() {
		platform, bin, ok := strings.Cut(a, "=")
		osName, arch, ok2 := strings.Cut(platform, "/")
		if !ok || !ok2 {
			return fmt.Errorf("%q: want OS/ARCH=BINARY", a)
		}
		img, err := image(bin, osName, arch, created, *version)
		if err != nil {
			return fmt.Errorf("%s: %w", platform, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: osName, Architecture: arch}}})
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	dir, err := os.MkdirTemp(*out, ".layout-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	var opts []layout.Option
	if *ref != "" {
		opts = append(opts, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": *ref}))
	}
	if err := p.AppendIndex(idx, opts...); err != nil {
		return err
	}
	digest, err := idx.Digest()
	if err != nil {
		return err
	}
	tarPath := filepath.Join(*out, "kubectl-acme-oci.tar")
	if err := tarDir(dir, tarPath, created); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*out, "kubectl-acme-oci.digest"), []byte(digest.String()+"\n"), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "image: %s %s\n", tarPath, digest)
	return nil
}

// image is one platform's image: the layer and a config that runs the
// binary as the non-root user.
func image(bin, osName, arch string, created time.Time, version string) (v1.Image, error) {
	exe, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	layerTar, err := rootfs(exe, created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{
		Created: v1.Time{Time: created}, CreatedBy: "hack/image: kubectl-acme " + version, Comment: "static binary, CA roots, user 65532"}})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Created = osName, arch, v1.Time{Time: created}
	cf.Config = v1.Config{
		User:       fmt.Sprintf("%d:%d", nonRoot, nonRoot),
		Entrypoint: []string{"/kubectl-acme"},
		WorkingDir: "/home/nonroot",
		Env: []string{
			"PATH=/",
			"HOME=/home/nonroot",
			"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
			// The recovery record of an order being finalized goes here;
			// a pod with a read-only root mounts an emptyDir at /tmp.
			"KUBECTL_ACME_STATE_DIR=/tmp/kubectl-acme",
		},
		Labels: map[string]string{
			"org.opencontainers.image.title":   "kubectl-acme",
			"org.opencontainers.image.version": version,
			"org.opencontainers.image.source":  "https://github.com/kubectl-acme/kubectl-acme",
		},
	}
	return mutate.ConfigFile(img, cf)
}

type entry struct {
	name string
	mode int64
	uid  int
	dir  bool
	data []byte
}

// rootfs is the layer's tar: sorted names, one time, numeric owners, no
// user or group names, USTAR headers (no PAX times).
func rootfs(exe []byte, created time.Time) ([]byte, error) {
	var roots bytes.Buffer
	n := 0
	for r := range bundle.Roots() {
		// A constraint (NSS's distrust-after) cannot be written into a PEM
		// bundle; such roots are left out rather than trusted without it.
		if r.Constraint != nil {
			continue
		}
		if err := pem.Encode(&roots, &pem.Block{Type: "CERTIFICATE", Bytes: r.Certificate}); err != nil {
			return nil, err
		}
		n++
	}
	if n == 0 {
		return nil, errors.New("no root certificates in x509roots/fallback/bundle")
	}
	entries := []entry{
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/group", mode: 0o644, data: []byte(fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", nonRoot))},
		{name: "etc/passwd", mode: 0o644, data: []byte(fmt.Sprintf(
			"root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", nonRoot, nonRoot))},
		{name: "etc/ssl/", mode: 0o755, dir: true},
		{name: "etc/ssl/certs/", mode: 0o755, dir: true},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: roots.Bytes()},
		{name: "home/", mode: 0o755, dir: true},
		{name: "home/nonroot/", mode: 0o700, uid: nonRoot, dir: true},
		{name: "kubectl-acme", mode: 0o755, data: exe},
		{name: "tmp/", mode: 0o1777, dir: true},
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, Uid: e.uid, Gid: e.uid, ModTime: created, Format: tar.FormatUSTAR}
		if e.dir {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// tarDir writes the layout directory as a tar with sorted names, one time
// and root owners, so the tarball is as reproducible as the digest.
func tarDir(dir, dst string, created time.Time) error {
	var names []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		names = append(names, path)
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(names)
	f, err := os.Create(dst + ".tmp")
	if err != nil {
		return err
	}
	defer os.Remove(dst + ".tmp")
	tw := tar.NewWriter(f)
	for _, path := range names {
		fi, err := os.Stat(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		h := &tar.Header{Name: filepath.ToSlash(rel), ModTime: created, Mode: 0o644, Format: tar.FormatPAX}
		if fi.IsDir() {
			h.Name, h.Typeflag, h.Mode = h.Name+"/", tar.TypeDir, 0o755
		} else {
			h.Typeflag, h.Size = tar.TypeReg, fi.Size()
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if !fi.IsDir() {
			src, err := os.Open(path)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, src)
			src.Close()
			if err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(dst+".tmp", dst)
}
