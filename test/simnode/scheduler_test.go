package simnode

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestUnfit(t *testing.T) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "simnode", Labels: nodeLabels("simnode")}}
	tainted := node.DeepCopy()
	tainted.Spec.Taints = []corev1.Taint{{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoSchedule}}
	affinity := func(terms ...corev1.NodeSelectorTerm) *corev1.Affinity {
		return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: terms},
		}}
	}
	expr := func(key string, op corev1.NodeSelectorOperator, values ...string) corev1.NodeSelectorTerm {
		return corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: key, Operator: op, Values: values}}}
	}
	tests := []struct {
		name string
		node *corev1.Node
		spec corev1.PodSpec
		want string // substring of the reason, "" if it fits
	}{
		{"plain pod", node, corev1.PodSpec{}, ""},
		{"matching nodeSelector", node, corev1.PodSpec{NodeSelector: map[string]string{"kubernetes.io/os": "linux"}}, ""},
		{"wrong nodeSelector", node, corev1.PodSpec{NodeSelector: map[string]string{"kubernetes.io/os": "windows"}}, "didn't match Pod's node affinity/selector"},
		{"affinity In", node, corev1.PodSpec{Affinity: affinity(expr("kubernetes.io/hostname", corev1.NodeSelectorOpIn, "simnode"))}, ""},
		{"affinity NotIn", node, corev1.PodSpec{Affinity: affinity(expr("kubernetes.io/hostname", corev1.NodeSelectorOpNotIn, "simnode"))}, "affinity"},
		{"affinity terms are ORed", node, corev1.PodSpec{Affinity: affinity(expr("x", corev1.NodeSelectorOpExists), expr("kubernetes.io/os", corev1.NodeSelectorOpExists))}, ""},
		{"untolerated taint", tainted, corev1.PodSpec{}, "untolerated taint {node.kubernetes.io/not-ready: }"},
		{"tolerated taint", tainted, corev1.PodSpec{Tolerations: []corev1.Toleration{{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists}}}, ""},
		{"tolerate everything", tainted, corev1.PodSpec{Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}}}, ""},
		{"toleration for another effect", tainted, corev1.PodSpec{Tolerations: []corev1.Toleration{{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}}}, "untolerated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := unfit(&corev1.Pod{Spec: tt.spec}, tt.node)
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Errorf("unfit = %q, want %q", got, tt.want)
			}
		})
	}
}
