package simnode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// ingressController serves the Ingresses of one class over plain HTTP and
// proxies to ready pods of the backend Service, like ingress-nginx, which
// also routes to endpoints directly rather than through the Service IP.
type ingressController struct {
	cs      kubernetes.Interface
	class   string
	lbIP    string
	ings    networkinglisters.IngressLister
	classes networkinglisters.IngressClassLister
	svcs    corelisters.ServiceLister
	pods    corelisters.PodLister
	dial    func(ctx context.Context, addr string) (net.Conn, error)
	log     *slog.Logger
	status  workqueue.TypedRateLimitingInterface[string]

	routes atomic.Pointer[routeTable]
	// rebuildMu makes rebuilds, which handlers of different informers
	// call concurrently, one at a time: else one from an older cache
	// could store its routes last.
	rebuildMu sync.Mutex
	mu        sync.Mutex
	lastDesc  []string
	// logged rate-limits per-request log lines, which clients polling
	// for a route would otherwise repeat several times a second.
	logged map[string]time.Time
	proxy  *httputil.ReverseProxy
	// gateway, when set, routes HTTPRoutes before the Ingresses.
	gateway *gatewayController
	// gke, when set, routes the Ingresses of GKE's classes after those of
	// class (see gke.go).
	gke *gkeController
}

type targetKey struct{}

func (ic *ingressController) init() {
	ic.routes.Store(buildRoutes(nil))
	ic.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			target := pr.In.Context().Value(targetKey{}).(string)
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = target
			// nginx passes the client's Host header on.
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
			pr.Out.Header.Set("X-Real-IP", clientIP(pr.In))
			pr.Out.Header.Set("X-Forwarded-Host", pr.In.Host)
		},
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
				return ic.dial(ctx, addr)
			},
			DisableKeepAlives:     true,
			ResponseHeaderTimeout: 60 * time.Second,
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			ic.log.Warn("ingress upstream error", "host", r.Host, "path", r.URL.Path, "upstream", r.Context().Value(targetKey{}), "err", err)
			code := http.StatusBadGateway
			if errors.Is(err, context.DeadlineExceeded) {
				code = http.StatusGatewayTimeout
			}
			http.Error(w, http.StatusText(code), code)
		},
	}
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// served lists the Ingresses of the class, oldest first.
func (ic *ingressController) served() []*networkingv1.Ingress {
	all, err := ic.ings.List(labels.Everything())
	if err != nil {
		return nil
	}
	classes, _ := ic.classes.List(labels.Everything())
	var out []*networkingv1.Ingress
	for _, ing := range all {
		if ing.DeletionTimestamp == nil && servesIngress(ing, ic.class, classes) {
			out = append(out, ing)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
	})
	return out
}

// rebuild recomputes the routes after an Ingress or IngressClass change
// and logs them when they changed.
func (ic *ingressController) rebuild() {
	ic.rebuildMu.Lock()
	defer ic.rebuildMu.Unlock()
	t := buildRoutes(ic.served())
	ic.routes.Store(t)
	if ic.gke != nil {
		all, _ := ic.ings.List(labels.Everything())
		ic.gke.rebuild(all)
	}
	desc := t.describe()
	ic.mu.Lock()
	added, removed := diffSorted(ic.lastDesc, desc)
	ic.lastDesc = desc
	ic.mu.Unlock()
	for _, r := range removed {
		ic.log.Info("ingress route removed", "route", r)
	}
	for _, r := range added {
		ic.log.Info("ingress route added", "route", r)
	}
}

// diffSorted returns what is only in b (added) and only in a (removed);
// both must be sorted.
func diffSorted(a, b []string) (added, removed []string) {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && a[i] < b[j]):
			removed = append(removed, a[i])
			i++
		case i == len(a) || b[j] < a[i]:
			added = append(added, b[j])
			j++
		default:
			i++
			j++
		}
	}
	return added, removed
}

func (ic *ingressController) enqueueStatus(obj any) {
	if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
		ic.status.Add(key)
	}
}

