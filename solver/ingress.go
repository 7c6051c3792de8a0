package solver

import (
	"context"
	"fmt"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-acme/kubectl-acme/acme"
	"github.com/kubectl-acme/kubectl-acme/internal/kube"
)

// Ingress solves HTTP-01 challenges with a Pod and a Service, routed to by
// an Ingress of its own or by paths added to an existing one
// (Config.ExistingIngress).
type Ingress struct {
	Workload
	// Classes shares IngressClass reads between the solvers of one
	// command; nil reads for this solver alone.
	Classes *IngressClasses

	edit    *ingressEdit          // what was added to Config.ExistingIngress; guarded by mu
	decided networkingv1.PathType // the challenge paths' type, once decided; guarded by mu
}

var _ acme.Solver = (*Ingress)(nil)

// Present creates the solver objects, waits for the pod to become ready
// and self-checks every challenge URL.
func (s *Ingress) Present(ctx context.Context, chals []acme.Challenge) error {
	if err := s.create(ctx, chals); err != nil {
		return err
	}
	return s.ready(ctx, chals)
}

// Start creates the solver objects for chals, the challenges of several
// orders, and waits for the pod; each order then self-checks its own with
// Check.
func (s *Ingress) Start(ctx context.Context, chals []acme.Challenge) error {
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
func (s *Ingress) Check(ctx context.Context, chals []acme.Challenge, chk *SelfCheck, observe acme.Observer) error {
	return check(ctx, chk, chals, observe)
}

// create creates the pod, the Service and the Ingress, or adds the paths
// to Config.ExistingIngress in one update.
func (s *Ingress) create(ctx context.Context, chals []acme.Challenge) error {
	owner, created, err := s.start(ctx, chals)
	if err != nil {
		return err
	}
	cfg := &s.Config
	ns := cfg.Namespace
	if cfg.ExistingIngress != "" {
		if err := s.addPaths(ctx, chals); err != nil {
			return err
		}
		s.emit(acme.StatePresenting, fmt.Sprintf("created pod, service %s/%s%s", ns, cfg.Name, sharedBy(cfg)))
		return nil
	}
	ing := cfg.ingress(chals, owner, created)
	setPathType(ing, s.pathType(ctx, ingressClassOf(ing)))
	s.track(KindIngress, cfg.Name)
	if _, err := s.Client.NetworkingV1().Ingresses(ns).Create(ctx, ing, metav1.CreateOptions{}); ignoreExists(err) != nil {
		return kube.Describe(err, "create", "ingresses.networking.k8s.io", ns)
	}
	s.emit(acme.StatePresenting, fmt.Sprintf("created pod, service, ingress %s/%s%s", ns, cfg.Name, sharedBy(cfg)))
	return nil
}

// CleanUp deletes every object Present created and takes out the paths it
// added to an existing Ingress.
func (s *Ingress) CleanUp(ctx context.Context) error {
	return s.cleanUp(ctx, s.removePaths)
}
