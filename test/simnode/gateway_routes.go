package simnode

import (
	"fmt"
	"sort"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// GatewayControllerName is the controllerName of the GatewayClasses whose
// Gateways simnode serves.
const GatewayControllerName gatewayv1.GatewayController = "simnode.kubectl-acme.test/gateway-controller"

// gatewayInputs is what the gateway side of the controller reads.
type gatewayInputs struct {
	class    string // the GatewayClass served, if its controllerName is ours
	classes  []*gatewayv1.GatewayClass
	gateways []*gatewayv1.Gateway
	routes   []*gatewayv1.HTTPRoute
	// services are the Services that exist, "namespace/name", for ResolvedRefs.
	services map[string]bool
	// namespaceLabels serve listeners' allowedRoutes.namespaces.selector.
	namespaceLabels map[string]labels.Set
}

// gatewayState is the outcome: the routes to serve, and the status each
// object should carry.
type gatewayState struct {
	table *gwTable
	// classOK says whether our GatewayClass exists with our controllerName.
	classOK bool
	// ours are the Gateways of our class, "namespace/name".
	ours map[string]*gatewayv1.Gateway
	// attached counts the routes attached to each listener of our Gateways.
	attached map[string]map[gatewayv1.SectionName]int32
	// parents is the status.parents entries we own, per HTTPRoute.
	parents map[string][]gatewayv1.RouteParentStatus
}

// gwRoute is one match of one rule of an attached HTTPRoute.
type gwRoute struct {
	hostnames []string // effective hostnames; empty matches any host
	pathType  gatewayv1.PathMatchType
	path      string
	backends  []gwBackend
	// invalid is why the rule's backends cannot be used: requests that
	// match it get a 500, as the Gateway API requires.
	invalid   string
	namespace string
	name      string
	created   metav1.Time
	rule      int
}

type gwBackend struct {
	service string
	port    int32
	weight  int32
}

func (r gwRoute) String() string {
	hosts := "*"
	if len(r.hostnames) > 0 {
		hosts = strings.Join(r.hostnames, ",")
	}
	var to []string
	for _, b := range r.backends {
		to = append(to, fmt.Sprintf("%s/%s:%d", r.namespace, b.service, b.port))
	}
	if r.invalid != "" {
		to = []string{"500 (" + r.invalid + ")"}
	}
	return fmt.Sprintf("%s %s %s -> %s [httproute %s/%s rule %d]", hosts, r.pathType, r.path, strings.Join(to, ","), r.namespace, r.name, r.rule)
}

// asIngressRoute lets a Service backend reuse the Ingress side's endpoint
// resolution.
func (r gwRoute) asIngressRoute(b gwBackend) route {
	return route{
		namespace: r.namespace,
		ingress:   "httproute:" + r.name,
		path:      r.path,
		backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
			Name: b.service, Port: networkingv1.ServiceBackendPort{Number: b.port},
		}},
	}
}

type gwTable struct{ routes []gwRoute }

func key(ns, name string) string { return ns + "/" + name }

func condition(typ string, ok bool, reason, msg string, gen int64) metav1.Condition {
	status := metav1.ConditionTrue
	if !ok {
		status = metav1.ConditionFalse
	}
	return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: gen}
}

// computeGateway attaches routes to our Gateways' listeners the way the
// Gateway API specifies, and flattens the attached routes' rules.
func computeGateway(in gatewayInputs) *gatewayState {
	st := &gatewayState{
		table:    &gwTable{},
		ours:     map[string]*gatewayv1.Gateway{},
		attached: map[string]map[gatewayv1.SectionName]int32{},
		parents:  map[string][]gatewayv1.RouteParentStatus{},
	}
	for _, c := range in.classes {
		if c.Name == in.class && c.Spec.ControllerName == GatewayControllerName && c.DeletionTimestamp == nil {
			st.classOK = true
		}
	}
	if !st.classOK {
		return st
	}
	for _, gw := range in.gateways {
		if string(gw.Spec.GatewayClassName) == in.class && gw.DeletionTimestamp == nil {
			k := key(gw.Namespace, gw.Name)
			st.ours[k] = gw
			st.attached[k] = map[gatewayv1.SectionName]int32{}
			for _, l := range gw.Spec.Listeners {
				st.attached[k][l.Name] = 0
			}
		}
	}
	routes := append([]*gatewayv1.HTTPRoute(nil), in.routes...)
	// Older routes first, then by name: the tie-breaks of the specification.
	sort.Slice(routes, func(i, j int) bool {
		a, b := routes[i], routes[j]
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		return key(a.Namespace, a.Name) < key(b.Namespace, b.Name)
	})
	for _, hr := range routes {
		if hr.DeletionTimestamp != nil {
			continue
		}
		st.attachRoute(in, hr)
	}
	return st
}