func (ic *ingressController) enqueueAllStatus() {
	all, err := ic.ings.List(labels.Everything())
	if err != nil {
		return
	}
	for _, ing := range all {
		ic.enqueueStatus(ing)
	}
}

// runStatus writes status.loadBalancer on served Ingresses, and removes
// it from Ingresses that are no longer served.
func (ic *ingressController) runStatus(ctx context.Context) {
	runQueue(ctx, ic.status, ic.syncStatus, func(key string, err error) {
		ic.log.Error("ingress status", "ingress", key, "err", err)
	})
}

// runQueue works a queue of object keys until ctx is done; a key whose
// sync fails is reported and retried with the queue's backoff.
func runQueue(ctx context.Context, q workqueue.TypedRateLimitingInterface[string], sync func(context.Context, string) error, report func(key string, err error)) {
	go func() {
		<-ctx.Done()
		q.ShutDown()
	}()
	for {
		key, quit := q.Get()
		if quit {
			return
		}
		if err := sync(ctx, key); err != nil && ctx.Err() == nil {
			report(key, err)
			q.AddRateLimited(key)
		} else {
			q.Forget(key)
		}
		q.Done(key)
	}
}

func (ic *ingressController) syncStatus(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	ing, err := ic.ings.Ingresses(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get ingress: %w", err)
	}
	classes, _ := ic.classes.List(labels.Everything())
	ours := []networkingv1.IngressLoadBalancerIngress{{IP: ic.lbIP}}
	var want []networkingv1.IngressLoadBalancerIngress
	switch {
	case ing.DeletionTimestamp == nil && servesIngress(ing, ic.class, classes):
		want = ours
	case slices.EqualFunc(ing.Status.LoadBalancer.Ingress, ours, lbEqual):
		want = nil
	default:
		return nil // someone else's
	}
	if slices.EqualFunc(ing.Status.LoadBalancer.Ingress, want, lbEqual) {
		return nil
	}
	cp := ing.DeepCopy()
	cp.Status.LoadBalancer.Ingress = want
	if _, err := ic.cs.NetworkingV1().Ingresses(ns).UpdateStatus(ctx, cp, metav1.UpdateOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("update ingress status: %w", err)
	}
	ic.log.Info("ingress status updated", "ingress", key, "loadBalancer", want)
	return nil
}

func lbEqual(a, b networkingv1.IngressLoadBalancerIngress) bool {
	return a.IP == b.IP && a.Hostname == b.Hostname
}

// ServeHTTP routes one request: no matching rule is 404 (nginx's default
// backend), a backend without ready endpoints 503, an endpoint that refuses
// the connection 502.
func (ic *ingressController) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if ic.gateway != nil && ic.gateway.serve(ic, w, r) {
		return
	}
	rt, ok := ic.routes.Load().match(r.Host, r.URL.Path)
	if !ok && ic.gke != nil {
		rt, ok = ic.gke.match(r.Host, r.URL.Path)
	}
	if !ok {
		ic.logOnce("ingress: no route", "host", r.Host, "path", r.URL.Path)
		http.Error(w, "404 page not found (simnode ingress: no rule or HTTPRoute matches)", http.StatusNotFound)
		return
	}
	ic.proxyTo(w, r, rt)
}

// proxyTo sends a request to a ready endpoint of the route's Service.
func (ic *ingressController) proxyTo(w http.ResponseWriter, r *http.Request, rt route) {
	addr, err := ic.endpoint(rt)
	if err != nil {
		ic.logOnce("ingress: no endpoint", "host", r.Host, "path", r.URL.Path, "route", rt.String(), "err", err)
		http.Error(w, "503 Service Temporarily Unavailable (simnode ingress: "+err.Error()+")", http.StatusServiceUnavailable)
		return
	}
	ic.log.Debug("ingress: proxy", "host", r.Host, "path", r.URL.Path, "route", rt.String(), "upstream", addr)
	ic.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), targetKey{}, addr)))
}

