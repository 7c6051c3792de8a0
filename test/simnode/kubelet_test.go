package simnode

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestPodUses(t *testing.T) {
	ref := func(n string) corev1.LocalObjectReference { return corev1.LocalObjectReference{Name: n} }
	pod := &corev1.Pod{Spec: corev1.PodSpec{
		Volumes: []corev1.Volume{
			{Name: "a", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: ref("vol-cm")}}},
			{Name: "b", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "vol-secret"}}},
			{Name: "c", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: ref("kube-root-ca.crt")}},
			}}}},
		},
		InitContainers: []corev1.Container{{EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: ref("init-env")}}}}},
		Containers: []corev1.Container{{Env: []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{
			ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: ref("env-cm"), Key: "k"},
		}}}}},
	}}
	for _, tt := range []struct {
		kind, name string
		want       bool
	}{
		{"ConfigMap", "vol-cm", true},
		{"Secret", "vol-cm", false},
		{"Secret", "vol-secret", true},
		{"ConfigMap", "kube-root-ca.crt", true},
		{"Secret", "init-env", true},
		{"ConfigMap", "env-cm", true},
		{"ConfigMap", "other", false},
	} {
		if got := podUses(pod, tt.kind, tt.name); got != tt.want {
			t.Errorf("podUses(%s %s) = %v, want %v", tt.kind, tt.name, got, tt.want)
		}
	}
}