func (st *gatewayState) attachRoute(in gatewayInputs, hr *gatewayv1.HTTPRoute) {
	unsupported := unsupportedMatch(hr)
	resolved, refReason, refMsg := resolveRefs(in, hr)
	var hostSets [][]string
	for _, pr := range hr.Spec.ParentRefs {
		if pr.Group != nil && *pr.Group != gatewayv1.GroupName || pr.Kind != nil && *pr.Kind != "Gateway" {
			continue
		}
		ns := hr.Namespace
		if pr.Namespace != nil {
			ns = string(*pr.Namespace)
		}
		gk := key(ns, string(pr.Name))
		gw, ok := st.ours[gk]
		if !ok {
			continue // another controller's, or no Gateway at all: no status from us
		}
		accepted, reason, msg := false, string(gatewayv1.RouteReasonUnsupportedValue), unsupported
		if unsupported == "" {
			var hosts [][]string
			accepted, reason, msg, hosts = st.attachToListeners(in, hr, gw, pr)
			hostSets = append(hostSets, hosts...)
		}
		ps := gatewayv1.RouteParentStatus{
			ParentRef:      pr,
			ControllerName: GatewayControllerName,
			Conditions: []metav1.Condition{
				condition(string(gatewayv1.RouteConditionAccepted), accepted, reason, msg, hr.Generation),
				condition(string(gatewayv1.RouteConditionResolvedRefs), resolved, refReason, refMsg, hr.Generation),
			},
		}
		k := key(hr.Namespace, hr.Name)
		st.parents[k] = append(st.parents[k], ps)
	}
	for _, hosts := range dedupHostSets(hostSets) {
		st.addRules(in, hr, hosts)
	}
}

// attachToListeners tries each listener the parentRef selects. It counts
// the route on the listeners that accept it and returns the hostnames it
// is served for on each.
func (st *gatewayState) attachToListeners(in gatewayInputs, hr *gatewayv1.HTTPRoute, gw *gatewayv1.Gateway, pr gatewayv1.ParentReference) (ok bool, reason, msg string, hosts [][]string) {
	reason, msg = string(gatewayv1.RouteReasonNoMatchingParent), "no listener matches the parentRef's sectionName and port"
	gk := key(gw.Namespace, gw.Name)
	for _, l := range gw.Spec.Listeners {
		if pr.SectionName != nil && *pr.SectionName != l.Name || pr.Port != nil && *pr.Port != l.Port {
			continue
		}
		if l.Protocol != gatewayv1.HTTPProtocolType {
			reason, msg = string(gatewayv1.RouteReasonNotAllowedByListeners), fmt.Sprintf("listener %s is %s; simnode serves HTTP listeners only", l.Name, l.Protocol)
			continue
		}
		if !listenerAdmits(in, gw, l, hr.Namespace) {
			reason, msg = string(gatewayv1.RouteReasonNotAllowedByListeners), fmt.Sprintf("listener %s does not admit HTTPRoutes from namespace %s", l.Name, hr.Namespace)
			continue
		}
		h, ok := intersectHostnames(l.Hostname, hr.Spec.Hostnames)
		if !ok {
			if reason != string(gatewayv1.RouteReasonNotAllowedByListeners) {
				reason, msg = string(gatewayv1.RouteReasonNoMatchingListenerHostname), fmt.Sprintf("no hostname of the route matches listener %s", l.Name)
			}
			continue
		}
		st.attached[gk][l.Name]++
		hosts = append(hosts, h)
	}
	if len(hosts) == 0 {
		return false, reason, msg, nil
	}
	return true, string(gatewayv1.RouteReasonAccepted), "accepted by " + gk, hosts
}

