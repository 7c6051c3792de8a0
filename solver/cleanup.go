package solver

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/kubectl-acme/kubectl-acme/internal/kube"
)

// Selector selects every solver object kubectl-acme created, and nothing
// else: other tools' solver pods lack the managed-by label.
const Selector = LabelManagedBy + "=" + ManagedByValue + "," + LabelComponent + "=http01-solver"

// Kinds of solver objects, in the order Leftovers lists them and Delete
// removes them: the anchor pod last, so an interrupted cleanup still
// leaves the garbage collector something to work from.
const (
	// KindIngressPaths are the challenge paths a solver added to an
	// existing Ingress (http01.ingress.name); Name is that Ingress.
	KindIngressPaths = "ingress-paths"
	KindIngress      = "ingress"
	KindHTTPRoute    = "httproute"
	// KindNetworkPolicy admits the ingress controller's traffic to the
	// solver pod (Config.AllowSolverTraffic).
	KindNetworkPolicy = "networkpolicy"
	KindService       = "service"
	KindPod           = "pod"
)

var kindOrder = map[string]int{KindIngressPaths: 0, KindIngress: 1, KindHTTPRoute: 2, KindNetworkPolicy: 3, KindService: 4, KindPod: 5}

// solverNamePrefix starts every solver's name (issuance names them
// acme-solver-CERTIFICATE-RANDOM): challenge paths whose backend is such a
// Service are a solver's.
const solverNamePrefix = "acme-solver-"

// Leftover is one solver object found in the cluster.
type Leftover struct {
	Kind      string
	Namespace string
	Name      string
	Solver    string // the order's solver name, shared by its objects
	// Certificate names the Certificates whose orders the object served:
	// one, or for a solver shared by a run's orders, Certificates joined
	// with commas.
	Certificate  string
	Certificates []string
	// Created is the acme.kubectl.io/created annotation, or the object's
	// creationTimestamp when the annotation is missing or unreadable.
	Created time.Time
}

// Leftovers lists every solver object in ns ("" for all namespaces). With
// dc, it lists HTTPRoutes too, when the cluster serves them.
func Leftovers(ctx context.Context, c kubernetes.Interface, dc dynamic.Interface, ns string) ([]Leftover, error) {
	opts := metav1.ListOptions{LabelSelector: Selector}
	var out []Leftover
	add := func(kind string, m metav1.ObjectMeta) {
		certs := certificatesOf(m)
		out = append(out, Leftover{
			Kind: kind, Namespace: m.Namespace, Name: m.Name,
			Solver: m.Labels[LabelSolver], Certificate: strings.Join(certs, ","), Certificates: certs,
			Created: createdAt(m),
		})
	}
	// All Ingresses: a killed solver may have left challenge paths in one
	// of the user's (http01.ingress.name).
	ings, err := c.NetworkingV1().Ingresses(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, kube.Describe(err, "list", "ingresses.networking.k8s.io", ns)
	}
	ours := labels.SelectorFromSet(labels.Set{LabelManagedBy: ManagedByValue, LabelComponent: "http01-solver"})
	var patched []Leftover
	for _, o := range ings.Items {
		if ours.Matches(labels.Set(o.Labels)) {
			add(KindIngress, o.ObjectMeta)
			continue
		}
		for _, solver := range challengeBackends(&o) {
			patched = append(patched, Leftover{Kind: KindIngressPaths, Namespace: o.Namespace, Name: o.Name, Solver: solver})
		}
	}
	svcs, err := c.CoreV1().Services(ns).List(ctx, opts)
	if err != nil {
		return nil, kube.Describe(err, "list", "services", ns)
	}
	for _, o := range svcs.Items {
		add(KindService, o.ObjectMeta)
	}
	pods, err := c.CoreV1().Pods(ns).List(ctx, opts)
	if err != nil {
		return nil, kube.Describe(err, "list", "pods", ns)
	}
	for _, o := range pods.Items {
		add(KindPod, o.ObjectMeta)
	}
	nps, err := c.NetworkingV1().NetworkPolicies(ns).List(ctx, opts)
	switch {
	case apierrors.IsForbidden(err):
		// Only a user allowed to create them (--allow-solver-traffic)
		// can have left one, and the pod owns it: the garbage collector
		// removes it with the pod.
	case err != nil:
		return nil, kube.Describe(err, "list", "networkpolicies.networking.k8s.io", ns)
	default:
		for _, o := range nps.Items {
			add(KindNetworkPolicy, o.ObjectMeta)
		}
	}
	if dc != nil {
		routes, err := dc.Resource(HTTPRoutes).Namespace(ns).List(ctx, opts)
		switch {
		case kindNotServed(err):
			// No Gateway API in the cluster: no HTTPRoute solver ran.
		case apierrors.IsForbidden(err):
			// Nor for a user who may not list HTTPRoutes: creating them
			// needs the same Role that lets them be cleaned up.
		case err != nil:
			return nil, kube.Describe(err, "list", "httproutes.gateway.networking.k8s.io", ns)
		default:
			for _, o := range routes.Items {
				add(KindHTTPRoute, metav1.ObjectMeta{
					Namespace: o.GetNamespace(), Name: o.GetName(), Labels: o.GetLabels(),
					Annotations: o.GetAnnotations(), CreationTimestamp: o.GetCreationTimestamp(),
				})
			}
		}
	}
	// Paths take their certificate and age from their solver's objects;
	// without any (a partial cleanup), they point at nothing and are old.
	for _, p := range patched {
		for _, o := range out {
			if o.Namespace == p.Namespace && o.Solver == p.Solver {
				p.Certificate, p.Certificates, p.Created = o.Certificate, o.Certificates, o.Created
				break
			}
		}
		out = append(out, p)
	}
	SortLeftovers(out)
	return out, nil
}

