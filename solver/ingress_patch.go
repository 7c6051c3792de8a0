package solver

import (
	"context"
	"fmt"
	"maps"
	"slices"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/kubectl-acme/kubectl-acme/acme"
	"github.com/kubectl-acme/kubectl-acme/internal/kube"
)

// ingressEdit is what Present added to an existing Ingress (ExistingIngress
// mode), so that CleanUp removes exactly that and leaves the rest, which
// belongs to the user, as it was.
type ingressEdit struct {
	// paths are the challenge paths added, by host ("" for IP identifiers).
	paths map[string][]string
	// newRules are the hosts whose rule Present appended.
	newRules map[string]bool
	// newHTTP are the hosts whose existing rule had no http section.
	newHTTP map[string]bool
}

// challengePaths are the paths for chals, of type t, by host; an IP
// identifier gets the host-less rule (see Config.ingress).
func (c *Config) challengePaths(chals []acme.Challenge, t networkingv1.PathType) map[string][]networkingv1.HTTPIngressPath {
	backend := networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
		Name: c.Name, Port: networkingv1.ServiceBackendPort{Number: httpPort},
	}}
	byHost := map[string][]networkingv1.HTTPIngressPath{}
	for _, ch := range chals {
		host := ch.Identifier
		if ch.IsIP {
			host = ""
		}
		byHost[host] = append(byHost[host], networkingv1.HTTPIngressPath{
			Path: ChallengePath + ch.Token, PathType: &t, Backend: backend,
		})
	}
	return byHost
}

// addPaths adds the challenge paths to the existing Ingress: to the rule
// for each host if there is one, else in a new rule at the end.
func (s *Ingress) addPaths(ctx context.Context, chals []acme.Challenge) error {
	cfg := &s.Config
	ns, name := cfg.Namespace, cfg.ExistingIngress
	ings := s.Client.NetworkingV1().Ingresses(ns)

	// Tracked first: if the update's outcome is unknown (a timeout), the
	// removal in CleanUp is harmless when nothing was added.
	edit := &ingressEdit{paths: map[string][]string{}, newRules: map[string]bool{}, newHTTP: map[string]bool{}}
	s.mu.Lock()
	s.edit = edit
	s.mu.Unlock()
	s.track(KindIngressPaths, name)

	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		ing, err := ings.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("ingress %s/%s (http01.ingress.name of the issuer's solver) does not exist", ns, name)
		}
		if err != nil {
			return kube.Describe(err, "get", "ingresses.networking.k8s.io", ns)
		}
		// The user's Ingress names the class, so the controller that
		// must route (and may admit) the paths.
		byHost := cfg.challengePaths(chals, s.pathType(ctx, ingressClassOf(ing)))
		e := addChallengePaths(ing, byHost)
		s.mu.Lock()
		*edit = e
		s.mu.Unlock()
		if _, err := ings.Update(ctx, ing, metav1.UpdateOptions{}); err != nil {
			if apierrors.IsConflict(err) {
				return err
			}
			return kube.Describe(err, "update", "ingresses.networking.k8s.io", ns)
		}
		s.emit(acme.StatePresenting, fmt.Sprintf("added %d challenge path(s) to ingress %s/%s", len(chals), ns, name))
		return nil
	})
}

// addChallengePaths adds the paths to ing: to the rule for each host if
// there is one, else in a new rule at the end. It returns what it changed,
// for CleanUp to undo; the server dry run makes the same edit and ignores it.
func addChallengePaths(ing *networkingv1.Ingress, byHost map[string][]networkingv1.HTTPIngressPath) ingressEdit {
	e := ingressEdit{paths: map[string][]string{}, newRules: map[string]bool{}, newHTTP: map[string]bool{}}
	for _, h := range slices.Sorted(maps.Keys(byHost)) {
		paths := byHost[h]
		for _, p := range paths {
			e.paths[h] = append(e.paths[h], p.Path)
		}
		i := ruleFor(ing, h)
		switch {
		case i < 0:
			ing.Spec.Rules = append(ing.Spec.Rules, networkingv1.IngressRule{
				Host:             h,
				IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: paths}},
			})
			e.newRules[h] = true
		case ing.Spec.Rules[i].HTTP == nil:
			ing.Spec.Rules[i].HTTP = &networkingv1.HTTPIngressRuleValue{Paths: paths}
			e.newHTTP[h] = true
		default:
			ing.Spec.Rules[i].HTTP.Paths = append(ing.Spec.Rules[i].HTTP.Paths, paths...)
		}
	}
	return e
}

// ruleFor is the index of the first rule for host, or -1.
func ruleFor(ing *networkingv1.Ingress, host string) int {
	for i, r := range ing.Spec.Rules {
		if r.Host == host {
			return i
		}
	}
	return -1
}

// removePaths takes out of the existing Ingress exactly what addPaths put
// in: the challenge paths pointing at this solver's Service, the http
// sections and rules it created, nothing else.
func (s *Ingress) removePaths(ctx context.Context) error {
	s.mu.Lock()
	edit := s.edit
	s.mu.Unlock()
	if edit == nil {
		return nil
	}
	cfg := &s.Config
	ns, name := cfg.Namespace, cfg.ExistingIngress
	ings := s.Client.NetworkingV1().Ingresses(ns)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		ing, err := ings.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return kube.Describe(err, "get", "ingresses.networking.k8s.io", ns)
		}
		changed := false
		var rules []networkingv1.IngressRule
		for _, r := range ing.Spec.Rules {
			added := edit.paths[r.Host]
			if r.HTTP != nil && len(added) > 0 {
				var keep []networkingv1.HTTPIngressPath
				for _, p := range r.HTTP.Paths {
					if p.Backend.Service != nil && p.Backend.Service.Name == cfg.Name && contains(added, p.Path) {
						changed = true
						continue
					}
					keep = append(keep, p)
				}
				if len(keep) == 0 && (edit.newRules[r.Host] || edit.newHTTP[r.Host]) {
					if edit.newRules[r.Host] {
						continue
					}
					r.HTTP = nil
				} else {
					r.HTTP.Paths = keep
				}
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
			return kube.Describe(err, "update", "ingresses.networking.k8s.io", ns)
		}
		return nil
	})
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