func listenerAdmits(in gatewayInputs, gw *gatewayv1.Gateway, l gatewayv1.Listener, ns string) bool {
	from := gatewayv1.NamespacesFromSame
	var sel *metav1.LabelSelector
	if ar := l.AllowedRoutes; ar != nil {
		if ar.Namespaces != nil && ar.Namespaces.From != nil {
			from = *ar.Namespaces.From
			sel = ar.Namespaces.Selector
		}
		if len(ar.Kinds) > 0 {
			kindOK := false
			for _, k := range ar.Kinds {
				if k.Kind == "HTTPRoute" && (k.Group == nil || *k.Group == gatewayv1.GroupName) {
					kindOK = true
				}
			}
			if !kindOK {
				return false
			}
		}
	}
	switch from {
	case gatewayv1.NamespacesFromAll:
		return true
	case gatewayv1.NamespacesFromSame:
		return ns == gw.Namespace
	case gatewayv1.NamespacesFromSelector:
		if sel == nil {
			return false
		}
		s, err := metav1.LabelSelectorAsSelector(sel)
		return err == nil && s.Matches(in.namespaceLabels[ns])
	}
	return false
}

// intersectHostnames is the hostnames a route is served for on a listener:
// with neither set, any host (nil); with one set, that one's; with both,
// those of the route that the listener's matches, or the listener's when a
// route wildcard covers it. ok is false when they have nothing in common.
func intersectHostnames(listener *gatewayv1.Hostname, route []gatewayv1.Hostname) ([]string, bool) {
	var out []string
	if listener == nil || *listener == "" {
		for _, h := range route {
			out = append(out, strings.ToLower(string(h)))
		}
		return out, true
	}
	l := strings.ToLower(string(*listener))
	if len(route) == 0 {
		return []string{l}, true
	}
	for _, rh := range route {
		r := strings.ToLower(string(rh))
		switch {
		case r == l:
			out = append(out, r)
		case hostMatches(l, r):
			out = append(out, r)
		case hostMatches(r, l):
			out = append(out, l)
		}
	}
	return out, len(out) > 0
}

// hostMatches reports whether pattern covers host: equal, or a "*."
// wildcard whose suffix host ends with, with at least one more label (a
// Gateway API wildcard spans any number of labels).
func hostMatches(pattern, host string) bool {
	if pattern == host {
		return true
	}
	if suffix, ok := strings.CutPrefix(pattern, "*"); ok {
		return strings.HasSuffix(host, suffix) && len(host) > len(suffix) && !strings.HasPrefix(host, "*")
	}
	return false
}

func dedupHostSets(sets [][]string) [][]string {
	seen := map[string]bool{}
	var out [][]string
	for _, s := range sets {
		k := strings.Join(s, ",")
		if !seen[k] {
			seen[k] = true
			out = append(out, s)
		}
	}
	return out
}

// unsupportedMatch says which match or filter of the route simnode cannot
// honour; such a route is not accepted (reason UnsupportedValue), as an
// implementation without the feature must do.
func unsupportedMatch(hr *gatewayv1.HTTPRoute) string {
	for i, r := range hr.Spec.Rules {
		for _, m := range r.Matches {
			if m.Path != nil && m.Path.Type != nil && *m.Path.Type != gatewayv1.PathMatchExact && *m.Path.Type != gatewayv1.PathMatchPathPrefix {
				return fmt.Sprintf("rule %d: path match type %s is not supported", i, *m.Path.Type)
			}
			if len(m.Headers) > 0 || len(m.QueryParams) > 0 || m.Method != nil {
				return fmt.Sprintf("rule %d: header, query parameter and method matches are not supported", i)
			}
		}
		if len(r.Filters) > 0 {
			return fmt.Sprintf("rule %d: filters are not supported", i)
		}
	}
	return ""
}

// backendProblem says why a backendRef cannot be routed to, with the
// ResolvedRefs reason; "" when it can.
func backendProblem(in gatewayInputs, hr *gatewayv1.HTTPRoute, b gatewayv1.HTTPBackendRef) (reason, msg string) {
	if b.Group != nil && *b.Group != "" && *b.Group != "core" || b.Kind != nil && *b.Kind != "Service" {
		return string(gatewayv1.RouteReasonInvalidKind), fmt.Sprintf("backendRef %s: only Services are supported", b.Name)
	}
	if b.Namespace != nil && string(*b.Namespace) != hr.Namespace {
		return string(gatewayv1.RouteReasonRefNotPermitted), fmt.Sprintf("backendRef %s/%s: simnode supports no ReferenceGrants, so no backend in another namespace", *b.Namespace, b.Name)
	}
	if b.Port == nil {
		return string(gatewayv1.RouteReasonUnsupportedValue), fmt.Sprintf("backendRef %s: port is required for a Service", b.Name)
	}
	if !in.services[key(hr.Namespace, string(b.Name))] {
		return string(gatewayv1.RouteReasonBackendNotFound), fmt.Sprintf("service %s/%s not found", hr.Namespace, b.Name)
	}
	return "", ""
}

