package simnode

import (
	"errors"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestImageRepo(t *testing.T) {
	for ref, want := range map[string]string{
		"busybox":                                      "busybox",
		"busybox:1.36":                                 "busybox",
		"docker.io/library/busybox:1.36":               "busybox",
		"busybox@sha256:abc":                           "busybox",
		"busybox:1.36@sha256:abc":                      "busybox",
		"localhost:5000/busybox":                       "busybox",
		"localhost:5000/tools/busybox:latest":          "busybox",
		"registry.k8s.io/e2e-test-images/agnhost:2.47": "agnhost",
		"nginx": "nginx",
	} {
		if got := imageRepo(ref); got != want {
			t.Errorf("imageRepo(%q) = %q, want %q", ref, got, want)
		}
	}
}

func TestResolveImageAndArgv(t *testing.T) {
	applets := map[string]bool{"httpd": true, "sh": true, "sleep": true}
	tests := []struct {
		name    string
		c       corev1.Container
		env     map[string]string
		want    []string
		wantErr bool
	}{
		{"busybox default CMD is sh", corev1.Container{Image: "busybox"}, nil, []string{"sh"}, false},
		{"args replace CMD", corev1.Container{Image: "busybox:1.36", Args: []string{"echo", "hi"}}, nil, []string{"echo", "hi"}, false},
		{"command replaces ENTRYPOINT and drops CMD", corev1.Container{Image: "busybox", Command: []string{"httpd", "-f"}}, nil, []string{"httpd", "-f"}, false},
		{"command and args", corev1.Container{Image: "docker.io/library/busybox:1.37", Command: []string{"httpd"}, Args: []string{"-p", "80"}}, nil, []string{"httpd", "-p", "80"}, false},
		{"other image with an applet command", corev1.Container{Image: "alpine:3", Command: []string{"/bin/sh", "-c", "true"}}, nil, []string{"/bin/sh", "-c", "true"}, false},
		{"other image without command", corev1.Container{Image: "nginx:1.27"}, nil, nil, true},
		{"other image with a non-applet command", corev1.Container{Image: "nginx:1.27", Command: []string{"nginx"}}, nil, nil, true},
		{"$(VAR) expansion", corev1.Container{Image: "busybox", Command: []string{"httpd", "-p", "$(PORT)", "$(UNSET)", "$$(PORT)"}}, map[string]string{"PORT": "8080"}, []string{"httpd", "-p", "8080", "$(UNSET)", "$(PORT)"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, err := resolveImage(&tt.c, applets)
			var cannot *errCannotRun
			if tt.wantErr {
				if !errors.As(err, &cannot) {
					t.Fatalf("resolveImage: got %v, want errCannotRun", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := containerArgv(&tt.c, img, tt.env); !slices.Equal(got, tt.want) {
				t.Errorf("argv = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestExpandVars(t *testing.T) {
	vars := map[string]string{"A": "a", "B": "b"}
	lookup := func(n string) (string, bool) { v, ok := vars[n]; return v, ok }
	for in, want := range map[string]string{
		"$(A)$(B)":  "ab",
		"x$(A)y":    "xay",
		"$$(A)":     "$(A)",
		"$$":        "$",
		"$(C)":      "$(C)",
		"$(A":       "$(A",
		"$A":        "$A",
		"trailing$": "trailing$",
	} {
		if got := expandVars(in, lookup); got != want {
			t.Errorf("expandVars(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLookPath(t *testing.T) {
	files := map[string]bool{"/bin/httpd": true, "/scripts/run.sh": true}
	exists := func(p string) bool { return files[p] }
	tests := []struct {
		argv0, path, want string
		wantErr           string
	}{
		{"httpd", "/usr/bin:/bin", "/bin/httpd", ""},
		{"/bin/httpd", "", "/bin/httpd", ""},
		{"scripts/run.sh", "/bin", "/scripts/run.sh", ""},
		{"httpd", "/usr/bin", "", "executable file not found in $PATH"},
		{"/usr/sbin/httpd", "/bin", "", "no such file or directory"},
	}
	for _, tt := range tests {
		got, err := lookPath(tt.argv0, tt.path, exists)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("lookPath(%q): got %q, %v; want error containing %q", tt.argv0, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("lookPath(%q) = %q, %v; want %q", tt.argv0, got, err, tt.want)
		}
	}
}

func TestContainerIdentity(t *testing.T) {
	pod := func(psc *corev1.PodSecurityContext, csc *corev1.SecurityContext) (*corev1.Pod, *corev1.Container) {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u"},
			Spec:       corev1.PodSpec{SecurityContext: psc, Containers: []corev1.Container{{Name: "c", Image: "busybox", SecurityContext: csc}}},
		}
		return p, &p.Spec.Containers[0]
	}
	tests := []struct {
		name    string
		psc     *corev1.PodSecurityContext
		csc     *corev1.SecurityContext
		want    identity
		wantErr string
	}{
		{"root by default", nil, nil, identity{}, ""},
		{"pod runAsUser, group from passwd", &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](65534)}, nil, identity{uid: 65534, gid: 65534}, ""},
		{"unknown user gets group 0", &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](1234)}, nil, identity{uid: 1234}, ""},
		{"container overrides pod", &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](1), RunAsGroup: ptr.To[int64](2)}, &corev1.SecurityContext{RunAsUser: ptr.To[int64](3)}, identity{uid: 3, gid: 2}, ""},
		{"groups", &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](1000), RunAsGroup: ptr.To[int64](1000), SupplementalGroups: []int64{5}, FSGroup: ptr.To[int64](6)}, nil, identity{uid: 1000, gid: 1000, groups: []uint32{5, 6}}, ""},
		{"runAsNonRoot with a user", &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65534)}, nil, identity{uid: 65534, gid: 65534}, ""},
		{"runAsNonRoot without a user", &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)}, nil, identity{}, "container has runAsNonRoot and image will run as root (pod: \"p_ns(u)\", container: c)"},
		{"runAsNonRoot on the container", nil, &corev1.SecurityContext{RunAsNonRoot: ptr.To(true)}, identity{}, "image will run as root"},
		{"runAsNonRoot with user 0", &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](0)}, nil, identity{}, "container's runAsUser breaks non-root policy"},
		{"container lifts runAsNonRoot", &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)}, &corev1.SecurityContext{RunAsNonRoot: ptr.To(false)}, identity{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, c := pod(tt.psc, tt.csc)
			got, err := containerIdentity(p, c, busyboxImage())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.uid != tt.want.uid || got.gid != tt.want.gid || !slices.Equal(got.groups, tt.want.groups) {
				t.Errorf("identity = %+v, want %+v", got, tt.want)
			}
		})
	}
}
