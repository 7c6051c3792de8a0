package solver

import (
	"context"
	"encoding/json"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/kubectl-acme/kubectl-acme/acme"
	"github.com/kubectl-acme/kubectl-acme/certmanager"
)

func TestPodTemplate(t *testing.T) {
	tmpl := &certmanager.ACMEChallengeSolverHTTP01IngressPodTemplate{}
	tmpl.Labels = map[string]string{"team": "web", LabelSolver: "hijack"}
	tmpl.Annotations = map[string]string{"sidecar.istio.io/inject": "false"}
	tmpl.Spec = certmanager.ACMEChallengeSolverHTTP01IngressPodSpec{
		NodeSelector:       map[string]string{"pool": "edge"},
		Tolerations:        []corev1.Toleration{{Key: "edge", Operator: corev1.TolerationOpExists}},
		PriorityClassName:  "high",
		ServiceAccountName: "solver",
		ImagePullSecrets:   []corev1.LocalObjectReference{{Name: "regcred"}},
		SecurityContext:    &certmanager.ACMEChallengeSolverHTTP01IngressPodSecurityContext{RunAsUser: ptr.To(int64(1000))},
		Resources:          &certmanager.ACMEChallengeSolverHTTP01IngressPodResources{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")}},
	}
	cfg := Config{Namespace: "ns", Name: "s", Certificate: "web", PodTemplate: tmpl, ServiceType: corev1.ServiceTypeNodePort}
	pod := cfg.pod(nil, "now")
	if pod.Labels["team"] != "web" || pod.Labels[LabelSolver] != "s" {
		t.Errorf("labels %v: the template's are added, the solver's win", pod.Labels)
	}
	if pod.Annotations["sidecar.istio.io/inject"] != "false" || pod.Annotations[AnnotationCreated] != "now" {
		t.Errorf("annotations %v", pod.Annotations)
	}
	sp := pod.Spec
	if sp.NodeSelector["pool"] != "edge" || sp.NodeSelector["kubernetes.io/os"] != "linux" {
		t.Errorf("nodeSelector %v: merged", sp.NodeSelector)
	}
	if len(sp.Tolerations) != 1 || sp.PriorityClassName != "high" || sp.ServiceAccountName != "solver" || sp.ImagePullSecrets[0].Name != "regcred" {
		t.Errorf("spec %+v", sp)
	}
	if *sp.SecurityContext.RunAsUser != 1000 || !*sp.SecurityContext.RunAsNonRoot || sp.SecurityContext.SeccompProfile == nil {
		t.Errorf("security context %+v: runAsUser replaced, restricted defaults kept", sp.SecurityContext)
	}
	res := sp.Containers[0].Resources
	if res.Limits.Memory().String() != "128Mi" || res.Requests.Memory().String() != "16Mi" {
		t.Errorf("resources %+v", res)
	}
	if svc := cfg.service(nil, "now"); svc.Spec.Type != corev1.ServiceTypeNodePort {
		t.Errorf("service type %s", svc.Spec.Type)
	}
	if svc := (&Config{Name: "s"}).service(nil, "now"); svc.Spec.Type != corev1.ServiceTypeClusterIP {
		t.Errorf("default service type %s", svc.Spec.Type)
	}
}

func TestIngressTemplate(t *testing.T) {
	tmpl := &certmanager.ACMEChallengeSolverHTTP01IngressTemplate{}
	tmpl.Labels = map[string]string{"team": "web"}
	tmpl.Annotations = map[string]string{"nginx.ingress.kubernetes.io/ssl-redirect": "false", "kubernetes.io/ingress.class": "other"}
	cfg := Config{Namespace: "ns", Name: "s", Certificate: "web", LegacyClass: "nginx", IngressTemplate: tmpl}
	ing := cfg.ingress([]acme.Challenge{{Identifier: "a.example.com", Token: "t"}}, nil, "now")
	if ing.Labels["team"] != "web" || ing.Labels[LabelSolver] != "s" {
		t.Errorf("labels %v", ing.Labels)
	}
	if ing.Annotations["nginx.ingress.kubernetes.io/ssl-redirect"] != "false" || ing.Annotations["kubernetes.io/ingress.class"] != "nginx" {
		t.Errorf("annotations %v: added, but the class stays the solver's", ing.Annotations)
	}
}

// TestExistingIngress: the challenge paths are added to the user's
// Ingress and removed again, leaving its spec exactly as it was, also when
// the user changed it meanwhile.
func TestExistingIngress(t *testing.T) {
	prefix := networkingv1.PathTypePrefix
	backend := networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}}
	user := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns"},
		Spec: networkingv1.IngressSpec{
			IngressClassName: ptr.To("gce"),
			TLS:              []networkingv1.IngressTLS{{Hosts: []string{"a.example.com"}, SecretName: "web-tls"}},
			Rules: []networkingv1.IngressRule{
				{Host: "a.example.com", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
					Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: &prefix, Backend: backend}},
				}}},
				{Host: "c.example.com"},
			},
		},
	}
	chals := []acme.Challenge{
		{Identifier: "a.example.com", Token: "t1"},
		{Identifier: "b.example.com", Token: "t2"},
		{Identifier: "c.example.com", Token: "t3"},
		{Identifier: "192.0.2.1", IsIP: true, Token: "t4"},
	}
	for _, tt := range []struct {
		name string
		// meanwhile changes the Ingress between Present and CleanUp.
		meanwhile func(*networkingv1.Ingress)
	}{
		{"untouched", nil},
		{"user added a path", func(ing *networkingv1.Ingress) {
			ing.Spec.Rules[0].HTTP.Paths = append(ing.Spec.Rules[0].HTTP.Paths, networkingv1.HTTPIngressPath{Path: "/api", PathType: &prefix, Backend: backend})
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			client := fake.NewClientset(user.DeepCopy())
			ings := client.NetworkingV1().Ingresses("ns")
			s := &Ingress{Workload: Workload{Client: client, Config: Config{Namespace: "ns", Name: "acme-solver-web-1", ExistingIngress: "web"}}}
			if err := s.addPaths(ctx, chals); err != nil {
				t.Fatal(err)
			}
			during, _ := ings.Get(ctx, "web", metav1.GetOptions{})
			r := during.Spec.Rules
			if len(r) != 4 || len(r[0].HTTP.Paths) != 2 || r[0].HTTP.Paths[1].Path != ChallengePath+"t1" ||
				r[1].HTTP == nil || r[1].HTTP.Paths[0].Path != ChallengePath+"t3" ||
				r[2].Host != "" || r[3].Host != "b.example.com" {
				b, _ := json.MarshalIndent(r, "", " ")
				t.Fatalf("rules while presenting:\n%s", b)
			}
			want := user.DeepCopy()
			if tt.meanwhile != nil {
				tt.meanwhile(during)
				if _, err := ings.Update(ctx, during, metav1.UpdateOptions{}); err != nil {
					t.Fatal(err)
				}
				tt.meanwhile(want)
			}
			if err := s.CleanUp(ctx); err != nil {
				t.Fatal(err)
			}
			after, _ := ings.Get(ctx, "web", metav1.GetOptions{})
			got, _ := json.Marshal(after.Spec)
			exp, _ := json.Marshal(want.Spec)
			if string(got) != string(exp) {
				t.Errorf("spec after CleanUp:\n%s\nwant:\n%s", got, exp)
			}
		})
	}
}

func TestExistingIngressMissing(t *testing.T) {
	s := &Ingress{Workload: Workload{Client: fake.NewClientset(), Config: Config{Namespace: "ns", Name: "x", ExistingIngress: "nope"}}}
	err := s.addPaths(context.Background(), []acme.Challenge{{Identifier: "a.example.com", Token: "t"}})
	if err == nil || err.Error() != "ingress ns/nope (http01.ingress.name of the issuer's solver) does not exist" {
		t.Errorf("err = %v", err)
	}
	if err := s.CleanUp(context.Background()); err != nil {
		t.Errorf("CleanUp after a failed add: %v", err)
	}
}