func resolveRefs(in gatewayInputs, hr *gatewayv1.HTTPRoute) (ok bool, reason, msg string) {
	for _, r := range hr.Spec.Rules {
		for _, b := range r.BackendRefs {
			if reason, msg := backendProblem(in, hr, b); reason != "" {
				return false, reason, msg
			}
		}
	}
	return true, string(gatewayv1.RouteReasonResolvedRefs), "all backend references resolved"
}

// addRules flattens the route's rules for one set of effective hostnames.
func (st *gatewayState) addRules(in gatewayInputs, hr *gatewayv1.HTTPRoute, hosts []string) {
	for i, r := range hr.Spec.Rules {
		base := gwRoute{hostnames: hosts, namespace: hr.Namespace, name: hr.Name, created: hr.CreationTimestamp, rule: i}
		for _, b := range r.BackendRefs {
			if reason, msg := backendProblem(in, hr, b); reason != "" {
				base.invalid = msg
				base.backends = nil
				break
			}
			w := int32(1)
			if b.Weight != nil {
				w = *b.Weight
			}
			base.backends = append(base.backends, gwBackend{service: string(b.Name), port: int32(*b.Port), weight: w})
		}
		matches := r.Matches
		if len(matches) == 0 {
			matches = []gatewayv1.HTTPRouteMatch{{}}
		}
		for _, m := range matches {
			gr := base
			gr.pathType, gr.path = gatewayv1.PathMatchPathPrefix, "/"
			if m.Path != nil {
				if m.Path.Type != nil {
					gr.pathType = *m.Path.Type
				}
				if m.Path.Value != nil {
					gr.path = *m.Path.Value
				}
			}
			st.table.routes = append(st.table.routes, gr)
		}
	}
}

// hostScore ranks how specifically a route's hostnames match host, as the
// specification orders intersecting routes: most characters in a matching
// exact hostname, then in a matching hostname. ok is false for no match.
func (r *gwRoute) hostScore(host string) (exact, any int, ok bool) {
	if len(r.hostnames) == 0 {
		return 0, 0, true
	}
	found := false
	for _, h := range r.hostnames {
		if !hostMatches(h, host) {
			continue
		}
		found = true
		if !strings.HasPrefix(h, "*") {
			exact = max(exact, len(h))
		}
		any = max(any, len(h))
	}
	return exact, any, found
}

// gwPathMatches implements Exact and PathPrefix: a prefix matches whole
// path elements, and a trailing slash in it is ignored.
func gwPathMatches(t gatewayv1.PathMatchType, rule, req string) bool {
	switch t {
	case gatewayv1.PathMatchExact:
		return req == rule
	case gatewayv1.PathMatchPathPrefix:
		return elementPrefix(rule, req)
	}
	return false
}

// match picks the route for a request by the Gateway API's precedence:
// hostname specificity, then Exact over PathPrefix, longer prefix, then the
// oldest route and the first rule (the table is built in that order).
func (t *gwTable) match(hostHeader, path string) (gwRoute, bool) {
	host, isIP := requestHost(hostHeader)
	var best *gwRoute
	var bestExact, bestAny int
	for i := range t.routes {
		r := &t.routes[i]
		if isIP && len(r.hostnames) > 0 {
			continue
		}
		ex, an, ok := r.hostScore(host)
		if !ok || !gwPathMatches(r.pathType, r.path, path) {
			continue
		}
		if best == nil || ex > bestExact || ex == bestExact && (an > bestAny || an == bestAny && gwBetterPath(r, best)) {
			best, bestExact, bestAny = r, ex, an
		}
	}
	if best == nil {
		return gwRoute{}, false
	}
	return *best, true
}

func gwBetterPath(a, b *gwRoute) bool {
	ae, be := a.pathType == gatewayv1.PathMatchExact, b.pathType == gatewayv1.PathMatchExact
	if ae != be {
		return ae
	}
	return len(strings.TrimRight(a.path, "/")) > len(strings.TrimRight(b.path, "/"))
}

func (t *gwTable) describe() []string {
	out := make([]string, 0, len(t.routes))
	for _, r := range t.routes {
		out = append(out, r.String())
	}
	sort.Strings(out)
	return out
}
