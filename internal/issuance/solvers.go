package issuance

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"golang.org/x/sync/errgroup"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/kubectl-acme/kubectl-acme/acme"
	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/solver"
)

// newSolver builds the Solver for cert's order from the issuer's solvers:
// each name goes to the solver cert-manager would pick for it (see
// certmanager.SelectSolver), and each picked solver gets its own pod, service and
// ingress or HTTPRoute. It fails before any order when a name has no
// solver.
func newSolver(o *Options, iss *certmanager.Issuer, cert *certmanager.Certificate) (acme.Solver, error) {
	m, err := buildSolvers(o, iss, cert)
	if err != nil {
		return nil, err
	}
	if o.group != nil {
		// The run shares solver workloads between its orders.
		ms := &memberSolver{j: o.group, m: m}
		if len(m.all) == 1 {
			ms.single = m.all[0]
		}
		return ms, nil
	}
	if len(m.all) == 1 {
		return m.all[0], nil
	}
	return m, nil
}

// buildSolvers is newSolver's solvers for cert's names, each its own.
func buildSolvers(o *Options, iss *certmanager.Issuer, cert *certmanager.Certificate) (*multiSolver, error) {
	picks, err := certmanager.SolversFor(iss, cert)
	if err != nil {
		return nil, err
	}
	if pt := iss.IngressPathType(); pt != "" && o.IngressPathType == "" {
		if err := certmanager.ValidateIngressPathType("issuer "+iss.Name+": annotation "+certmanager.AnnotationIngressPathType, pt); err != nil {
			return nil, err
		}
	}
	m := &multiSolver{byName: map[string]acme.Solver{}, iss: iss, cert: cert, o: o}
	byIndex := map[int]acme.Solver{}
	var order []int
	for _, i := range picks {
		if _, ok := byIndex[i]; !ok {
			order = append(order, i)
			byIndex[i] = nil
		}
	}
	sort.Ints(order)
	for _, i := range order {
		// Annotations on the Certificate may override the picked solver's
		// ingress, as in cert-manager (ingress-shim's edit-in-place).
		sv, err := certmanager.IngressOverrides(iss.Spec.ACME.Solvers[i], cert.Annotations)
		if err != nil {
			return nil, fmt.Errorf("certificate %q: %w", cert.Name, err)
		}
		// ... and its HTTPRoute's parent (cert-manager 1.20+).
		if sv, err = certmanager.ParentRefOverrides(sv, cert.Annotations, cert.Namespace); err != nil {
			return nil, fmt.Errorf("certificate %q: %w", cert.Name, err)
		}
		byIndex[i] = m.solverFor(sv)
		m.all = append(m.all, byIndex[i])
	}
	for name, i := range picks {
		m.byName[name] = byIndex[i]
	}
	return m, nil
}

// solverOf is the solver of a name, which the CA may spell in another
// case.
func (m *multiSolver) solverOf(name string) acme.Solver {
	if sv := m.byName[name]; sv != nil {
		return sv
	}
	return m.byName[strings.ToLower(name)]
}

// solverFor is the Ingress or HTTPRoute solver for one solver entry of an
// issuer.
func (m *multiSolver) solverFor(sv certmanager.ACMEChallengeSolver) acme.Solver {
	cfg := solver.Config{
		Namespace:   m.cert.Namespace,
		Name:        solverName(m.cert.Name),
		Certificate: m.cert.Name,
		Image:       m.o.SolverImage,
		// The flags win over the issuer's annotations.
		AllowSolverTraffic:         m.o.AllowSolverTraffic || m.iss.Annotations[solver.AnnotationAllowSolverTraffic] == "true",
		IngressControllerNamespace: m.o.IngressControllerNamespace,
	}
	if cfg.IngressControllerNamespace == "" {
		cfg.IngressControllerNamespace = m.iss.Annotations[solver.AnnotationIngressControllerNamespace]
	}
	if sv.IsGatewayHTTPRoute() {
		rt := sv.HTTP01.GatewayHTTPRoute
		cfg.ParentRefs = rt.ParentRefs
		cfg.RouteLabels = rt.Labels
		cfg.ServiceType = rt.ServiceType
		cfg.PodTemplate = rt.PodTemplate
		return &solver.HTTPRoute{Workload: m.workload(cfg, sv)}
	}
	if sv.HTTP01 != nil && sv.HTTP01.Ingress != nil {
		in := sv.HTTP01.Ingress
		switch {
		case in.Name != "":
			cfg.ExistingIngress = in.Name
		case in.IngressClassName != nil:
			cfg.IngressClassName = *in.IngressClassName
		case in.Class != nil:
			cfg.LegacyClass = *in.Class
		}
		cfg.ServiceType = in.ServiceType
		cfg.PodTemplate = in.PodTemplate
		cfg.IngressTemplate = in.IngressTemplate
	}
	// The command's flag, then the issuer's annotation; else the solver
	// decides by the ingress class's controller.
	pt := m.o.IngressPathType
	if pt == "" {
		pt = m.iss.IngressPathType()
	}
	cfg.PathType = networkingv1.PathType(pt)
	return &solver.Ingress{Workload: m.workload(cfg, sv), Classes: m.o.IngressClasses}
}