// logOnce logs a message at most every 5s for the same arguments.
func (ic *ingressController) logOnce(msg string, args ...any) {
	key := fmt.Sprint(append([]any{msg}, args...)...)
	ic.mu.Lock()
	if ic.logged == nil || len(ic.logged) > 10000 {
		ic.logged = map[string]time.Time{}
	}
	last, seen := ic.logged[key]
	if !seen || time.Since(last) > 5*time.Second {
		ic.logged[key] = time.Now()
	}
	ic.mu.Unlock()
	if !seen || time.Since(last) > 5*time.Second {
		ic.log.Info(msg, args...)
	}
}

// endpoint picks a ready endpoint of the route's backend Service port the
// way the endpoints controller computes them: selected pods that are
// ready (or any, with publishNotReadyAddresses), not terminating, with the
// target port resolved by number or by container port name.
func (ic *ingressController) endpoint(rt route) (string, error) {
	b := rt.backend.Service
	if b == nil {
		return "", errors.New("resource backends are not supported")
	}
	svc, err := ic.svcs.Services(rt.namespace).Get(b.Name)
	if err != nil {
		return "", fmt.Errorf("service %s/%s: %w", rt.namespace, b.Name, err)
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return "", fmt.Errorf("service %s/%s is of type ExternalName", rt.namespace, b.Name)
	}
	var sp *corev1.ServicePort
	for i, p := range svc.Spec.Ports {
		if (b.Port.Name != "" && p.Name == b.Port.Name) || (b.Port.Name == "" && p.Port == b.Port.Number) {
			sp = &svc.Spec.Ports[i]
			break
		}
	}
	if sp == nil {
		return "", fmt.Errorf("service %s/%s has no port %s", rt.namespace, b.Name, portString(b.Port))
	}
	if len(svc.Spec.Selector) == 0 {
		return "", fmt.Errorf("service %s/%s has no selector (manual endpoints are not supported)", rt.namespace, b.Name)
	}
	pods, err := ic.pods.Pods(rt.namespace).List(labels.SelectorFromSet(svc.Spec.Selector))
	if err != nil {
		return "", fmt.Errorf("list pods: %w", err)
	}
	var addrs []string
	for _, pod := range pods {
		if pod.Status.PodIP == "" || pod.DeletionTimestamp != nil ||
			pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		if !svc.Spec.PublishNotReadyAddresses && !podReady(pod) {
			continue
		}
		port, ok := targetPort(pod, sp)
		if !ok {
			continue
		}
		addrs = append(addrs, net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(port)))
	}
	if len(addrs) == 0 {
		return "", fmt.Errorf("service %s/%s has no ready endpoints for port %s (%d pods selected)", rt.namespace, b.Name, portString(b.Port), len(pods))
	}
	return addrs[rand.IntN(len(addrs))], nil
}

func portString(p networkingv1.ServiceBackendPort) string {
	if p.Name != "" {
		return p.Name
	}
	return strconv.Itoa(int(p.Number))
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// targetPort resolves a Service port's targetPort on one pod, as the
// endpoints controller's FindPort does.
func targetPort(pod *corev1.Pod, sp *corev1.ServicePort) (int, bool) {
	tp := sp.TargetPort
	if tp.StrVal == "" && tp.IntVal == 0 {
		return int(sp.Port), true
	}
	if tp.StrVal == "" {
		return int(tp.IntVal), true
	}
	proto := sp.Protocol
	if proto == "" {
		proto = corev1.ProtocolTCP
	}
	containers := append([]corev1.Container{}, pod.Spec.Containers...)
	containers = append(containers, pod.Spec.InitContainers...)
	for _, c := range containers {
		for _, p := range c.Ports {
			pp := p.Protocol
			if pp == "" {
				pp = corev1.ProtocolTCP
			}
			if p.Name == tp.StrVal && pp == proto {
				return int(p.ContainerPort), true
			}
		}
	}
	return 0, false
}

// loopbackHost returns the IP part of a listen address, which must be a
// loopback address, for status.loadBalancer.
func loopbackHost(addr string) (string, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("ingress address %q: %w", addr, err)
	}
	if strings.EqualFold(host, "localhost") {
		return "127.0.0.1", nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return "", fmt.Errorf("ingress address %q: only loopback addresses are allowed", addr)
	}
	return ip.String(), nil
}
