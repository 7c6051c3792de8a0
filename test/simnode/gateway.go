package simnode

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

var (
	gatewayClassesGVR = gatewayv1.SchemeGroupVersion.WithResource("gatewayclasses")
	gatewaysGVR       = gatewayv1.SchemeGroupVersion.WithResource("gateways")
	httpRoutesGVR     = gatewayv1.SchemeGroupVersion.WithResource("httproutes")
)

// gatewayController serves the HTTPRoutes attached to the Gateways of one
// GatewayClass, on the ingress controller's listener, and writes the
// GatewayClass, Gateway and HTTPRoute status a Gateway API implementation
// writes. Routes are matched before Ingresses; a request no HTTPRoute
// matches goes on to the Ingresses, as if both controllers shared the one
// address Pebble validates against.
type gatewayController struct {
	dc      dynamic.Interface
	class   string
	lbIP    string
	classes cache.SharedIndexInformer
	gws     cache.SharedIndexInformer
	routes  cache.SharedIndexInformer
	svcs    corelisters.ServiceLister
	nss     corelisters.NamespaceLister
	log     *slog.Logger
	status  workqueue.TypedRateLimitingInterface[string]

	state    atomic.Pointer[gatewayState]
	mu       sync.Mutex // serializes rebuild
	lastDesc []string
}

func newGatewayController(dc dynamic.Interface, factory dynamicinformer.DynamicSharedInformerFactory, class, lbIP string, svcs corelisters.ServiceLister, nss corelisters.NamespaceLister, log *slog.Logger) *gatewayController {
	gc := &gatewayController{
		dc:      dc,
		class:   class,
		lbIP:    lbIP,
		classes: factory.ForResource(gatewayClassesGVR).Informer(),
		gws:     factory.ForResource(gatewaysGVR).Informer(),
		routes:  factory.ForResource(httpRoutesGVR).Informer(),
		svcs:    svcs,
		nss:     nss,
		log:     log,
		status:  workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]()),
	}
	gc.state.Store(&gatewayState{table: &gwTable{}})
	return gc
}

// handlers rebuilds on any change of what routing depends on.
func (gc *gatewayController) handlers() cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { gc.rebuild() },
		UpdateFunc: func(any, any) { gc.rebuild() },
		DeleteFunc: func(any) { gc.rebuild() },
	}
}

func (gc *gatewayController) register(svcInf, nsInf cache.SharedIndexInformer) error {
	for _, inf := range []cache.SharedIndexInformer{gc.classes, gc.gws, gc.routes, svcInf, nsInf} {
		if _, err := inf.AddEventHandler(gc.handlers()); err != nil {
			return fmt.Errorf("watch for the gateway controller: %w", err)
		}
	}
	return nil
}

func listTyped[T any](inf cache.SharedIndexInformer) []*T {
	var out []*T
	for _, obj := range inf.GetStore().List() {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			continue
		}
		t := new(T)
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, t); err != nil {
			continue
		}
		out = append(out, t)
	}
	return out
}

func (gc *gatewayController) rebuild() {
	// Handlers of different informers call this concurrently: one at a
	// time, or a rebuild from an older cache could store its state last.
	gc.mu.Lock()
	defer gc.mu.Unlock()
	in := gatewayInputs{
		class:           gc.class,
		classes:         listTyped[gatewayv1.GatewayClass](gc.classes),
		gateways:        listTyped[gatewayv1.Gateway](gc.gws),
		routes:          listTyped[gatewayv1.HTTPRoute](gc.routes),
		services:        map[string]bool{},
		namespaceLabels: map[string]labels.Set{},
	}
	svcs, _ := gc.svcs.List(labels.Everything())
	for _, s := range svcs {
		in.services[key(s.Namespace, s.Name)] = true
	}
	nss, _ := gc.nss.List(labels.Everything())
	for _, ns := range nss {
		in.namespaceLabels[ns.Name] = ns.Labels
	}
	st := computeGateway(in)
	gc.state.Store(st)

	desc := st.table.describe()
	added, removed := diffSorted(gc.lastDesc, desc)
	gc.lastDesc = desc
	for _, r := range removed {
		gc.log.Info("gateway route removed", "route", r)
	}
	for _, r := range added {
		gc.log.Info("gateway route added", "route", r)
	}
	// Status follows the table: once a status says a route is accepted,
	// it is served.
	gc.status.Add("gatewayclass/" + gc.class)
	for _, gw := range in.gateways {
		gc.status.Add("gateway/" + key(gw.Namespace, gw.Name))
	}
	for _, hr := range in.routes {
		gc.status.Add("httproute/" + key(hr.Namespace, hr.Name))
	}
}

