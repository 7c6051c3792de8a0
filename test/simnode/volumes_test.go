package simnode

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
)

// fakeSource serves objects from maps keyed by namespace/name.
type fakeSource struct {
	cms  map[string]*corev1.ConfigMap
	secs map[string]*corev1.Secret
	svcs []*corev1.Service
}

func (f fakeSource) ConfigMap(ns, name string) (*corev1.ConfigMap, error) {
	if cm, ok := f.cms[ns+"/"+name]; ok {
		return cm, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "configmaps"}, name)
}

func (f fakeSource) Secret(ns, name string) (*corev1.Secret, error) {
	if s, ok := f.secs[ns+"/"+name]; ok {
		return s, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "secrets"}, name)
}

func (f fakeSource) Services(ns string) ([]*corev1.Service, error) {
	var out []*corev1.Service
	for _, s := range f.svcs {
		if s.Namespace == ns {
			out = append(out, s)
		}
	}
	return out, nil
}

func noTokens(context.Context, *corev1.Pod, *corev1.ServiceAccountTokenProjection) ([]byte, error) {
	return []byte("token"), nil
}

func TestVolumePayload(t *testing.T) {
	src := fakeSource{
		cms: map[string]*corev1.ConfigMap{"ns/web": {
			Data:       map[string]string{"index.html": "hi", "other": "x"},
			BinaryData: map[string][]byte{"bin": {0, 1}},
		}},
		secs: map[string]*corev1.Secret{"ns/tls": {Data: map[string][]byte{"tls.crt": []byte("crt")}}},
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", Labels: map[string]string{"a": "b"}}}
	cmVol := func(name string, items []corev1.KeyToPath, optional *bool) corev1.Volume {
		return corev1.Volume{Name: "v", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: name}, Items: items, Optional: optional,
			DefaultMode: ptr.To[int32](0o444),
		}}}
	}
	tests := []struct {
		name    string
		vol     corev1.Volume
		want    map[string]string // path -> "mode content"
		wantErr string
	}{
		{"all keys", cmVol("web", nil, nil), map[string]string{"index.html": "444 hi", "other": "444 x", "bin": "444 \x00\x01"}, ""},
		{"items pick and rename", cmVol("web", []corev1.KeyToPath{{Key: "index.html", Path: "sub/page.html", Mode: ptr.To[int32](0o600)}}, nil), map[string]string{"sub/page.html": "600 hi"}, ""},
		{"missing key", cmVol("web", []corev1.KeyToPath{{Key: "nope", Path: "x"}}, nil), nil, "configmap references non-existent config key: nope"},
		{"missing key, optional", cmVol("web", []corev1.KeyToPath{{Key: "nope", Path: "x"}}, ptr.To(true)), map[string]string{}, ""},
		{"missing configmap", cmVol("gone", nil, nil), nil, `configmap "gone" not found`},
		{"missing configmap, optional", cmVol("gone", nil, ptr.To(true)), map[string]string{}, ""},
		{"secret", corev1.Volume{Name: "v", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "tls"}}}, map[string]string{"tls.crt": "644 crt"}, ""},
		{"missing secret", corev1.Volume{Name: "v", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "nope"}}}, nil, `secret "nope" not found`},
		{"projected", corev1.Volume{Name: "v", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}},
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "web"}, Items: []corev1.KeyToPath{{Key: "other", Path: "ca.crt"}}}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
		}}}}, map[string]string{"token": "644 token", "ca.crt": "644 x", "namespace": "644 ns"}, ""},
		{"downward labels", corev1.Volume{Name: "v", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
			{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
		}}}}, map[string]string{"labels": `644 a="b"`}, ""},
		{"unsupported", corev1.Volume{Name: "v", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}, nil, "does not support"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := volumePayload(context.Background(), pod, &tt.vol, src, noTokens, "node", "127.0.0.1")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			flat := map[string]string{}
			for p, f := range got {
				flat[p] = fmt.Sprintf("%o %s", f.mode, f.data)
			}
			if fmt.Sprint(flat) != fmt.Sprint(tt.want) {
				t.Errorf("payload = %v, want %v", flat, tt.want)
			}
		})
	}
}

func TestWriteAtomic(t *testing.T) {
	dir := t.TempDir()
	write := func(files map[string]string) {
		t.Helper()
		p := map[string]fileProjection{}
		for k, v := range files {
			p[k] = fileProjection{data: []byte(v), mode: 0o444}
		}
		if err := writeAtomic(dir, p, nil); err != nil {
			t.Fatal(err)
		}
	}
	read := func(p string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil {
			return "<" + err.Error() + ">"
		}
		return string(b)
	}
	write(map[string]string{"a": "1", "d/b": "2"})
	if read("a") != "1" || read("d/b") != "2" {
		t.Fatalf("first write: a=%q d/b=%q", read("a"), read("d/b"))
	}
	if target, _ := os.Readlink(filepath.Join(dir, "a")); target != "..data/a" {
		t.Errorf("a links to %q, want ..data/a as the kubelet lays it out", target)
	}
	fi, err := os.Stat(filepath.Join(dir, "a"))
	if err != nil || fi.Mode().Perm() != 0o444 {
		t.Errorf("mode of a = %v, %v; want 0444", fi.Mode().Perm(), err)
	}
	write(map[string]string{"a": "changed"})
	if read("a") != "changed" {
		t.Errorf("after update a = %q", read("a"))
	}
	if _, err := os.Lstat(filepath.Join(dir, "d")); !os.IsNotExist(err) {
		t.Errorf("d should be gone after the update, got %v", err)
	}
	entries, _ := os.ReadDir(dir)
	var payloadDirs int
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "..") && e.Name() != "..data" {
			payloadDirs++
		}
	}
	if payloadDirs != 1 {
		t.Errorf("%d payload directories left, want 1", payloadDirs)
	}
	if err := writeAtomic(dir, map[string]fileProjection{"../escape": {}}, nil); err == nil {
		t.Error("a path with .. must be refused")
	}
}