// certificatesOf are the Certificates a solver object served: its label's
// one, else those a shared solver lists in its annotation.
func certificatesOf(m metav1.ObjectMeta) []string {
	if c := m.Labels[LabelCertificate]; c != "" {
		return []string{c}
	}
	var out []string
	for _, c := range strings.Split(m.Annotations[AnnotationCertificates], ",") {
		if c != "" {
			out = append(out, c)
		}
	}
	return out
}

// challengeBackends are the solver Services the challenge paths of ing
// route to.
func challengeBackends(ing *networkingv1.Ingress) []string {
	var out []string
	for _, r := range ing.Spec.Rules {
		if r.HTTP == nil {
			continue
		}
		for _, p := range r.HTTP.Paths {
			if b := p.Backend.Service; b != nil && strings.HasPrefix(p.Path, ChallengePath) && strings.HasPrefix(b.Name, solverNamePrefix) && !slices.Contains(out, b.Name) {
				out = append(out, b.Name)
			}
		}
	}
	return out
}

// removeChallengePaths takes solver's challenge paths out of the user's
// Ingress, and the rules left without paths (which only the solver can
// have added: a rule's http section needs at least one path).
func removeChallengePaths(ctx context.Context, c kubernetes.Interface, o Leftover) error {
	ings := c.NetworkingV1().Ingresses(o.Namespace)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		ing, err := ings.Get(ctx, o.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return kube.Describe(err, "get", "ingresses.networking.k8s.io", o.Namespace)
		}
		changed := false
		var rules []networkingv1.IngressRule
		for _, r := range ing.Spec.Rules {
			if r.HTTP != nil {
				var keep []networkingv1.HTTPIngressPath
				for _, p := range r.HTTP.Paths {
					if b := p.Backend.Service; b != nil && b.Name == o.Solver && strings.HasPrefix(p.Path, ChallengePath) {
						changed = true
						continue
					}
					keep = append(keep, p)
				}
				if len(keep) == 0 {
					continue
				}
				r.HTTP.Paths = keep
			}
			rules = append(rules, r)
		}
		if !changed {
			return nil
		}
		ing.Spec.Rules = rules
		if _, err := ings.Update(ctx, ing, metav1.UpdateOptions{}); err != nil {
			if apierrors.IsConflict(err) {
				return err
			}
			return kube.Describe(err, "update", "ingresses.networking.k8s.io", o.Namespace)
		}
		return nil
	})
}