// serve answers a request if an attached HTTPRoute matches it; false
// leaves it to the Ingresses.
func (gc *gatewayController) serve(ic *ingressController, w http.ResponseWriter, r *http.Request) bool {
	rt, ok := gc.state.Load().table.match(r.Host, r.URL.Path)
	if !ok {
		return false
	}
	if rt.invalid != "" {
		ic.logOnce("gateway: invalid backend", "host", r.Host, "path", r.URL.Path, "route", rt.String())
		http.Error(w, "500 Internal Server Error (simnode gateway: "+rt.invalid+")", http.StatusInternalServerError)
		return true
	}
	b, ok := pickBackend(rt.backends)
	if !ok {
		http.Error(w, "500 Internal Server Error (simnode gateway: no backend with weight)", http.StatusInternalServerError)
		return true
	}
	ic.proxyTo(w, r, rt.asIngressRoute(b))
	return true
}

func pickBackend(bs []gwBackend) (gwBackend, bool) {
	total := int32(0)
	for _, b := range bs {
		total += b.weight
	}
	if total <= 0 {
		return gwBackend{}, false
	}
	n := rand.Int32N(total)
	for _, b := range bs {
		if n < b.weight {
			return b, true
		}
		n -= b.weight
	}
	return gwBackend{}, false
}

func (gc *gatewayController) runStatus(ctx context.Context) {
	runQueue(ctx, gc.status, gc.syncStatus, func(key string, err error) {
		// A conflict only means the cache was behind: retried anyway.
		if !apierrors.IsConflict(err) {
			gc.log.Error("gateway status", "object", key, "err", err)
		}
	})
}

func (gc *gatewayController) syncStatus(ctx context.Context, k string) error {
	st := gc.state.Load()
	kind, rest, _ := strings.Cut(k, "/")
	switch kind {
	case "gatewayclass":
		obj, ok := getTyped[gatewayv1.GatewayClass](gc.classes, rest)
		if !ok || obj.Spec.ControllerName != GatewayControllerName {
			return nil
		}
		want := obj.Status.DeepCopy()
		want.Conditions = mergeConditions(obj.Status.Conditions, condition(string(gatewayv1.GatewayClassConditionStatusAccepted), true, string(gatewayv1.GatewayClassReasonAccepted), "served by simnode", obj.Generation))
		if conditionsEqual(obj.Status.Conditions, want.Conditions) {
			return nil
		}
		obj.Status = *want
		return gc.writeStatus(ctx, gatewayClassesGVR, obj, "", obj.Name)
	case "gateway":
		obj, ok := getTyped[gatewayv1.Gateway](gc.gws, rest)
		if !ok {
			return nil
		}
		if _, ours := st.ours[rest]; !ours {
			return nil
		}
		want := gc.gatewayStatus(st, obj)
		if gatewayStatusEqual(&obj.Status, want) {
			return nil
		}
		obj.Status = *want
		return gc.writeStatus(ctx, gatewaysGVR, obj, obj.Namespace, obj.Name)
	case "httproute":
		obj, ok := getTyped[gatewayv1.HTTPRoute](gc.routes, rest)
		if !ok {
			return nil
		}
		// Keep other controllers' entries; replace ours.
		var parents []gatewayv1.RouteParentStatus
		var old []gatewayv1.RouteParentStatus
		for _, p := range obj.Status.Parents {
			if p.ControllerName == GatewayControllerName {
				old = append(old, p)
				continue
			}
			parents = append(parents, p)
		}
		mine := st.parents[rest]
		if parentsEqual(old, mine) {
			return nil
		}
		for i := range mine {
			for _, o := range old {
				if parentRefEqual(o.ParentRef, mine[i].ParentRef) {
					mine[i].Conditions = keepTransitionTimes(o.Conditions, mine[i].Conditions)
				}
			}
		}
		obj.Status.Parents = append(parents, stampConditions(mine)...)
		return gc.writeStatus(ctx, httpRoutesGVR, obj, obj.Namespace, obj.Name)
	}
	return nil
}

