package solver

import (
	"context"
	"fmt"
	"strings"
	"sync"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-acme/kubectl-acme/acme"
)

// The challenge path is /.well-known/acme-challenge/<token>: a dot, then a
// base64url token. Which pathType routes it exactly, and is admitted at
// all, depends on the controller behind the ingress class, so it is decided
// from the IngressClass's spec.controller, else from the class name (the
// legacy kubernetes.io/ingress.class annotation has no IngressClass object
// on GKE, and a namespaced Role may not read IngressClasses).
// docs/ingress-path-types.md has the same table with the source of each
// row.

// controllerPathTypes are the controllers whose documented behaviour makes
// Exact the wrong choice, by spec.controller of their IngressClass.
var controllerPathTypes = map[string]pathRule{
	// ingress-nginx >= 1.12 turns strict-validate-path-type on by default:
	// its admission webhook denies an Exact or Prefix path outside
	// (?i)^/[[:alnum:]\_\-/]*$ (internal/ingress/inspector/rules.go,
	// validPathType; checked in inspector.ValidatePathType, which skips
	// ImplementationSpecific). The dot of /.well-known is outside it in
	// 1.12.0-1.12.5 and 1.13.0-1.13.1 (#13798 allowed it from 1.12.6,
	// 1.13.2 and 1.14.0). ImplementationSpecific is an nginx prefix
	// location (docs/user-guide/ingress-path-matching.md), which matches
	// the token's path and nothing shorter, and is what cert-manager
	// used before 1.18 and uses again with ACMEHTTP01IngressPathTypeExact off.
	"k8s.io/ingress-nginx": {networkingv1.PathTypeImplementationSpecific, "ingress-nginx denies Exact paths with a dot (strict-validate-path-type)"},
	// OpenShift's router turns Ingresses into Routes; that conversion does
	// not handle Exact (cert-manager issue #9210).
	"openshift.io/ingress-to-route": {networkingv1.PathTypeImplementationSpecific, "OpenShift's Ingress-to-Route conversion does not support Exact"},
}

// classNamePathTypes are decided by class name alone, when no IngressClass
// object says otherwise: classes whose controller creates none, and the
// default names of the controllers above.
var classNamePathTypes = map[string]pathRule{
	// GKE's ingress is chosen by the kubernetes.io/ingress.class
	// annotation only ("gce", "gce-internal", "gce-regional-external"; an
	// ingressClassName alone is ignored, cloud.google.com/kubernetes-engine/
	// docs/concepts/ingress). Older ingress-gce translates only
	// ImplementationSpecific paths ("only \"ImplementationSpecific\" path
	// type is supported", removed in ingress-gce 79b989c, 2021; seen on
	// GKE 1.20 in cert-manager issue #4371), and an ImplementationSpecific
	// path without "*" is an exact match in a Google Cloud URL map
	// (pkg/controller/translator/translator.go, validateAndGetPaths).
	"gce":                   {networkingv1.PathTypeImplementationSpecific, "GKE's ingress routes ImplementationSpecific paths (cert-manager #4371)"},
	"gce-internal":          {networkingv1.PathTypeImplementationSpecific, "GKE's ingress routes ImplementationSpecific paths (cert-manager #4371)"},
	"gce-regional-external": {networkingv1.PathTypeImplementationSpecific, "GKE's ingress routes ImplementationSpecific paths (cert-manager #4371)"},
	// ingress-nginx's default class (its --ingress-class flag); F5's NGINX
	// Ingress Controller, also "nginx" by default, treats
	// ImplementationSpecific as a prefix too.
	"nginx": {networkingv1.PathTypeImplementationSpecific, "class nginx is ingress-nginx's default name, which denies Exact paths with a dot"},
}

// defaultPathType is for every other controller: Exact is the one path
// type whose meaning the Ingress API itself defines and every controller
// must implement, and what cert-manager uses since 1.18. Traefik, HAProxy
// Technologies', Contour's, Kong's and AGIC's code or docs route it as an
// exact match (docs/ingress-path-types.md cites each); an
// ImplementationSpecific path may be a regex, a prefix or lose to the
// user's own paths (Cilium, cert-manager issue #6805). If a controller
// refuses it, its admission denies the Ingress or the self-check finds no
// route before the CA validates, and the issuer's override
// (certmanager.AnnotationIngressPathType) changes it.
const defaultPathType = networkingv1.PathTypeExact

type pathRule struct {
	pathType networkingv1.PathType
	why      string
}

