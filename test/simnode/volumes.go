package simnode

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// fileProjection is one file of a configMap, secret, downwardAPI or
// projected volume.
type fileProjection struct {
	data []byte
	mode fs.FileMode
}

// tokenSource issues service account tokens for projected volumes.
type tokenSource func(ctx context.Context, pod *corev1.Pod, src *corev1.ServiceAccountTokenProjection) ([]byte, error)

// volumePayload computes the files of a volume that is made of API data.
// ok is false for volume types that are plain directories (emptyDir). Errors
// read like the kubelet's MountVolume.SetUp failures.
func volumePayload(ctx context.Context, pod *corev1.Pod, v *corev1.Volume, src objectSource, tokens tokenSource, nodeName, hostIP string) (map[string]fileProjection, bool, error) {
	switch {
	case v.EmptyDir != nil:
		return nil, false, nil
	case v.ConfigMap != nil:
		p := map[string]fileProjection{}
		err := projectConfigMap(p, pod.Namespace, &v.ConfigMap.LocalObjectReference, v.ConfigMap.Items, v.ConfigMap.Optional, modeOr(v.ConfigMap.DefaultMode, 0o644), src)
		return p, true, err
	case v.Secret != nil:
		p := map[string]fileProjection{}
		err := projectSecret(p, pod.Namespace, v.Secret.SecretName, v.Secret.Items, v.Secret.Optional, modeOr(v.Secret.DefaultMode, 0o644), src)
		return p, true, err
	case v.DownwardAPI != nil:
		p := map[string]fileProjection{}
		err := projectDownward(p, pod, v.DownwardAPI.Items, modeOr(v.DownwardAPI.DefaultMode, 0o644), nodeName, hostIP)
		return p, true, err
	case v.Projected != nil:
		p := map[string]fileProjection{}
		mode := modeOr(v.Projected.DefaultMode, 0o644)
		for _, s := range v.Projected.Sources {
			var err error
			switch {
			case s.ConfigMap != nil:
				err = projectConfigMap(p, pod.Namespace, &s.ConfigMap.LocalObjectReference, s.ConfigMap.Items, s.ConfigMap.Optional, mode, src)
			case s.Secret != nil:
				err = projectSecret(p, pod.Namespace, s.Secret.Name, s.Secret.Items, s.Secret.Optional, mode, src)
			case s.DownwardAPI != nil:
				err = projectDownward(p, pod, s.DownwardAPI.Items, mode, nodeName, hostIP)
			case s.ServiceAccountToken != nil:
				var tok []byte
				tok, err = tokens(ctx, pod, s.ServiceAccountToken)
				p[s.ServiceAccountToken.Path] = fileProjection{data: tok, mode: mode}
			default:
				err = errors.New("simnode supports only configMap, secret, downwardAPI and serviceAccountToken projections")
			}
			if err != nil {
				return nil, true, err
			}
		}
		return p, true, nil
	}
	return nil, false, fmt.Errorf("simnode does not support the volume type of volume %q", v.Name)
}

func modeOr(m *int32, def fs.FileMode) fs.FileMode {
	if m == nil {
		return def
	}
	return fs.FileMode(*m)
}

func itemMode(m *int32, def fs.FileMode) fs.FileMode { return modeOr(m, def) }

func projectConfigMap(p map[string]fileProjection, ns string, ref *corev1.LocalObjectReference, items []corev1.KeyToPath, optional *bool, mode fs.FileMode, src objectSource) error {
	cm, err := src.ConfigMap(ns, ref.Name)
	if err != nil {
		if apierrors.IsNotFound(err) {
			if isTrue(optional) {
				return nil
			}
			return fmt.Errorf("configmap %q not found", ref.Name)
		}
		return fmt.Errorf("get configmap %q: %w", ref.Name, err)
	}
	data := map[string][]byte{}
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return project(p, data, items, optional, mode, "configmap")
}

func projectSecret(p map[string]fileProjection, ns, name string, items []corev1.KeyToPath, optional *bool, mode fs.FileMode, src objectSource) error {
	s, err := src.Secret(ns, name)
	if err != nil {
		if apierrors.IsNotFound(err) {
			if isTrue(optional) {
				return nil
			}
			return fmt.Errorf("secret %q not found", name)
		}
		return fmt.Errorf("get secret %q: %w", name, err)
	}
	return project(p, s.Data, items, optional, mode, "secret")
}

