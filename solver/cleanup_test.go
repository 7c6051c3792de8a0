package solver

import (
	"context"
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-acme/kubectl-acme/acme"
)

func TestLeftoversFindsOnlyOurSolverObjects(t *testing.T) {
	ctx := context.Background()
	created := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	cfg := Config{Namespace: "ns", Name: "acme-solver-web-abc123", Certificate: "web"}
	pod := cfg.pod([]acme.Challenge{{Token: "t", KeyAuthorization: "t.k"}}, created.Format(time.RFC3339))
	svc := cfg.service(nil, created.Format(time.RFC3339))
	ing := cfg.ingress([]acme.Challenge{{Identifier: "a.example.com", Token: "t"}}, nil, created.Format(time.RFC3339))
	// Not ours: another tool's solver pod, and kubectl-acme's stored state.
	foreign := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "cm-acme-http-solver-x", Namespace: "ns",
		Labels: map[string]string{LabelComponent: "http01-solver", "acme.cert-manager.io/http01-solver": "true"}}}
	state := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "acme-certificate-web", Namespace: "ns",
		Labels: map[string]string{LabelManagedBy: ManagedByValue}}}
	// No annotation: the creation timestamp counts.
	bare := cfg.pod(nil, "")
	bare.Name, bare.Namespace = "acme-solver-api-def456", "other"
	delete(bare.Annotations, AnnotationCreated)
	bare.CreationTimestamp = metav1.NewTime(created.Add(-time.Hour))
	c := fake.NewClientset(pod, svc, ing, foreign, state, bare)

	all, err := Leftovers(ctx, c, "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range all {
		got = append(got, l.Namespace+"/"+l.Kind+"/"+l.Name)
	}
	want := []string{
		"ns/ingress/acme-solver-web-abc123", "ns/service/acme-solver-web-abc123",
		"ns/pod/acme-solver-web-abc123",
		"other/pod/acme-solver-api-def456",
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v (deletion order: anchor last)", got, want)
		}
	}
	if !all[0].Created.Equal(created) || all[0].Certificate != "web" {
		t.Errorf("created %v certificate %q", all[0].Created, all[0].Certificate)
	}
	if old := OlderThan(all, 90*time.Minute, created.Add(30*time.Minute)); len(old) != 1 || old[0].Namespace != "other" {
		t.Errorf("OlderThan: %+v", old)
	}
	for _, l := range all {
		if err := DeleteLeftover(ctx, c, l); err != nil {
			t.Fatal(err)
		}
	}
	if err := DeleteLeftover(ctx, c, all[0]); err != nil {
		t.Errorf("deleting what is gone: %v", err)
	}
	if left, _ := Leftovers(ctx, c, ""); len(left) != 0 {
		t.Errorf("left: %+v", left)
	}
	if _, err := c.CoreV1().Pods("ns").Get(ctx, foreign.Name, metav1.GetOptions{}); err != nil {
		t.Error("another tool's pod was touched")
	}
}

func TestLeftoverChallengePathsInTheUsersIngress(t *testing.T) {
	ctx := context.Background()
	prefix, exact := networkingv1.PathTypePrefix, networkingv1.PathTypeExact
	backend := func(svc string) networkingv1.IngressBackend {
		return networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: svc, Port: networkingv1.ServiceBackendPort{Number: 80}}}
	}
	app := networkingv1.HTTPIngressPath{Path: "/", PathType: &prefix, Backend: backend("app")}
	// The user's own ACME responder stays: it is not a solver's.
	own := networkingv1.HTTPIngressPath{Path: ChallengePath + "static", PathType: &exact, Backend: backend("responder")}
	chal := func(tok string) networkingv1.HTTPIngressPath {
		return networkingv1.HTTPIngressPath{Path: ChallengePath + tok, PathType: &exact, Backend: backend("acme-solver-web-abc123")}
	}
	rule := func(host string, paths ...networkingv1.HTTPIngressPath) networkingv1.IngressRule {
		return networkingv1.IngressRule{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: paths}}}
	}
	original := networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{rule("a.example.com", app, own)}}
	patched := networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{
		rule("a.example.com", app, own, chal("t1")),
		rule("b.example.com", chal("t2")), // a rule the solver added
	}}
	user := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns"}, Spec: patched}
	cfg := Config{Namespace: "ns", Name: "acme-solver-web-abc123", Certificate: "web"}
	created := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	svc := cfg.service(nil, created.Format(time.RFC3339))
	c := fake.NewClientset(user, svc)

	all, err := Leftovers(ctx, c, "ns")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].Kind != KindIngressPaths || all[0].Name != "web" || all[0].Solver != cfg.Name ||
		all[0].Certificate != "web" || !all[0].Created.Equal(created) {
		t.Fatalf("leftovers %+v", all)
	}
	for _, l := range all {
		if err := DeleteLeftover(ctx, c, l); err != nil {
			t.Fatal(err)
		}
	}
	got, err := c.NetworkingV1().Ingresses("ns").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Spec, original) {
		t.Errorf("ingress after cleanup:\n%+v\nwant\n%+v", got.Spec, original)
	}
}
