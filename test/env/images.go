package testenv

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"
)

// The real node's images are built here from local files, never pulled:
// the machine has no registry to pull from. Each is an OCI image layout
// (github.com/opencontainers/image-spec image-layout.md) in a tar archive,
// which `ctr images import` reads, with fixed timestamps and owners, so the
// same busybox and pause binaries give the same digests.

// imageEpoch is every file's and image's timestamp.
var imageEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// BusyboxImages are the names the busybox image is tagged with: the
// plugin's default solver image (solver.DefaultImage, normalized as the
// CRI does) and the older tag the simnode fidelity tests use. Neither is
// :latest, so the default imagePullPolicy is IfNotPresent and the kubelet
// never tries to pull them.
var BusyboxImages = []string{"docker.io/library/busybox:1.37", "docker.io/library/busybox:1.36"}

// PauseImage is the sandbox image containerd is configured with.
const PauseImage = "registry.k8s.io/pause:3.10"

type imageFile struct {
	name string
	mode int64
	data []byte
	link string // hard link target, for busybox's applets
	dir  bool
}

// busyboxImage lays out busybox like the official image
// (github.com/docker-library/busybox): every applet a hard link to
// /bin/busybox, /etc/passwd and /etc/group with root and nobody, a
// world-writable /tmp, an empty /var/www (httpd's default home).
func busyboxImage(busybox string) ([]imageFile, imageConfig, error) {
	data, err := os.ReadFile(busybox)
	if err != nil {
		return nil, imageConfig{}, fmt.Errorf("read busybox: %w", err)
	}
	out, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		return nil, imageConfig{}, fmt.Errorf("list busybox applets (%s must be a static busybox): %w", busybox, err)
	}
	files := []imageFile{
		{name: "bin/", mode: 0o755, dir: true},
		{name: "etc/", mode: 0o755, dir: true},
		{name: "home/", mode: 0o755, dir: true},
		{name: "root/", mode: 0o700, dir: true},
		{name: "tmp/", mode: 0o1777, dir: true},
		{name: "usr/", mode: 0o755, dir: true},
		{name: "usr/sbin/", mode: 0o755, dir: true},
		{name: "var/", mode: 0o755, dir: true},
		{name: "var/spool/", mode: 0o755, dir: true},
		{name: "var/spool/mail/", mode: 0o755, dir: true},
		{name: "var/www/", mode: 0o755, dir: true},
		{name: "bin/busybox", mode: 0o755, data: data},
		{name: "etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n")},
		{name: "etc/group", mode: 0o644, data: []byte("root:x:0:\nnobody:x:65534:\n")},
	}
	applets := strings.Fields(string(out))
	sort.Strings(applets)
	for _, a := range applets {
		if a != "busybox" {
			files = append(files, imageFile{name: "bin/" + a, mode: 0o755, link: "bin/busybox"})
		}
	}
	cfg := imageConfig{Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, Cmd: []string{"sh"}}
	return files, cfg, nil
}

// pauseImage holds only the pause program, run as 65535 as Kubernetes'
// pause image is (kubernetes build/pause/Dockerfile).
func pauseImage(pause string) ([]imageFile, imageConfig, error) {
	data, err := os.ReadFile(pause)
	if err != nil {
		return nil, imageConfig{}, fmt.Errorf("read pause: %w", err)
	}
	return []imageFile{{name: "pause", mode: 0o755, data: data}},
		imageConfig{Entrypoint: []string{"/pause"}, User: "65535:65535"}, nil
}

type imageConfig struct {
	User       string   `json:"User,omitempty"`
	Env        []string `json:"Env,omitempty"`
	Entrypoint []string `json:"Entrypoint,omitempty"`
	Cmd        []string `json:"Cmd,omitempty"`
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int               `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func tarHeader(name string, mode int64) *tar.Header {
	return &tar.Header{Name: name, Mode: mode, ModTime: imageEpoch, Format: tar.FormatPAX}
}

// writeImage writes an OCI image layout archive of one uncompressed layer,
// tagged with every name in names.
func writeImage(file string, names []string, files []imageFile, cfg imageConfig) error {
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	for _, f := range files {
		h := tarHeader(f.name, f.mode)
		switch {
		case f.dir:
			h.Typeflag = tar.TypeDir
		case f.link != "":
			h.Typeflag, h.Linkname = tar.TypeLink, f.link
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("image layer: %w", err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return fmt.Errorf("image layer: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("image layer: %w", err)
	}
	layerDigest := digestOf(layer.Bytes())
	config, err := json.Marshal(map[string]any{
		"created":      imageEpoch.Format(time.RFC3339),
		"architecture": "amd64",
		"os":           "linux",
		"config":       cfg,
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{layerDigest}},
	})
	if err != nil {
		return err
	}
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        descriptor{MediaType: "application/vnd.oci.image.config.v1+json", Digest: digestOf(config), Size: len(config)},
		"layers":        []descriptor{{MediaType: "application/vnd.oci.image.layer.v1.tar", Digest: layerDigest, Size: layer.Len()}},
	})
	if err != nil {
		return err
	}
	var manifests []descriptor
	for _, n := range names {
		manifests = append(manifests, descriptor{
			MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: digestOf(manifest), Size: len(manifest),
			// containerd's importer names images by io.containerd.image.name.
			Annotations: map[string]string{"io.containerd.image.name": n, "org.opencontainers.image.ref.name": n[strings.LastIndex(n, ":")+1:]},
		})
	}
	index, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests})
	if err != nil {
		return err
	}
	var archive bytes.Buffer
	aw := tar.NewWriter(&archive)
	entries := []struct {
		name string
		data []byte
	}{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", index},
		{"blobs/sha256/" + strings.TrimPrefix(digestOf(config), "sha256:"), config},
		{"blobs/sha256/" + strings.TrimPrefix(digestOf(manifest), "sha256:"), manifest},
		{"blobs/sha256/" + strings.TrimPrefix(layerDigest, "sha256:"), layer.Bytes()},
	}
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		h := tarHeader(dir, 0o755)
		h.Typeflag = tar.TypeDir
		if err := aw.WriteHeader(h); err != nil {
			return err
		}
	}
	for _, e := range entries {
		h := tarHeader(e.name, 0o644)
		h.Typeflag, h.Size = tar.TypeReg, int64(len(e.data))
		if err := aw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := aw.Write(e.data); err != nil {
			return err
		}
	}
	if err := aw.Close(); err != nil {
		return err
	}
	if err := os.WriteFile(file, archive.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write image: %w", err)
	}
	return nil
}
