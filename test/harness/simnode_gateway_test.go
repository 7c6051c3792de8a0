package harness

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// The HTTPRoute side of simnode's fidelity: the hand-written solver of
// simnode_test.go, routed by an HTTPRoute attached to the environment's
// Gateway instead of an Ingress; each single mistake must stop it.

// routeParentCondition returns the status of one condition simnode wrote on
// the route's first parent, once it is for the route's current generation.
// waitRouteCondition polls the route's condition typ, as simnode wrote it,
// until done accepts it or ctx ends; ok says done accepted it.
func waitRouteCondition(ctx context.Context, t *testing.T, ns, name, typ string, done func(metav1.Condition) bool) (c metav1.Condition, ok bool) {
	for {
		c, found := routeParentCondition(ctx, t, ns, name, typ)
		if found && done(c) {
			return c, true
		}
		select {
		case <-ctx.Done():
			return c, false
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func routeParentCondition(ctx context.Context, t *testing.T, ns, name, typ string) (metav1.Condition, bool) {
	u, err := dynamicClient(t).Resource(httpRoutesGVR).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return metav1.Condition{}, false
	}
	var hr gatewayv1.HTTPRoute
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &hr); err != nil {
		t.Fatal(err)
	}
	for _, p := range hr.Status.Parents {
		if p.ControllerName != "simnode.kubectl-acme.test/gateway-controller" {
			continue
		}
		for _, c := range p.Conditions {
			if c.Type == typ && c.ObservedGeneration == hr.Generation {
				return c, true
			}
		}
	}
	return metav1.Condition{}, false
}

// simRouteBarrier creates a correct HTTPRoute to a Service that does not
// exist and waits until it answers 500: simnode handles HTTPRoute events in
// order, so it has then seen the test's route too.
func simRouteBarrier(ctx context.Context, t *testing.T, ns string) {
	t.Helper()
	host := "barrier." + ns + ".example"
	hr := simRoute(host, "barrier", "/barrier")
	hr.Name = "barrier"
	createRoute(ctx, t, ns, hr)
	simWaitCode(ctx, t, host, "/barrier", http.StatusInternalServerError, "the barrier HTTPRoute")
}

func TestSimnodeGatewayFidelity(t *testing.T) {
	requireGateway(t)
	tests := []struct {
		name     string
		mutate   func(o *simObjects, hr *gatewayv1.HTTPRoute)
		podReady bool   // wait for the pod before judging: the failure is downstream of it
		wantCode int    // 200: still served
		accepted string // the route's Accepted condition reason, if checked
	}{
		{name: "correct HTTPRoute is served", wantCode: http.StatusOK, accepted: "Accepted"},
		{
			name:     "PathPrefix of the challenge directory is served",
			wantCode: http.StatusOK,
			mutate: func(_ *simObjects, hr *gatewayv1.HTTPRoute) {
				hr.Spec.Rules[0].Matches[0].Path = &gatewayv1.HTTPPathMatch{Type: ptr.To(gatewayv1.PathMatchPathPrefix), Value: ptr.To("/.well-known/acme-challenge")}
			},
		},
		{
			name: "parentRef names another Gateway",
			mutate: func(_ *simObjects, hr *gatewayv1.HTTPRoute) {
				hr.Spec.ParentRefs[0].Name = "other"
			},
			wantCode: http.StatusNotFound,
		},
		{
			// Without a namespace the parentRef means a Gateway in the route's own namespace.
			name: "parentRef without the Gateway's namespace",
			mutate: func(_ *simObjects, hr *gatewayv1.HTTPRoute) {
				hr.Spec.ParentRefs[0].Namespace = nil
			},
			wantCode: http.StatusNotFound,
		},
		{
			name: "parentRef sectionName names no listener",
			mutate: func(_ *simObjects, hr *gatewayv1.HTTPRoute) {
				hr.Spec.ParentRefs[0].SectionName = ptr.To(gatewayv1.SectionName("https"))
			},
			wantCode: http.StatusNotFound, accepted: "NoMatchingParent",
		},
		{
			name: "parentRef port is not the listener's",
			mutate: func(_ *simObjects, hr *gatewayv1.HTTPRoute) {
				hr.Spec.ParentRefs[0].Port = ptr.To(gatewayv1.PortNumber(8080))
			},
			wantCode: http.StatusNotFound, accepted: "NoMatchingParent",
		},
		{
			name: "Exact path differs from the request path",
			mutate: func(_ *simObjects, hr *gatewayv1.HTTPRoute) {
				hr.Spec.Rules[0].Matches[0].Path.Value = ptr.To(simPath + "/")
			},
			wantCode: http.StatusNotFound,
		},
		{
			name: "RegularExpression path is not supported",
			mutate: func(_ *simObjects, hr *gatewayv1.HTTPRoute) {
				hr.Spec.Rules[0].Matches[0].Path = &gatewayv1.HTTPPathMatch{Type: ptr.To(gatewayv1.PathMatchRegularExpression), Value: ptr.To("/.well-known/acme-challenge/.*")}
			},
			wantCode: http.StatusNotFound, accepted: "UnsupportedValue",
		},
		{
			name: "route hostname differs",
			mutate: func(o *simObjects, hr *gatewayv1.HTTPRoute) {
				hr.Spec.Hostnames = []gatewayv1.Hostname{gatewayv1.Hostname("www." + o.host)}
			},
			wantCode: http.StatusNotFound,
		},
		{
			name: "backendRef port is not a port of the Service",
			mutate: func(_ *simObjects, hr *gatewayv1.HTTPRoute) {
				hr.Spec.Rules[0].BackendRefs[0].Port = ptr.To(gatewayv1.PortNumber(8080))
			},
			podReady: true, wantCode: http.StatusServiceUnavailable,
		},
		{
			name: "backendRef to a Service in another namespace",
			mutate: func(_ *simObjects, hr *gatewayv1.HTTPRoute) {
				hr.Spec.Rules[0].BackendRefs[0].Namespace = ptr.To(gatewayv1.Namespace("default"))
			},
			podReady: true, wantCode: http.StatusInternalServerError,
		},
		{
			name:     "service selector matches no pod",
			mutate:   func(o *simObjects, _ *gatewayv1.HTTPRoute) { o.svc.Spec.Selector = map[string]string{"app": "solvr"} },
			podReady: true, wantCode: http.StatusServiceUnavailable,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ns := newNamespace(t)
			o := newSimObjects(ns)
			hr := simRoute(o.host, o.svc.Name, simPath)
			if tt.mutate != nil {
				tt.mutate(o, hr)
			}
			ctx, cancel := context.WithTimeout(t.Context(), simTimeout)
			defer cancel()
			o.ing = nil
			o.create(ctx, t, ns)
			createRoute(ctx, t, ns, hr)

			if tt.accepted != "" {
				c, ok := waitRouteCondition(ctx, t, ns, hr.Name, "Accepted", func(metav1.Condition) bool { return true })
				if !ok {
					t.Fatalf("simnode wrote no Accepted condition on the route")
				}
				if c.Reason != tt.accepted {
					t.Fatalf("route condition Accepted = %s %s (%s), want reason %s", c.Status, c.Reason, c.Message, tt.accepted)
				}
			}
			if tt.wantCode == http.StatusOK {
				waitSimServed(ctx, t, o.host, simPath, o.body)
				simConcurrentGets(t, o.host, simPath, o.body, 3)
				// simnode writes route status after it routes, as real
				// controllers do: wait for it.
				isTrue := func(c metav1.Condition) bool { return c.Status == metav1.ConditionTrue }
				if c, ok := waitRouteCondition(ctx, t, ns, hr.Name, "ResolvedRefs", isTrue); !ok {
					t.Errorf("served route's ResolvedRefs = %+v, want True", c)
				}
				return
			}
			if tt.podReady {
				simWaitPod(ctx, t, ns, o.pod.Name, "Ready", simPodReady)
			}
			simRouteBarrier(ctx, t, ns)
			simAssertNotServed(t, o.host, simPath, o.body, tt.wantCode)
		})
	}
}

