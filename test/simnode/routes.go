package simnode

import (
	"fmt"
	"net"
	"sort"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
)

const (
	ingressClassAnnotation = "kubernetes.io/ingress.class"
	defaultClassAnnotation = "ingressclass.kubernetes.io/is-default-class"
	nginxController        = "k8s.io/ingress-nginx"
)

// servesIngress decides, like ingress-nginx, whether the controller for
// class handles ing: by the legacy annotation, by spec.ingressClassName,
// or, for an Ingress with neither, when this controller's IngressClass is
// the cluster default.
func servesIngress(ing *networkingv1.Ingress, class string, classes []*networkingv1.IngressClass) bool {
	if v, ok := ing.Annotations[ingressClassAnnotation]; ok {
		return v == class
	}
	if ing.Spec.IngressClassName != nil {
		return *ing.Spec.IngressClassName == class
	}
	for _, ic := range classes {
		if ic.Name == class && ic.Spec.Controller == nginxController && ic.Annotations[defaultClassAnnotation] == "true" {
			return true
		}
	}
	return false
}

// route is one path of one Ingress rule, flattened.
type route struct {
	host     string // "" for any host
	path     string
	pathType networkingv1.PathType
	backend  networkingv1.IngressBackend
	// fallback marks an Ingress's defaultBackend, used when no path matches.
	fallback  bool
	namespace string
	ingress   string
	// order breaks ties: older Ingresses win, as in ingress-nginx.
	order int
}

func (r route) String() string {
	host := r.host
	if host == "" {
		host = "*"
	}
	b := "<resource>"
	if s := r.backend.Service; s != nil {
		port := s.Port.Name
		if port == "" {
			port = fmt.Sprint(s.Port.Number)
		}
		b = s.Name + ":" + port
	}
	if r.fallback {
		return fmt.Sprintf("%s (default backend) -> %s/%s [%s/%s]", host, r.namespace, b, r.namespace, r.ingress)
	}
	return fmt.Sprintf("%s %s %s -> %s/%s [%s/%s]", host, r.pathType, r.path, r.namespace, b, r.namespace, r.ingress)
}

// routeTable is the merged routing of all Ingresses of the class. Hosts are
// selected first, like nginx server blocks: exact host, then wildcard, then
// the rules without a host; paths are matched only within that host.
type routeTable struct {
	exact    map[string][]route
	wildcard map[string][]route // keyed by the suffix after "*"
	any      []route
	all      []route
}

// buildRoutes flattens ings, which must already be the served ones, sorted
// oldest first.
func buildRoutes(ings []*networkingv1.Ingress) *routeTable {
	t := &routeTable{exact: map[string][]route{}, wildcard: map[string][]route{}}
	add := func(r route) {
		t.all = append(t.all, r)
		switch {
		case r.host == "":
			t.any = append(t.any, r)
		case strings.HasPrefix(r.host, "*."):
			t.wildcard[r.host[1:]] = append(t.wildcard[r.host[1:]], r)
		default:
			t.exact[r.host] = append(t.exact[r.host], r)
		}
	}
	for i, ing := range ings {
		base := route{namespace: ing.Namespace, ingress: ing.Name, order: i}
		hosts := map[string]bool{}
		for _, rule := range ing.Spec.Rules {
			host := strings.ToLower(rule.Host)
			hosts[host] = true
			if rule.HTTP == nil {
				continue
			}
			for _, p := range rule.HTTP.Paths {
				r := base
				r.host, r.path, r.backend = host, p.Path, p.Backend
				r.pathType = networkingv1.PathTypeImplementationSpecific
				if p.PathType != nil {
					r.pathType = *p.PathType
				}
				if r.path == "" {
					r.path = "/"
				}
				add(r)
			}
		}
		if ing.Spec.DefaultBackend != nil {
			// ingress-nginx uses an Ingress's defaultBackend for its own
			// hosts and for the catch-all server.
			hosts[""] = true
			for _, h := range sortedKeys(hosts) {
				r := base
				r.host, r.backend, r.fallback = h, *ing.Spec.DefaultBackend, true
				add(r)
			}
		}
	}
	return t
}

// requestHost normalizes a Host header: no port, lower case, no trailing
// dot. IP literals match only rules without a host.
func requestHost(h string) (host string, isIP bool) {
	if hh, _, err := net.SplitHostPort(h); err == nil {
		h = hh
	}
	h = strings.TrimSuffix(strings.ToLower(strings.Trim(h, "[]")), ".")
	return h, net.ParseIP(h) != nil
}

// match finds the route for a request.
func (t *routeTable) match(hostHeader, path string) (route, bool) {
	host, isIP := requestHost(hostHeader)
	candidates := t.any
	if !isIP {
		if rs, ok := t.exact[host]; ok {
			candidates = rs
		} else if i := strings.IndexByte(host, '.'); i > 0 {
			if rs, ok := t.wildcard[host[i:]]; ok {
				candidates = rs
			}
		}
	}
	var best *route
	for i := range candidates {
		r := &candidates[i]
		if !r.fallback && !pathMatches(r.pathType, r.path, path) {
			continue
		}
		if best == nil || better(r, best) {
			best = r
		}
	}
	if best == nil {
		return route{}, false
	}
	return *best, true
}

// better ranks matching routes: real paths beat a default backend, longer
// paths beat shorter, Exact beats Prefix beats ImplementationSpecific,
// older Ingresses beat newer.
func better(a, b *route) bool {
	if a.fallback != b.fallback {
		return !a.fallback
	}
	if la, lb := matchLen(a), matchLen(b); la != lb {
		return la > lb
	}
	if ra, rb := typeRank(a.pathType), typeRank(b.pathType); ra != rb {
		return ra > rb
	}
	return a.order < b.order
}

func matchLen(r *route) int {
	if r.pathType == networkingv1.PathTypePrefix {
		return len(strings.TrimRight(r.path, "/"))
	}
	return len(r.path)
}

func typeRank(t networkingv1.PathType) int {
	switch t {
	case networkingv1.PathTypeExact:
		return 2
	case networkingv1.PathTypePrefix:
		return 1
	}
	return 0
}

// pathMatches implements the Ingress path types. Prefix matches whole path
// elements ("/foo" matches "/foo" and "/foo/bar", not "/foobar"; a trailing
// slash in the rule is ignored). ImplementationSpecific is what ingress-nginx
// makes of it without its use-regex annotation: an nginx prefix location, a
// plain string prefix, the longest one winning (ingress-nginx orders
// locations by descending path length, docs/user-guide/
// ingress-path-matching.md "Path Priority"; nginx's own prefix locations
// pick the longest match, nginx.org/en/docs/http/ngx_http_core_module.html
// #location).
func pathMatches(t networkingv1.PathType, rule, req string) bool {
	switch t {
	case networkingv1.PathTypeExact:
		return req == rule
	case networkingv1.PathTypePrefix:
		return elementPrefix(rule, req)
	}
	return strings.HasPrefix(req, rule)
}

// elementPrefix reports whether rule is a prefix of req by whole path
// elements, a trailing slash in rule ignored: Ingress's Prefix and
// HTTPRoute's PathPrefix.
func elementPrefix(rule, req string) bool {
	p := strings.TrimRight(rule, "/")
	return p == "" || req == p || strings.HasPrefix(req, p+"/")
}

// describe renders the table for logs.
func (t *routeTable) describe() []string {
	out := make([]string, 0, len(t.all))
	for _, r := range t.all {
		out = append(out, r.String())
	}
	sort.Strings(out)
	return out
}
