package harness

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// TestEnvironment checks what the other tests take for granted.
func TestEnvironment(t *testing.T) {
	// kubectl runs the plugin built by TestMain, not an older one in bin/.
	path, err := exec.LookPath("kubectl-acme")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(path, os.TempDir()) {
		t.Errorf("kubectl-acme resolves to %s, want the one TestMain built", path)
	}
	if _, stderr, code := kubectl(t, "acme", "--help"); code != 0 {
		t.Errorf("kubectl acme --help: exit %d: %s", code, stderr)
	}

	// Pod Security admission is on, as in real clusters.
	ns := newNamespace(t)
	if _, _, code := kubectl(t, "label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted"); code != 0 {
		t.Fatal("label namespace failed")
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "privileged"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name:            "c",
			Image:           "busybox",
			SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)},
		}}},
	}
	_, err = kube.CoreV1().Pods(ns).Create(t.Context(), pod, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "PodSecurity") {
		t.Errorf("privileged pod in a restricted namespace: got %v, want a PodSecurity rejection", err)
	}
}