// TestSimnodeGatewayStatus: simnode reports its GatewayClass accepted and
// the environment's Gateway programmed at the ingress address, as a Gateway
// API implementation does.
func TestSimnodeGatewayStatus(t *testing.T) {
	requireGateway(t)
	t.Parallel()
	ctx := t.Context()
	dc := dynamicClient(t)
	var gw gatewayv1.Gateway
	waitFor(t, simTimeout, "the Gateway to be programmed", func() bool {
		u, err := dc.Resource(gatewayv1.SchemeGroupVersion.WithResource("gateways")).Namespace(env.GatewayNamespace).Get(ctx, env.GatewayName, metav1.GetOptions{})
		if err != nil || runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &gw) != nil {
			return false
		}
		return metaConditionTrue(gw.Status.Conditions, "Programmed", gw.Generation)
	})
	host, _, _ := strings.Cut(env.IngressHTTP, ":")
	if len(gw.Status.Addresses) != 1 || gw.Status.Addresses[0].Value != host {
		t.Errorf("Gateway addresses %+v, want %s", gw.Status.Addresses, host)
	}
	if !metaConditionTrue(gw.Status.Conditions, "Accepted", gw.Generation) || len(gw.Status.Listeners) != 1 ||
		!metaConditionTrue(gw.Status.Listeners[0].Conditions, "Programmed", gw.Generation) || gw.Status.Listeners[0].SupportedKinds[0].Kind != "HTTPRoute" {
		t.Errorf("Gateway status %+v", gw.Status)
	}
	// The class's status is written on its own, in no set order with
	// the Gateway's.
	waitFor(t, simTimeout, "the GatewayClass to be accepted", func() bool {
		u, err := dc.Resource(gatewayv1.SchemeGroupVersion.WithResource("gatewayclasses")).Get(ctx, env.GatewayClass, metav1.GetOptions{})
		var class gatewayv1.GatewayClass
		if err != nil || runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &class) != nil {
			return false
		}
		return metaConditionTrue(class.Status.Conditions, "Accepted", class.Generation)
	})
}

func metaConditionTrue(cs []metav1.Condition, typ string, gen int64) bool {
	for _, c := range cs {
		if c.Type == typ {
			return c.Status == metav1.ConditionTrue && c.ObservedGeneration == gen
		}
	}
	return false
}
