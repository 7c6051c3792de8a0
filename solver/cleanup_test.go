package solver

import (
	"context"
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

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

	all, err := Leftovers(ctx, c, nil, "")
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
		if err := DeleteLeftover(ctx, c, nil, l); err != nil {
			t.Fatal(err)
		}
	}
	if err := DeleteLeftover(ctx, c, nil, all[0]); err != nil {
		t.Errorf("deleting what is gone: %v", err)
	}
	if left, _ := Leftovers(ctx, c, nil, ""); len(left) != 0 {
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

	all, err := Leftovers(ctx, c, nil, "ns")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].Kind != KindIngressPaths || all[0].Name != "web" || all[0].Solver != cfg.Name ||
		all[0].Certificate != "web" || !all[0].Created.Equal(created) {
		t.Fatalf("leftovers %+v", all)
	}
	for _, l := range all {
		if err := DeleteLeftover(ctx, c, nil, l); err != nil {
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

func TestLeftoverHTTPRoutes(t *testing.T) {
	ctx := context.Background()
	created := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC).Format(time.RFC3339)
	cfg := Config{Namespace: "ns", Name: "acme-solver-web-abc123", Certificate: "web", ParentRefs: []gatewayv1.ParentReference{{Name: "gw"}}}
	routes := cfg.httpRoutes([]acme.Challenge{{Identifier: "a.example.com", Token: "t"}}, nil, created)
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(routes[0])
	if err != nil {
		t.Fatal(err)
	}
	foreign := &unstructured.Unstructured{}
	foreign.SetAPIVersion("gateway.networking.k8s.io/v1")
	foreign.SetKind("HTTPRoute")
	foreign.SetNamespace("ns")
	foreign.SetName("web")
	listKinds := map[schema.GroupVersionResource]string{HTTPRoutes: "HTTPRouteList"}
	dc := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), listKinds, &unstructured.Unstructured{Object: m}, foreign)
	c := fake.NewClientset()

	all, err := Leftovers(ctx, c, dc, "ns")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || all[0].Kind != KindHTTPRoute || all[0].Name != cfg.Name || all[0].Certificate != "web" || all[0].Created.Format(time.RFC3339) != created {
		t.Fatalf("leftovers %+v", all)
	}
	if err := DeleteLeftover(ctx, c, dc, all[0]); err != nil {
		t.Fatal(err)
	}
	if left, _ := Leftovers(ctx, c, dc, "ns"); len(left) != 0 {
		t.Errorf("left after delete: %+v", left)
	}
	if _, err := dc.Resource(HTTPRoutes).Namespace("ns").Get(ctx, "web", metav1.GetOptions{}); err != nil {
		t.Errorf("the user's HTTPRoute must stay: %v", err)
	}

	// A cluster without the Gateway API answers 404 for the kind: nothing to clean.
	dc.PrependReactor("list", "httproutes", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: 404, Reason: metav1.StatusReasonNotFound, Message: "the server could not find the requested resource"}}
	})
	if left, err := Leftovers(ctx, c, dc, "ns"); err != nil || len(left) != 0 {
		t.Errorf("without the CRD: %v, %v", left, err)
	}
}

// A workload shared by a run's orders names its certificates in an
// annotation, and Leftovers reads them from it.
func TestLeftoversOfASharedWorkload(t *testing.T) {
	ctx := context.Background()
	cfg := Config{Namespace: "ns", Name: "acme-solver-run-ab12-cd34ef", Certificates: []string{"a", "b"}, Run: "ab12"}
	pod := cfg.pod([]acme.Challenge{{Token: "t", KeyAuthorization: "t.k"}, {Token: "u", KeyAuthorization: "u.k"}}, time.Now().Format(time.RFC3339))
	if pod.Labels[LabelRun] != "ab12" || pod.Labels[LabelCertificate] != "" || pod.Annotations[AnnotationCertificates] != "a,b" {
		t.Fatalf("shared pod labels %v annotations %v", pod.Labels, pod.Annotations)
	}
	all, err := Leftovers(ctx, fake.NewClientset(pod, cfg.service(nil, "")), nil, "ns")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 {
		t.Fatalf("leftovers %+v", all)
	}
	for _, l := range all {
		if !reflect.DeepEqual(l.Certificates, []string{"a", "b"}) || l.Certificate != "a,b" {
			t.Errorf("%s: certificates %v (%q)", l.Kind, l.Certificates, l.Certificate)
		}
	}
}