func TestMountVolume(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"var/www", volumesDir[1:] + "/www/..data", volumesDir[1:] + "/scratch"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, volumesDir[1:], "www/..data/index.html"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..data/index.html", filepath.Join(root, volumesDir[1:], "www/index.html")); err != nil {
		t.Fatal(err)
	}
	cm := &corev1.Volume{Name: "www", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{}}}
	empty := &corev1.Volume{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}

	// Over an (empty) image directory, and nested under a new one.
	for _, mp := range []string{"/var/www", "/srv/a/b"} {
		if err := mountVolume(root, corev1.VolumeMount{Name: "www", MountPath: mp}, cm, nil); err != nil {
			t.Fatalf("mount at %s: %v", mp, err)
		}
		if b, err := os.ReadFile(filepath.Join(root, mp, "index.html")); err != nil || string(b) != "hi" {
			t.Errorf("%s/index.html = %q, %v", mp, b, err)
		}
	}
	// A second container mounting the same volume at the same path is fine.
	if err := mountVolume(root, corev1.VolumeMount{Name: "www", MountPath: "/var/www"}, cm, nil); err != nil {
		t.Errorf("remount: %v", err)
	}
	if err := mountVolume(root, corev1.VolumeMount{Name: "scratch", MountPath: "/var/www"}, empty, nil); err == nil {
		t.Error("two volumes at one path must be refused")
	}
	// subPath of a configMap is a copy taken at container start.
	if err := mountVolume(root, corev1.VolumeMount{Name: "www", MountPath: "/etc/page.html", SubPath: "index.html"}, cm, nil); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(filepath.Join(root, "etc/page.html")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("subPath file: %v, %v; want a regular file", fi, err)
	}
	if err := mountVolume(root, corev1.VolumeMount{Name: "www", MountPath: "/x", SubPath: "missing"}, cm, nil); err == nil {
		t.Error("a missing subPath of a configMap must fail")
	}
	// subPath of an emptyDir is created, and shared.
	if err := mountVolume(root, corev1.VolumeMount{Name: "scratch", MountPath: "/data", SubPathExpr: "$(POD)"}, empty, map[string]string{"POD": "p1"}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "data/f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, volumesDir[1:], "scratch/p1/f")); err != nil {
		t.Errorf("file written through the mount is not in the volume: %v", err)
	}
	if err := mountVolume(root, corev1.VolumeMount{Name: "scratch", MountPath: "/y", SubPath: "../etc"}, empty, nil); err == nil {
		t.Error("subPath with .. must be refused")
	}
}

func TestContainerEnv(t *testing.T) {
	src := fakeSource{
		cms:  map[string]*corev1.ConfigMap{"ns/cfg": {Data: map[string]string{"K1": "v1", "K2": "v2"}}},
		secs: map[string]*corev1.Secret{"ns/s": {Data: map[string][]byte{"pw": []byte("secret")}}},
		svcs: []*corev1.Service{
			{ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: "default"}, Spec: corev1.ServiceSpec{ClusterIP: "10.0.0.1", Ports: []corev1.ServicePort{{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP}}}},
			{ObjectMeta: metav1.ObjectMeta{Name: "my-svc", Namespace: "ns"}, Spec: corev1.ServiceSpec{ClusterIP: "10.0.0.9", Ports: []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}}}},
		},
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"},
		Status:     corev1.PodStatus{PodIP: "127.1.0.9"},
	}
	c := &corev1.Container{
		EnvFrom: []corev1.EnvFromSource{{Prefix: "CFG_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
		Env: []corev1.EnvVar{
			{Name: "A", Value: "a"},
			{Name: "B", Value: "$(A)-$(CFG_K1)"},
			{Name: "PW", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "pw"}}},
			{Name: "IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
			{Name: "OPT", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Key: "nope", Optional: ptr.To(true)}}},
		},
	}
	env, _, err := containerEnv(pod, c, src, "node", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"CFG_K1": "v1", "CFG_K2": "v2", "A": "a", "B": "a-v1", "PW": "secret", "IP": "127.1.0.9",
		"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443",
		"MY_SVC_SERVICE_HOST": "10.0.0.9", "MY_SVC_PORT": "tcp://10.0.0.9:80",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	if _, ok := env["OPT"]; ok {
		t.Error("an optional missing key must leave the variable out")
	}

	for name, bad := range map[string]corev1.EnvVarSource{
		`configmap "gone" not found`:                 {ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "gone"}, Key: "k"}},
		"couldn't find key nope in ConfigMap ns/cfg": {ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Key: "nope"}},
		`secret "gone" not found`:                    {SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "gone"}, Key: "k"}},
	} {
		c := &corev1.Container{Env: []corev1.EnvVar{{Name: "X", ValueFrom: &bad}}}
		if _, _, err := containerEnv(pod, c, src, "node", "127.0.0.1"); err == nil || err.Error() != name {
			t.Errorf("got %v, want %q", err, name)
		}
	}
}