func getTyped[T any](inf cache.SharedIndexInformer, k string) (*T, bool) {
	obj, exists, err := inf.GetStore().GetByKey(k)
	if err != nil || !exists {
		return nil, false
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil, false
	}
	t := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.DeepCopy().Object, t); err != nil {
		return nil, false
	}
	return t, true
}

func (gc *gatewayController) gatewayStatus(st *gatewayState, gw *gatewayv1.Gateway) *gatewayv1.GatewayStatus {
	ip := gatewayv1.IPAddressType
	gen := gw.Generation
	s := &gatewayv1.GatewayStatus{
		Addresses: []gatewayv1.GatewayStatusAddress{{Type: &ip, Value: gc.lbIP}},
	}
	s.Conditions = []metav1.Condition{
		condition(string(gatewayv1.GatewayConditionAccepted), true, string(gatewayv1.GatewayReasonAccepted), "served by simnode", gen),
		condition(string(gatewayv1.GatewayConditionProgrammed), true, string(gatewayv1.GatewayReasonProgrammed), "routes served on the ingress address", gen),
	}
	group := gatewayv1.Group(gatewayv1.GroupName)
	for _, l := range gw.Spec.Listeners {
		ls := gatewayv1.ListenerStatus{Name: l.Name, AttachedRoutes: st.attached[key(gw.Namespace, gw.Name)][l.Name]}
		if l.Protocol == gatewayv1.HTTPProtocolType {
			ls.SupportedKinds = []gatewayv1.RouteGroupKind{{Group: &group, Kind: "HTTPRoute"}}
			ls.Conditions = []metav1.Condition{
				condition(string(gatewayv1.ListenerConditionAccepted), true, string(gatewayv1.ListenerReasonAccepted), "", gen),
				condition(string(gatewayv1.ListenerConditionProgrammed), true, string(gatewayv1.ListenerReasonProgrammed), "", gen),
				condition(string(gatewayv1.ListenerConditionResolvedRefs), true, string(gatewayv1.ListenerReasonResolvedRefs), "", gen),
			}
		} else {
			ls.SupportedKinds = []gatewayv1.RouteGroupKind{}
			ls.Conditions = []metav1.Condition{
				condition(string(gatewayv1.ListenerConditionAccepted), false, string(gatewayv1.ListenerReasonUnsupportedProtocol), "simnode serves HTTP listeners only", gen),
				condition(string(gatewayv1.ListenerConditionProgrammed), false, string(gatewayv1.ListenerReasonInvalid), "", gen),
				condition(string(gatewayv1.ListenerConditionResolvedRefs), true, string(gatewayv1.ListenerReasonResolvedRefs), "", gen),
			}
		}
		s.Listeners = append(s.Listeners, ls)
	}
	for i := range s.Listeners {
		for _, o := range gw.Status.Listeners {
			if o.Name == s.Listeners[i].Name {
				s.Listeners[i].Conditions = keepTransitionTimes(o.Conditions, s.Listeners[i].Conditions)
			}
		}
		s.Listeners[i].Conditions = stampTimes(s.Listeners[i].Conditions)
	}
	s.Conditions = stampTimes(keepTransitionTimes(gw.Status.Conditions, s.Conditions))
	return s
}

