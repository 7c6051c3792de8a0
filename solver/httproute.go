package solver

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubectl-acme/kubectl-acme/acme"
	"github.com/kubectl-acme/kubectl-acme/internal/kube"
)

// HTTPRoutes is the Gateway API resource the HTTPRoute solver creates.
var HTTPRoutes = gatewayv1.SchemeGroupVersion.WithResource("httproutes")

// ErrHTTPRouteNotServed is returned when the cluster has no HTTPRoute kind.
var ErrHTTPRouteNotServed = errors.New("the HTTPRoute kind is not served by this cluster: install the Gateway API CRDs or use an http01.ingress solver")

// The Gateway API's limits on one HTTPRoute (apis/v1/httproute_types.go,
// enforced by the CRD's schema): 16 hostnames, 16 rules, 64 matches per
// rule and 128 matches in all.
const (
	maxRouteHostnames = 16
	maxRouteRules     = 16
	maxRuleMatches    = 64
	maxRouteMatches   = 128
)

// HTTPRoute solves HTTP-01 challenges with a Pod and a Service, routed to by
// HTTPRoutes (Gateway API) attached to Config.ParentRefs, as cert-manager's
// http01.gatewayHTTPRoute solver does.
type HTTPRoute struct {
	Workload
}

var _ acme.Solver = (*HTTPRoute)(nil)

// Present creates the pod, Service and HTTPRoutes, waits for the pod and
// self-checks every challenge URL.
func (s *HTTPRoute) Present(ctx context.Context, chals []acme.Challenge) error {
	if err := s.create(ctx, chals); err != nil {
		return err
	}
	return s.explain(ctx, s.ready(ctx, chals))
}

// Start creates the solver objects for chals, the challenges of several
// orders, and waits for the pod; each order then self-checks its own with
// Check.
func (s *HTTPRoute) Start(ctx context.Context, chals []acme.Challenge) error {
	if err := s.create(ctx, chals); err != nil {
		return err
	}
	if err := s.waitPodReady(ctx); err != nil {
		return err
	}
	s.emit(acme.StatePresenting, "solver pod ready")
	return nil
}

// Check self-checks chals, some of those Start served, with chk.
func (s *HTTPRoute) Check(ctx context.Context, chals []acme.Challenge, chk *SelfCheck, observe acme.Observer) error {
	return s.explain(ctx, check(ctx, chk, chals, observe))
}

// explain adds to a failed self-check what the route's status says: whether
// any Gateway took it.
func (s *HTTPRoute) explain(ctx context.Context, err error) error {
	var chk *CheckError
	if errors.As(err, &chk) && ctx.Err() == nil {
		if why := s.routeStatus(ctx); why != "" {
			return fmt.Errorf("%w; %s", err, why)
		}
	}
	return err
}

func (s *HTTPRoute) create(ctx context.Context, chals []acme.Challenge) error {
	for _, ch := range chals {
		if ch.IsIP {
			// api.SolversFor refuses these before any order.
			return fmt.Errorf("an HTTPRoute cannot route IP address %s: HTTPRoute hostnames are DNS names only", ch.Identifier)
		}
	}
	if s.Dynamic == nil {
		return errors.New("the HTTPRoute solver has no dynamic client")
	}
	if err := checkListenerSetParents(ctx, s.Dynamic, s.Config.Namespace, s.Config.ParentRefs); err != nil {
		return err
	}
	owner, created, err := s.start(ctx, chals)
	if err != nil {
		return err
	}
	ns := s.Config.Namespace
	routes := s.Dynamic.Resource(HTTPRoutes).Namespace(ns)
	made := s.Config.httpRoutes(chals, owner, created)
	for _, hr := range made {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(hr)
		if err != nil {
			return fmt.Errorf("encode httproute %s/%s: %w", ns, hr.Name, err)
		}
		s.track(KindHTTPRoute, hr.Name)
		_, err = routes.Create(ctx, &unstructured.Unstructured{Object: m}, metav1.CreateOptions{})
		if kindNotServed(err) {
			return fmt.Errorf("create httproute %s/%s: %w", ns, hr.Name, ErrHTTPRouteNotServed)
		}
		if ignoreExists(err) != nil {
			return Admission(err, "httproute", ns, hr.Name, "create")
		}
	}
	what := "httproute"
	if len(made) > 1 {
		what = fmt.Sprintf("%d httproutes", len(made))
	}
	s.emit(acme.StatePresenting, fmt.Sprintf("created pod, service, %s %s/%s%s", what, ns, s.Config.Name, sharedBy(&s.Config)))
	return nil
}

// routeStatus explains, from the first route's status.parents, why no
// Gateway may be serving it; "" when every parentRef was accepted.
func (s *HTTPRoute) routeStatus(ctx context.Context) string {
	ns, name := s.Config.Namespace, s.Config.Name
	u, err := s.Dynamic.Resource(HTTPRoutes).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return ""
	}
	var hr gatewayv1.HTTPRoute
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &hr); err != nil {
		return ""
	}
	return describeRouteStatus(&hr)
}