// workload is what both kinds of solver share: the pod, Service and
// self-check.
func (m *multiSolver) workload(cfg solver.Config, sv certmanager.ACMEChallengeSolver) solver.Workload {
	chk := &solver.SelfCheck{ConnectTo: m.o.ConnectTo, Timeout: m.o.SelfCheckTimeout, WaitInstead: m.o.WaitInsteadOfSelfCheck}
	if chk.WaitInstead == nil && sv.WaitInsteadOfSelfCheck != nil {
		d := sv.WaitInsteadOfSelfCheck.Duration
		chk.WaitInstead = &d
	}
	// Without the self-check only the probe keeps the CA from asking
	// before httpd listens.
	cfg.ReadinessProbe = chk.WaitInstead != nil
	return solver.Workload{
		Client:   m.o.Store.Client,
		Dynamic:  m.o.Store.Dynamic,
		Config:   cfg,
		Checker:  chk,
		Observe:  m.o.Observe,
		Policies: m.o.NetworkPolicies,
	}
}

// multiSolver hands each challenge to the solver picked for its name.
type multiSolver struct {
	byName map[string]acme.Solver
	all    []acme.Solver
	iss    *certmanager.Issuer
	cert   *certmanager.Certificate
	o      *Options
}

var (
	_ acme.Solver     = (*multiSolver)(nil)
	_ solver.Admitter = (*multiSolver)(nil)
)

// Present presents each solver's challenges concurrently; all must pass.
func (m *multiSolver) Present(ctx context.Context, chals []acme.Challenge) error {
	groups := map[acme.Solver][]acme.Challenge{}
	for _, ch := range chals {
		s := m.byName[ch.Identifier]
		if s == nil {
			// The CA may spell a name in another case.
			s = m.byName[strings.ToLower(ch.Identifier)]
		}
		if s == nil {
			return &certmanager.NoSolverError{Issuer: m.iss.Name, Names: []string{ch.Identifier}}
		}
		groups[s] = append(groups[s], ch)
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, s := range m.all {
		if cs := groups[s]; len(cs) > 0 {
			g.Go(func() error { return s.Present(gctx, cs) })
		}
	}
	return g.Wait()
}

// CleanUp cleans up every solver, reporting all failures.
func (m *multiSolver) CleanUp(ctx context.Context) error {
	errs := make([]error, len(m.all))
	var g errgroup.Group
	for i, s := range m.all {
		g.Go(func() error {
			errs[i] = s.CleanUp(ctx)
			return nil
		})
	}
	_ = g.Wait()
	return errors.Join(errs...)
}

// DryRun has each solver's objects judged by the cluster's admission
// chain, concurrently; every denial is reported.
func (m *multiSolver) DryRun(ctx context.Context, chals []acme.Challenge) error {
	groups := map[acme.Solver][]acme.Challenge{}
	for _, ch := range chals {
		if s := m.byName[ch.Identifier]; s != nil {
			groups[s] = append(groups[s], ch)
		}
	}
	errs := make([]error, len(m.all))
	var g errgroup.Group
	for i, s := range m.all {
		a, ok := s.(solver.Admitter)
		if cs := groups[s]; ok && len(cs) > 0 {
			g.Go(func() error {
				errs[i] = a.DryRun(ctx, cs)
				return nil
			})
		}
	}
	_ = g.Wait()
	return errors.Join(errs...)
}

// admit has the solver objects for cert's names judged by the cluster's
// admission chain (webhooks, ValidatingAdmissionPolicies, Pod Security,
// ResourceQuota, LimitRange) with dryRun=All, before any order exists:
// a refusal then costs no order, no authorization and no object.
func admit(ctx context.Context, sv acme.Solver, cert *certmanager.Certificate) error {
	a, ok := sv.(solver.Admitter)
	if !ok {
		return nil
	}
	dns, ips := cert.Spec.Identifiers()
	return a.DryRun(ctx, solver.PlaceholderChallenges(dns, ips))
}

// Admit runs, without creating anything, the checks Issue makes before
// ordering cert from iss: the admission chain's verdict on the solver
// objects (dryRun=All) and the NetworkPolicies' on the solver's traffic.
// apply --dry-run=server and check use it.
func Admit(ctx context.Context, o Options, iss *certmanager.Issuer, cert *certmanager.Certificate) error {
	if iss.Spec.ACME == nil {
		return fmt.Errorf("issuer %q has no acme section", iss.Name)
	}
	sv, err := newSolver(&o, iss, cert)
	if err != nil {
		return err
	}
	return admit(ctx, sv, cert)
}