// project maps keys to files: all keys by their name, or only the listed
// items, where a missing key fails the mount unless the source is optional.
func project(p map[string]fileProjection, data map[string][]byte, items []corev1.KeyToPath, optional *bool, mode fs.FileMode, kind string) error {
	if len(items) == 0 {
		for k, v := range data {
			p[k] = fileProjection{data: v, mode: mode}
		}
		return nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			if isTrue(optional) {
				continue
			}
			// The kubelet's wording differs per kind.
			if kind == "configmap" {
				return fmt.Errorf("configmap references non-existent config key: %s", it.Key)
			}
			return fmt.Errorf("references non-existent secret key: %s", it.Key)
		}
		p[it.Path] = fileProjection{data: v, mode: itemMode(it.Mode, mode)}
	}
	return nil
}

func projectDownward(p map[string]fileProjection, pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile, mode fs.FileMode, nodeName, hostIP string) error {
	for _, it := range items {
		var v string
		switch {
		case it.FieldRef != nil:
			var err error
			if v, err = podField(pod, it.FieldRef.FieldPath, nodeName, hostIP); err != nil {
				return err
			}
		case it.ResourceFieldRef != nil:
			c := containerByName(pod, it.ResourceFieldRef.ContainerName)
			if c == nil {
				return fmt.Errorf("container %q not found for downward API item %q", it.ResourceFieldRef.ContainerName, it.Path)
			}
			v = resourceField(c, it.ResourceFieldRef)
		}
		p[it.Path] = fileProjection{data: []byte(v), mode: itemMode(it.Mode, mode)}
	}
	return nil
}

func containerByName(pod *corev1.Pod, name string) *corev1.Container {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	return nil
}

// payloadEqual reports whether writing b over a would change nothing.
func payloadEqual(a, b map[string]fileProjection) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		vb, ok := b[k]
		if !ok || va.mode != vb.mode || !bytes.Equal(va.data, vb.data) {
			return false
		}
	}
	return true
}

// writeAtomic lays out a payload the way the kubelet's AtomicWriter does:
// files live in a timestamped directory, "..data" links to it, and each
// visible top-level name links through "..data". Swapping "..data" with a
// rename updates all files at once for a process reading the volume.
func writeAtomic(dir string, payload map[string]fileProjection, gid *int64) error {
	for p := range payload {
		if err := validPayloadPath(p); err != nil {
			return err
		}
	}
	var suffix [4]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return fmt.Errorf("random suffix: %w", err)
	}
	tsName := ".." + time.Now().UTC().Format("2006_01_02_15_04_05.") + hex.EncodeToString(suffix[:])
	tsDir := filepath.Join(dir, tsName)
	if err := os.MkdirAll(tsDir, 0o755); err != nil {
		return fmt.Errorf("create volume payload dir: %w", err)
	}
	for p, f := range payload {
		full := filepath.Join(tsDir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return fmt.Errorf("create dir for %s: %w", p, err)
		}
		if err := os.WriteFile(full, f.data, 0o600); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
		// WriteFile honours the umask; the API mode is exact.
		if err := os.Chmod(full, f.mode.Perm()); err != nil {
			return fmt.Errorf("chmod %s: %w", p, err)
		}
		if gid != nil {
			if err := os.Chown(full, 0, int(*gid)); err != nil {
				return fmt.Errorf("chown %s: %w", p, err)
			}
		}
	}
	old, _ := os.Readlink(filepath.Join(dir, "..data"))
	tmpLink := filepath.Join(dir, "..data_tmp")
	os.Remove(tmpLink)
	if err := os.Symlink(tsName, tmpLink); err != nil {
		return fmt.Errorf("link new payload: %w", err)
	}
	if err := os.Rename(tmpLink, filepath.Join(dir, "..data")); err != nil {
		return fmt.Errorf("swap payload: %w", err)
	}
	want := map[string]bool{}
	for p := range payload {
		want[strings.SplitN(p, "/", 2)[0]] = true
	}
	for top := range want {
		link := filepath.Join(dir, top)
		if target, err := os.Readlink(link); err == nil && target == path.Join("..data", top) {
			continue
		}
		os.RemoveAll(link)
		if err := os.Symlink(path.Join("..data", top), link); err != nil {
			return fmt.Errorf("link %s: %w", top, err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read volume dir: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, "..") || want[name] {
			continue
		}
		os.RemoveAll(filepath.Join(dir, name))
	}
	if old != "" && old != tsName {
		os.RemoveAll(filepath.Join(dir, old))
	}
	return nil
}

// validPayloadPath rejects paths the API server would also reject, so a
// payload can never write outside its volume.
func validPayloadPath(p string) error {
	if p == "" || path.IsAbs(p) || strings.HasPrefix(p, "..") {
		return fmt.Errorf("invalid volume file path %q", p)
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return fmt.Errorf("invalid volume file path %q", p)
		}
	}
	return nil
}
