package solver

import (
	"context"
	"fmt"
	"sort"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-acme/kubectl-acme/acme/store"
)

// Selector selects every solver object kubectl-acme created, and nothing
// else: other tools' solver pods lack the managed-by label.
const Selector = LabelManagedBy + "=" + ManagedByValue + "," + LabelComponent + "=http01-solver"

// Kinds of solver objects, in the order Leftovers lists them and Delete
// removes them: the anchor ConfigMap last, so an interrupted cleanup still
// leaves the garbage collector something to work from.
const (
	KindIngress   = "ingress"
	KindService   = "service"
	KindPod       = "pod"
	KindConfigMap = "configmap"
)

var kindOrder = map[string]int{KindIngress: 0, KindService: 1, KindPod: 2, KindConfigMap: 3}

// Leftover is one solver object found in the cluster.
type Leftover struct {
	Kind        string
	Namespace   string
	Name        string
	Solver      string // the order's solver name, shared by its objects
	Certificate string
	// Created is the acme.kubectl.io/created annotation, or the object's
	// creationTimestamp when the annotation is missing or unreadable.
	Created time.Time
}

// Leftovers lists every solver object in ns ("" for all namespaces).
func Leftovers(ctx context.Context, c kubernetes.Interface, ns string) ([]Leftover, error) {
	opts := metav1.ListOptions{LabelSelector: Selector}
	var out []Leftover
	add := func(kind string, m metav1.ObjectMeta) {
		out = append(out, Leftover{
			Kind: kind, Namespace: m.Namespace, Name: m.Name,
			Solver: m.Labels[LabelSolver], Certificate: m.Labels[LabelCertificate],
			Created: createdAt(m),
		})
	}
	ings, err := c.NetworkingV1().Ingresses(ns).List(ctx, opts)
	if err != nil {
		return nil, store.Describe(err, "list", "ingresses.networking.k8s.io", ns)
	}
	for _, o := range ings.Items {
		add(KindIngress, o.ObjectMeta)
	}
	svcs, err := c.CoreV1().Services(ns).List(ctx, opts)
	if err != nil {
		return nil, store.Describe(err, "list", "services", ns)
	}
	for _, o := range svcs.Items {
		add(KindService, o.ObjectMeta)
	}
	pods, err := c.CoreV1().Pods(ns).List(ctx, opts)
	if err != nil {
		return nil, store.Describe(err, "list", "pods", ns)
	}
	for _, o := range pods.Items {
		add(KindPod, o.ObjectMeta)
	}
	cms, err := c.CoreV1().ConfigMaps(ns).List(ctx, opts)
	if err != nil {
		return nil, store.Describe(err, "list", "configmaps", ns)
	}
	for _, o := range cms.Items {
		add(KindConfigMap, o.ObjectMeta)
	}
	SortLeftovers(out)
	return out, nil
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
// error. Pods go without a grace period, as in Ingress.CleanUp.
func DeleteLeftover(ctx context.Context, c kubernetes.Interface, o Leftover) error {
	zero := int64(0)
	bg := metav1.DeletePropagationBackground
	opts := metav1.DeleteOptions{PropagationPolicy: &bg}
	var err error
	resource := o.Kind + "s"
	switch o.Kind {
	case KindIngress:
		resource = "ingresses.networking.k8s.io"
		err = c.NetworkingV1().Ingresses(o.Namespace).Delete(ctx, o.Name, opts)
	case KindService:
		err = c.CoreV1().Services(o.Namespace).Delete(ctx, o.Name, opts)
	case KindPod:
		opts.GracePeriodSeconds = &zero
		err = c.CoreV1().Pods(o.Namespace).Delete(ctx, o.Name, opts)
	case KindConfigMap:
		err = c.CoreV1().ConfigMaps(o.Namespace).Delete(ctx, o.Name, opts)
	default:
		return fmt.Errorf("unknown solver object kind %q", o.Kind)
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return store.Describe(err, "delete", resource, o.Namespace)
	}
	return nil
}
