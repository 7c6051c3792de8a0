package suite

import (
	"context"
	"crypto/x509"
	"os"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	testenv "github.com/kubectl-acme/kubectl-acme/test/env"
)

// HTTPRoutesGVR is Gateway API's HTTPRoute resource, read and written
// through the dynamic client.
var HTTPRoutesGVR = gatewayv1.SchemeGroupVersion.WithResource("httproutes")

// DynamicClient is a dynamic client for kubeconfig.
func DynamicClient(t *testing.T, kubeconfig string) dynamic.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return dc
}

// RequireGateway skips the test when env has no Gateway.
func RequireGateway(t *testing.T, env *testenv.Env) {
	t.Helper()
	if env.GatewayName == "" {
		t.Skip("the environment has no Gateway (started without Options.GatewayAPI)")
	}
}

// SimRoute is an HTTPRoute attached to env's Gateway that sends host's
// exact path to port 80 of Service backend.
func SimRoute(env *testenv.Env, host, backend string, path string) *gatewayv1.HTTPRoute {
	exact := gatewayv1.PathMatchExact
	return &gatewayv1.HTTPRoute{
		TypeMeta:   metav1.TypeMeta{APIVersion: gatewayv1.GroupVersion.String(), Kind: "HTTPRoute"},
		ObjectMeta: metav1.ObjectMeta{Name: "solver"},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{
				Name:      gatewayv1.ObjectName(env.GatewayName),
				Namespace: ptr.To(gatewayv1.Namespace(env.GatewayNamespace)),
			}}},
			Hostnames: []gatewayv1.Hostname{gatewayv1.Hostname(host)},
			Rules: []gatewayv1.HTTPRouteRule{{
				Matches: []gatewayv1.HTTPRouteMatch{{Path: &gatewayv1.HTTPPathMatch{Type: &exact, Value: ptr.To(path)}}},
				BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{
					Name: gatewayv1.ObjectName(backend), Port: ptr.To(gatewayv1.PortNumber(80)),
				}}}},
			}},
		},
	}
}

// CreateRoute creates hr in namespace ns.
func CreateRoute(ctx context.Context, t *testing.T, kubeconfig, ns string, hr *gatewayv1.HTTPRoute) {
	t.Helper()
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(hr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DynamicClient(t, kubeconfig).Resource(HTTPRoutesGVR).Namespace(ns).Create(ctx, &unstructured.Unstructured{Object: m}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create httproute %s/%s: %v", ns, hr.Name, err)
	}
}

// CertPool reads the PEM certificates of file into a pool.
func CertPool(t *testing.T, file string) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificates in %s", file)
	}
	return pool
}

// CreateNetworkPolicy creates the NetworkPolicy ns/name with spec.
func CreateNetworkPolicy(t *testing.T, kube kubernetes.Interface, ns, name string, spec networkingv1.NetworkPolicySpec) {
	t.Helper()
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
	if _, err := kube.NetworkingV1().NetworkPolicies(ns).Create(t.Context(), np, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// DefaultDeny is the policy of the Kubernetes docs' "Default deny all
// ingress traffic" example.
var DefaultDeny = networkingv1.NetworkPolicySpec{
	PodSelector: metav1.LabelSelector{},
	PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
}

// GKEClass is the GKE-like class simnode serves (simnode.GKEClasses),
// chosen by the legacy annotation as on GKE.
const GKEClass = "gce"