// describeRouteStatus says, per parentRef, what no Gateway controller
// reported accepting: one that wrote nothing means no controller owns
// such a Gateway (a wrong name or namespace, or no Gateway at all).
func describeRouteStatus(hr *gatewayv1.HTTPRoute) string {
	var out []string
	for _, pr := range hr.Spec.ParentRefs {
		gw := string(pr.Name)
		if pr.Namespace != nil {
			gw = string(*pr.Namespace) + "/" + gw
		} else {
			gw = hr.Namespace + "/" + gw
		}
		var found *gatewayv1.RouteParentStatus
		for i, ps := range hr.Status.Parents {
			if ps.ParentRef.Name == pr.Name && ptrEqual(ps.ParentRef.Namespace, pr.Namespace) && ptrEqual(ps.ParentRef.SectionName, pr.SectionName) {
				found = &hr.Status.Parents[i]
			}
		}
		if found == nil {
			out = append(out, fmt.Sprintf("no Gateway controller has accepted httproute %s/%s for parentRef %s: does that Gateway exist, with a GatewayClass whose controller runs?", hr.Namespace, hr.Name, gw))
			continue
		}
		for _, c := range found.Conditions {
			if (c.Type == string(gatewayv1.RouteConditionAccepted) || c.Type == string(gatewayv1.RouteConditionResolvedRefs)) && c.Status != metav1.ConditionTrue {
				out = append(out, fmt.Sprintf("httproute %s/%s on Gateway %s (%s): %s %s: %s", hr.Namespace, hr.Name, gw, found.ControllerName, c.Type, c.Reason, c.Message))
			}
		}
	}
	return strings.Join(out, "; ")
}

func ptrEqual[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// HTTPRoutesServed fails with ErrHTTPRouteNotServed when the cluster has no
// HTTPRoute kind, for checks before any order (apply --dry-run=server). A
// user who may not list HTTPRoutes passes: issuing only creates them.
func HTTPRoutesServed(ctx context.Context, dc dynamic.Interface, ns string) error {
	if dc == nil {
		return errors.New("no client for HTTPRoutes")
	}
	_, err := dc.Resource(HTTPRoutes).Namespace(ns).List(ctx, metav1.ListOptions{Limit: 1})
	switch {
	case kindNotServed(err):
		return ErrHTTPRouteNotServed
	case err == nil, apierrors.IsForbidden(err):
		return nil
	}
	return kube.Describe(err, "list", "httproutes.gateway.networking.k8s.io", ns)
}

// kindNotServed tells a 404 for the resource type from one for the
// namespace: only the namespace's names its kind.
func kindNotServed(err error) bool {
	if !apierrors.IsNotFound(err) {
		return false
	}
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		if d := st.Status().Details; d != nil && d.Kind == "namespaces" {
			return false
		}
	}
	return true
}

// CleanUp deletes every object Present created. An HTTPRoute whose kind
// the cluster does not serve was never created: its delete's 404 is "gone".
func (s *HTTPRoute) CleanUp(ctx context.Context) error {
	return s.cleanUp(ctx, func(context.Context) error { return nil })
}

// httpRoutes route each token's exact path on its identifier's hostname to
// the solver Service, through the Gateways of ParentRefs: one rule per
// hostname matching its tokens' paths, in as few routes as the Gateway
// API's limits allow (16 hostnames a route; see maxRouteHostnames), named
// Name, Name-2, ... A hostname with several tokens (orders of a run
// sharing a name) costs one rule, not one each.
func (c *Config) httpRoutes(chals []acme.Challenge, owner *metav1.OwnerReference, created string) []*gatewayv1.HTTPRoute {
	var hosts []string
	paths := map[string][]string{}
	for _, ch := range chals {
		if _, ok := paths[ch.Identifier]; !ok {
			hosts = append(hosts, ch.Identifier)
		}
		paths[ch.Identifier] = append(paths[ch.Identifier], ChallengePath+ch.Token)
	}
	var out []*gatewayv1.HTTPRoute
	var hr *gatewayv1.HTTPRoute
	matches := 0
	exact := gatewayv1.PathMatchExact
	port := gatewayv1.PortNumber(httpPort)
	for _, h := range hosts {
		todo := paths[h]
		for len(todo) > 0 {
			hasHost := hr != nil && slices.Contains(hr.Spec.Hostnames, gatewayv1.Hostname(h))
			if hr == nil || len(hr.Spec.Rules) == maxRouteRules || matches == maxRouteMatches ||
				(!hasHost && len(hr.Spec.Hostnames) == maxRouteHostnames) {
				hr = c.newHTTPRoute(len(out), owner, created)
				out = append(out, hr)
				matches, hasHost = 0, false
			}
			if !hasHost {
				hr.Spec.Hostnames = append(hr.Spec.Hostnames, gatewayv1.Hostname(h))
			}
			n := min(len(todo), maxRuleMatches, maxRouteMatches-matches)
			rule := gatewayv1.HTTPRouteRule{BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{
				Name: gatewayv1.ObjectName(c.Name), Port: &port,
			}}}}}
			for _, p := range todo[:n] {
				rule.Matches = append(rule.Matches, gatewayv1.HTTPRouteMatch{Path: &gatewayv1.HTTPPathMatch{Type: &exact, Value: &p}})
			}
			hr.Spec.Rules = append(hr.Spec.Rules, rule)
			matches += n
			todo = todo[n:]
		}
	}
	return out
}

// newHTTPRoute is the i-th (from 0) route of the solver, without rules.
func (c *Config) newHTTPRoute(i int, owner *metav1.OwnerReference, created string) *gatewayv1.HTTPRoute {
	hr := &gatewayv1.HTTPRoute{
		TypeMeta:   metav1.TypeMeta{APIVersion: gatewayv1.GroupVersion.String(), Kind: "HTTPRoute"},
		ObjectMeta: c.meta(created, owner),
	}
	if i > 0 {
		hr.Name += "-" + strconv.Itoa(i+1)
	}
	// The issuer's labels, for Gateways that select routes by label;
	// the solver's own win, so cleanup still finds the route.
	hr.Labels = maps.Clone(c.RouteLabels)
	if hr.Labels == nil {
		hr.Labels = map[string]string{}
	}
	maps.Copy(hr.Labels, c.labels())
	for _, pr := range c.ParentRefs {
		hr.Spec.ParentRefs = append(hr.Spec.ParentRefs, *pr.DeepCopy())
	}
	return hr
}