func (gc *gatewayController) writeStatus(ctx context.Context, gvr schema.GroupVersionResource, obj any, ns, name string) error {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return err
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetAPIVersion(gatewayv1.GroupVersion.String())
	var rc dynamic.ResourceInterface = gc.dc.Resource(gvr)
	if ns != "" {
		rc = gc.dc.Resource(gvr).Namespace(ns)
	}
	if _, err := rc.UpdateStatus(ctx, u, metav1.UpdateOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("update status of %s %s/%s: %w", gvr.Resource, ns, name, err)
	}
	id := name
	if ns != "" {
		id = key(ns, name)
	}
	gc.log.Info("gateway status updated", "resource", gvr.Resource, "object", id)
	return nil
}

func mergeConditions(old []metav1.Condition, c metav1.Condition) []metav1.Condition {
	out := slices.DeleteFunc(slices.Clone(old), func(o metav1.Condition) bool { return o.Type == c.Type })
	return stampTimes(keepTransitionTimes(old, append(out, c)))
}

// keepTransitionTimes carries lastTransitionTime over for conditions whose
// status did not change.
func keepTransitionTimes(old, cur []metav1.Condition) []metav1.Condition {
	for i := range cur {
		for _, o := range old {
			if o.Type == cur[i].Type && o.Status == cur[i].Status {
				cur[i].LastTransitionTime = o.LastTransitionTime
			}
		}
	}
	return cur
}

func stampTimes(cs []metav1.Condition) []metav1.Condition {
	now := metav1.Now()
	for i := range cs {
		if cs[i].LastTransitionTime.IsZero() {
			cs[i].LastTransitionTime = now
		}
	}
	return cs
}

func stampConditions(ps []gatewayv1.RouteParentStatus) []gatewayv1.RouteParentStatus {
	for i := range ps {
		ps[i].Conditions = stampTimes(ps[i].Conditions)
	}
	return ps
}

func conditionsEqual(a, b []metav1.Condition) bool {
	return slices.EqualFunc(a, b, func(x, y metav1.Condition) bool {
		return x.Type == y.Type && x.Status == y.Status && x.Reason == y.Reason && x.Message == y.Message && x.ObservedGeneration == y.ObservedGeneration
	})
}

func parentRefEqual(a, b gatewayv1.ParentReference) bool {
	return a.Name == b.Name && ptrEq(a.Group, b.Group) && ptrEq(a.Kind, b.Kind) && ptrEq(a.Namespace, b.Namespace) && ptrEq(a.SectionName, b.SectionName) && ptrEq(a.Port, b.Port)
}

func ptrEq[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func parentsEqual(a, b []gatewayv1.RouteParentStatus) bool {
	return slices.EqualFunc(a, b, func(x, y gatewayv1.RouteParentStatus) bool {
		return x.ControllerName == y.ControllerName && parentRefEqual(x.ParentRef, y.ParentRef) && conditionsEqual(x.Conditions, y.Conditions)
	})
}

func gatewayStatusEqual(a, b *gatewayv1.GatewayStatus) bool {
	if !slices.EqualFunc(a.Addresses, b.Addresses, func(x, y gatewayv1.GatewayStatusAddress) bool {
		return x.Value == y.Value && ptrEq(x.Type, y.Type)
	}) || !conditionsEqual(a.Conditions, b.Conditions) {
		return false
	}
	return slices.EqualFunc(a.Listeners, b.Listeners, func(x, y gatewayv1.ListenerStatus) bool {
		return x.Name == y.Name && x.AttachedRoutes == y.AttachedRoutes && len(x.SupportedKinds) == len(y.SupportedKinds) && conditionsEqual(x.Conditions, y.Conditions)
	})
}