// PathTypeFor is the path type for a class: by its IngressClass's
// controller when known (controller != ""), else by the class name. why
// says what decided it, for progress output.
func PathTypeFor(controller, className string) (t networkingv1.PathType, why string) {
	if controller != "" {
		if r, ok := controllerPathTypes[controller]; ok {
			return r.pathType, r.why
		}
		return defaultPathType, fmt.Sprintf("controller %s is not known to refuse Exact", controller)
	}
	if r, ok := classNamePathTypes[className]; ok {
		return r.pathType, r.why
	}
	if className == "" {
		return defaultPathType, "no ingress class known"
	}
	return defaultPathType, fmt.Sprintf("class %s is not known to refuse Exact", className)
}

// IngressClasses reads each IngressClass at most once for the solvers of
// one command (apply issues many certificates through the same class).
// A nil *IngressClasses reads per call.
type IngressClasses struct {
	mu      sync.Mutex
	byClass map[string]*classLookup
	denied  func(verb, name string) bool
}

// Deny tells the lookups which reads the user's rules forbid: denied
// reports that the user may not verb ("get", or "list" for the default
// class) the IngressClass name ("" for a list). Such a read is skipped and
// the class name decides, as its Forbidden answer would have; the commands
// know from the SelfSubjectRulesReview their preflight already made, so
// this saves a request that could only fail.
func (ic *IngressClasses) Deny(denied func(verb, name string) bool) {
	ic.mu.Lock()
	ic.denied = denied
	ic.mu.Unlock()
}

type classLookup struct {
	once       sync.Once
	controller string
	name       string // the class's name; for the default class, found by listing
}

// controller returns the controller and name of class ("" for the
// cluster's default IngressClass), or "" when it cannot be read: a missing
// IngressClass, or a Role without get/list on ingressclasses, falls back
// to the class name. It costs one request, a GET, or for the default class
// a LIST, unless Deny says it would be forbidden.
func (ic *IngressClasses) controller(ctx context.Context, client kubernetes.Interface, class string) (controller, name string) {
	var l *classLookup
	var denied func(verb, name string) bool
	if ic == nil {
		l = &classLookup{}
	} else {
		ic.mu.Lock()
		if ic.byClass == nil {
			ic.byClass = map[string]*classLookup{}
		}
		if l = ic.byClass[class]; l == nil {
			l = &classLookup{}
			ic.byClass[class] = l
		}
		denied = ic.denied
		ic.mu.Unlock()
	}
	l.once.Do(func() {
		switch {
		// What lookupClass answers when the read is Forbidden.
		case denied != nil && class != "" && denied("get", class):
			l.controller, l.name = "", class
		case denied != nil && class == "" && denied("list", ""):
			l.controller, l.name = "", ""
		default:
			l.controller, l.name = lookupClass(ctx, client, class)
		}
	})
	return l.controller, l.name
}

func lookupClass(ctx context.Context, client kubernetes.Interface, class string) (controller, name string) {
	classes := client.NetworkingV1().IngressClasses()
	if class != "" {
		ic, err := classes.Get(ctx, class, metav1.GetOptions{})
		if err != nil {
			// NotFound (GKE's classes are annotation values), Forbidden
			// (a namespaced Role) or anything else: the name decides.
			return "", class
		}
		return ic.Spec.Controller, class
	}
	list, err := classes.List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", ""
	}
	// The DefaultIngressClass admission plugin gives a class-less Ingress
	// the default class; with several marked default, it refuses the
	// Ingress, so any of them will do here.
	for _, c := range list.Items {
		if strings.EqualFold(c.Annotations[networkingv1.AnnotationIsDefaultIngressClass], "true") {
			return c.Spec.Controller, c.Name
		}
	}
	return "", ""
}

// pathType decides the challenge paths' type for an Ingress of class
// ("" for the cluster's default class): the
// override in Config.PathType, else by the class's controller. It reports
// the decision once per solver.
func (s *Ingress) pathType(ctx context.Context, class string) networkingv1.PathType {
	s.mu.Lock()
	decided := s.decided
	s.mu.Unlock()
	if decided != "" {
		return decided
	}
	t, why := s.Config.PathType, "set on the issuer or with --ingress-path-type"
	if t == "" {
		t, why = PathTypeFor(s.Classes.controller(ctx, s.Client, class))
	}
	s.mu.Lock()
	s.decided = t
	s.mu.Unlock()
	s.emit(acme.StatePresenting, fmt.Sprintf("challenge paths use pathType %s: %s", t, why))
	return t
}

// ingressClassOf is the class an Ingress names: the legacy annotation
// first, as controllers read it, then spec.ingressClassName; "" for none.
func ingressClassOf(ing *networkingv1.Ingress) string {
	if v, ok := ing.Annotations[legacyClassAnnotation]; ok {
		return v
	}
	if ing.Spec.IngressClassName != nil {
		return *ing.Spec.IngressClassName
	}
	return ""
}

const legacyClassAnnotation = "kubernetes.io/ingress.class"