// createdAt prefers the annotation: it is set by the plugin's clock when
// the order's solver started, the same for all of the order's objects.
func createdAt(m metav1.ObjectMeta) time.Time {
	if v := m.Annotations[AnnotationCreated]; v != "" {
		if t, err := time.Parse(time.RFC3339, v); err == nil {
			return t
		}
	}
	return m.CreationTimestamp.Time
}

// SortLeftovers orders objects by namespace, solver, then deletion order.
func SortLeftovers(l []Leftover) {
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i], l[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Solver != b.Solver {
			return a.Solver < b.Solver
		}
		return kindOrder[a.Kind] < kindOrder[b.Kind]
	})
}

// OlderThan returns the objects created at least d before now.
func OlderThan(l []Leftover, d time.Duration, now time.Time) []Leftover {
	var out []Leftover
	for _, o := range l {
		if now.Sub(o.Created) >= d {
			out = append(out, o)
		}
	}
	return out
}

// DeleteLeftover deletes one solver object; one already gone is not an
// error.
func DeleteLeftover(ctx context.Context, c kubernetes.Interface, dc dynamic.Interface, o Leftover) error {
	if o.Kind == KindIngressPaths {
		return removeChallengePaths(ctx, c, o)
	}
	if err := deleteObject(ctx, c, dc, o.Kind, o.Namespace, o.Name, ""); err != nil {
		resource := o.Kind + "s"
		switch o.Kind {
		case KindIngress:
			resource = "ingresses.networking.k8s.io"
		case KindHTTPRoute:
			resource = "httproutes.gateway.networking.k8s.io"
		case KindNetworkPolicy:
			resource = "networkpolicies.networking.k8s.io"
		}
		return kube.Describe(err, "delete", resource, o.Namespace)
	}
	return nil
}

// deleteObject deletes the solver's pod, Service, Ingress or HTTPRoute
// named name; one already gone (a 404, also for a kind the cluster does
// not serve) is not an error. Pods go without a grace period: they only
// serve public tokens, and a run should not leave a Terminating pod behind.
// A podUID that is set is a precondition: a pod of that name with another
// UID is not the one the run created, and is left alone.
func deleteObject(ctx context.Context, c kubernetes.Interface, dc dynamic.Interface, kind, ns, name string, podUID types.UID) error {
	bg := metav1.DeletePropagationBackground
	opts := metav1.DeleteOptions{PropagationPolicy: &bg}
	var err error
	switch kind {
	case KindIngress:
		err = c.NetworkingV1().Ingresses(ns).Delete(ctx, name, opts)
	case KindHTTPRoute:
		if dc == nil {
			return fmt.Errorf("httproute %s/%s: no client for HTTPRoutes", ns, name)
		}
		err = dc.Resource(HTTPRoutes).Namespace(ns).Delete(ctx, name, opts)
	case KindNetworkPolicy:
		err = c.NetworkingV1().NetworkPolicies(ns).Delete(ctx, name, opts)
	case KindService:
		err = c.CoreV1().Services(ns).Delete(ctx, name, opts)
	case KindPod:
		zero := int64(0)
		opts.GracePeriodSeconds = &zero
		if podUID != "" {
			opts.Preconditions = &metav1.Preconditions{UID: &podUID}
		}
		err = c.CoreV1().Pods(ns).Delete(ctx, name, opts)
		if podUID != "" && apierrors.IsConflict(err) {
			return nil // replaced by someone else's pod
		}
	default:
		return fmt.Errorf("unknown solver object kind %q", kind)
	}
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
