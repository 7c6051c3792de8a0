package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-acme/kubectl-acme/test/simnode"
)

// GatewayAPIVersion is the sigs.k8s.io/gateway-api release whose
// standard-channel CRDs the environment installs; go.mod requires the same.
const GatewayAPIVersion = "v1.6.3"

// gatewayCRDs are the standard-channel CRDs HTTP routing needs. The other
// standard kinds (GRPCRoute, TLSRoute, TCPRoute, UDPRoute, ListenerSet,
// BackendTLSPolicy) are left out: simnode routes none of them, and each CRD
// costs the apiserver time to publish. So is the channel's
// ValidatingAdmissionPolicy (vap_safeupgrades): it only guards later
// upgrades of these CRDs, which a throwaway cluster never has.
var gatewayCRDs = []string{"gatewayclasses", "gateways", "httproutes", "referencegrants"}

// The Gateway every environment has: of the class simnode's controller owns,
// one HTTP listener that admits routes from every namespace.
const (
	defaultGatewayClass     = "simnode"
	defaultGatewayNamespace = "gateway"
	defaultGatewayName      = "simnode"
)

var (
	crdResource     = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	gatewayClassRes = gatewayv1.SchemeGroupVersion.WithResource("gatewayclasses")
	gatewayRes      = gatewayv1.SchemeGroupVersion.WithResource("gateways")
)

// gatewayAPIDir finds the gateway-api module source in the module cache,
// downloading it through the module proxy if needed.
func gatewayAPIDir(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "mod", "download", "-json", "sigs.k8s.io/gateway-api@"+GatewayAPIVersion).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, bytes.TrimSpace(ee.Stderr))
		}
		return "", fmt.Errorf("testenv: find the Gateway API CRDs (go mod download sigs.k8s.io/gateway-api@%s): %w", GatewayAPIVersion, err)
	}
	var mod struct{ Dir, Error string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		return "", fmt.Errorf("testenv: go mod download sigs.k8s.io/gateway-api@%s gave no directory: %s", GatewayAPIVersion, out)
	}
	return mod.Dir, nil
}

func (e *Env) dynamicClient() (dynamic.Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", e.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("testenv: load kubeconfig: %w", err)
	}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	return dc, nil
}

// installGatewayAPI creates the Gateway API CRDs, waits until they are
// served, and creates simnode's GatewayClass and the Gateway.
func (e *Env) installGatewayAPI(ctx context.Context) error {
	begin := time.Now()
	dir, err := gatewayAPIDir(ctx)
	if err != nil {
		return err
	}
	dc, err := e.dynamicClient()
	if err != nil {
		return err
	}
	for _, name := range gatewayCRDs {
		file := filepath.Join(dir, "config", "crd", "standard", "gateway.networking.k8s.io_"+name+".yaml")
		data, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("testenv: read Gateway API CRD: %w", err)
		}
		crd := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(data, &crd.Object); err != nil {
			return fmt.Errorf("testenv: parse %s: %w", file, err)
		}
		// Created, not applied: the HTTPRoute CRD is too large for
		// kubectl's last-applied annotation.
		if _, err := dc.Resource(crdResource).Create(ctx, crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("testenv: create CRD %s.gateway.networking.k8s.io: %w", name, err)
		}
	}
	client, err := e.Client()
	if err != nil {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.GatewayNamespace}}
	if _, err := client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("testenv: create namespace %s: %w", e.GatewayNamespace, err)
	}
	class := &gatewayv1.GatewayClass{
		TypeMeta:   metav1.TypeMeta{APIVersion: gatewayv1.GroupVersion.String(), Kind: "GatewayClass"},
		ObjectMeta: metav1.ObjectMeta{Name: e.GatewayClass},
		Spec:       gatewayv1.GatewayClassSpec{ControllerName: simnode.GatewayControllerName},
	}
	from := gatewayv1.NamespacesFromAll
	gw := &gatewayv1.Gateway{
		TypeMeta:   metav1.TypeMeta{APIVersion: gatewayv1.GroupVersion.String(), Kind: "Gateway"},
		ObjectMeta: metav1.ObjectMeta{Name: e.GatewayName, Namespace: e.GatewayNamespace},
		Spec: gatewayv1.GatewaySpec{
			GatewayClassName: gatewayv1.ObjectName(e.GatewayClass),
			Listeners: []gatewayv1.Listener{{
				Name:          "http",
				Protocol:      gatewayv1.HTTPProtocolType,
				Port:          80,
				AllowedRoutes: &gatewayv1.AllowedRoutes{Namespaces: &gatewayv1.RouteNamespaces{From: &from}},
			}},
		},
	}
	// The first creates can meet a 404 until the new CRDs are served.
	if err := createUntilServed(ctx, dc.Resource(gatewayClassRes), class); err != nil {
		return fmt.Errorf("testenv: create GatewayClass %s: %w", e.GatewayClass, err)
	}
	if err := createUntilServed(ctx, dc.Resource(gatewayRes).Namespace(e.GatewayNamespace), gw); err != nil {
		return fmt.Errorf("testenv: create Gateway %s/%s: %w", e.GatewayNamespace, e.GatewayName, err)
	}
	e.logf("Gateway API %s CRDs and Gateway %s/%s ready in %s", GatewayAPIVersion, e.GatewayNamespace, e.GatewayName, time.Since(begin).Round(10*time.Millisecond))
	return nil
}

func createUntilServed(ctx context.Context, rc dynamic.ResourceInterface, obj runtime.Object) error {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return err
	}
	u := &unstructured.Unstructured{Object: m}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		_, err := rc.Create(ctx, u, metav1.CreateOptions{})
		if err == nil || apierrors.IsAlreadyExists(err) {
			return nil
		}
		if !apierrors.IsNotFound(err) && !apierrors.IsMethodNotSupported(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %w)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
