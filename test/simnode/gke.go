package simnode

import (
	"strings"
	"sync"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/client-go/tools/record"
)

// gkeController routes the Ingresses GKE's ingress controller (ingress-gce,
// the "loadbalancer-controller") would, as it did before path types were
// supported, the behaviour that broke cert-manager 1.5's Exact solver paths
// on GKE 1.20 (cert-manager issue #4371):
//
//   - it takes an Ingress whose kubernetes.io/ingress.class annotation is
//     one of its classes ("gce" for the external load balancer,
//     "gce-internal" for the internal one), or one with neither that
//     annotation nor spec.ingressClassName; spec.ingressClassName alone
//     is ignored (pkg/utils/utils.go IsGCEIngress; GKE's "GKE Ingress
//     controller behavior" table, cloud.google.com/kubernetes-engine/docs/
//     concepts/ingress);
//   - a path whose pathType is not ImplementationSpecific fails the
//     translation of the whole Ingress ("only \"ImplementationSpecific\"
//     path type is supported", pkg/controller/translator/translator.go
//     validateAndGetPaths until commit 79b989c, 2021): none of its paths is
//     routed and a Warning event "Translate" from loadbalancer-controller
//     says "Translation failed: invalid ingress spec: " and the errors
//     joined by "; " (pkg/controller/controller.go sync, utils.JoinErrs);
//   - an ImplementationSpecific path becomes a Google Cloud URL map path
//     rule: matched exactly, unless it ends in "/*", which matches that
//     prefix; an empty path is "/*"; the most specific (longest) rule wins
//     (translator.go DefaultPath; URL map path matchers,
//     cloud.google.com/load-balancing/docs/url-map-concepts).
//
// Two simplifications, both on the side of routing more: GKE gives every
// Ingress a load balancer of its own (its own IP), here they share the
// ingress listener, after ingress-nginx's routes; and translation needs
// no NodePort or NEG Services, which GKE's does.
type gkeController struct {
	classes map[string]bool
	rec     record.EventRecorder

	routes atomic.Pointer[[]gkeRoute]
	mu     sync.Mutex
	// reported is the resourceVersion of each Ingress a Translate event
	// was sent for, so a rebuild for another object sends none again.
	reported map[string]string
}

// GKEClasses are the classes the GKE-like controller serves, by
// kubernetes.io/ingress.class annotation (pkg/annotations/ingress.go:
// GceIngressClass, GceL7ILBIngressClass).
var GKEClasses = []string{"gce", "gce-internal"}

type gkeRoute struct {
	host, path string
	prefix     bool
	backend    networkingv1.IngressBackend
	namespace  string
	ingress    string
}

func newGKEController(rec record.EventRecorder) *gkeController {
	g := &gkeController{classes: map[string]bool{}, rec: rec, reported: map[string]string{}}
	for _, c := range GKEClasses {
		g.classes[c] = true
	}
	g.routes.Store(&[]gkeRoute{})
	return g
}

// serves is IsGCEIngress for this controller's classes.
func (g *gkeController) serves(ing *networkingv1.Ingress) bool {
	if v, ok := ing.Annotations[ingressClassAnnotation]; ok && v != "" {
		return g.classes[v]
	}
	return ing.Spec.IngressClassName == nil
}

// translate is the part of TranslateIngress this controller models: the
// path rules of ing, or the errors that fail it.
func translateGKE(ing *networkingv1.Ingress) (routes []gkeRoute, errs []string) {
	for _, rule := range ing.Spec.Rules {
		if rule.HTTP == nil {
			continue
		}
		for _, p := range rule.HTTP.Paths {
			if p.PathType != nil && *p.PathType != networkingv1.PathTypeImplementationSpecific {
				errs = append(errs, `only "ImplementationSpecific" path type is supported`)
				continue
			}
			path := p.Path
			if path == "" {
				path = "/*"
			}
			r := gkeRoute{host: strings.ToLower(rule.Host), path: path, backend: p.Backend, namespace: ing.Namespace, ingress: ing.Name}
			if strings.HasSuffix(path, "/*") {
				r.path, r.prefix = strings.TrimSuffix(path, "*"), true
			}
			routes = append(routes, r)
		}
	}
	return routes, errs
}

// rebuild translates every served Ingress, reporting each failed one once
// per change.
func (g *gkeController) rebuild(all []*networkingv1.Ingress) {
	var routes []gkeRoute
	seen := map[string]bool{}
	for _, ing := range all {
		if ing.DeletionTimestamp != nil || !g.serves(ing) {
			continue
		}
		rs, errs := translateGKE(ing)
		key := ing.Namespace + "/" + ing.Name
		seen[key] = true
		if len(errs) == 0 {
			routes = append(routes, rs...)
			continue
		}
		g.mu.Lock()
		report := g.reported[key] != ing.ResourceVersion
		g.reported[key] = ing.ResourceVersion
		g.mu.Unlock()
		if report {
			g.rec.Eventf(ing, corev1.EventTypeWarning, "Translate", "Translation failed: invalid ingress spec: %s", strings.Join(errs, "; "))
		}
	}
	g.mu.Lock()
	for k := range g.reported {
		if !seen[k] {
			delete(g.reported, k)
		}
	}
	g.mu.Unlock()
	g.routes.Store(&routes)
}

// match finds the URL map rule for a request: the rules of its host if
// any Ingress has one, else the host-less ones; the longest matching path.
func (g *gkeController) match(hostHeader, path string) (route, bool) {
	host, _ := requestHost(hostHeader)
	all := *g.routes.Load()
	hasHost := false
	for _, r := range all {
		if r.host == host {
			hasHost = true
			break
		}
	}
	var best *gkeRoute
	for i := range all {
		r := &all[i]
		if (hasHost && r.host != host) || (!hasHost && r.host != "") {
			continue
		}
		ok := path == r.path
		if r.prefix {
			// "/foo/*" matches under /foo/, not /foo itself: ingress-gce
			// adds "/foo" as a rule of its own for a Prefix path.
			ok = strings.HasPrefix(path, r.path)
		}
		if ok && (best == nil || len(r.path) > len(best.path)) {
			best = r
		}
	}
	if best == nil {
		return route{}, false
	}
	return route{
		host: best.host, path: best.path, pathType: networkingv1.PathTypeImplementationSpecific,
		backend: best.backend, namespace: best.namespace, ingress: best.ingress,
	}, true
}
