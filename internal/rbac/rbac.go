// Package rbac knows the Kubernetes permissions kubectl-acme's commands
// need, reviews them for the current user with SelfSubjectAccessReviews,
// and builds the minimal Role that grants them. It is the single list of
// those permissions: docs/rbac.md shows what Role prints.
package rbac

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"golang.org/x/sync/errgroup"

	"github.com/kubectl-acme/kubectl-acme/internal/store"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Permission is one verb on one resource in one namespace.
type Permission struct {
	Verb      string
	Group     string // "" for the core group
	Resource  string
	Namespace string
	// Name limits the permission to one object (a Role's resourceNames).
	Name string
	// Optional permissions make a command more careful, not possible:
	// without them it warns and goes on, so Missing leaves them out.
	Optional bool
}

// ResourceName is the resource as kubectl writes it: pods,
// ingresses.networking.k8s.io.
func (p Permission) ResourceName() string {
	if p.Group == "" {
		return p.Resource
	}
	return p.Resource + "." + p.Group
}

func (p Permission) String() string {
	if p.Name != "" {
		return fmt.Sprintf("%s %s %s in namespace %q", p.Verb, p.ResourceName(), p.Name, p.Namespace)
	}
	return fmt.Sprintf("%s %s in namespace %q", p.Verb, p.ResourceName(), p.Namespace)
}

// Command is a kubectl-acme activity with its own needs.
type Command string

// The commands whose permissions Needs knows.
const (
	// Issue is `issue` of one certificate, and `renew` of named ones.
	Issue Command = "issue"
	// Renew is `renew --all`: Issue plus listing certificates.
	Renew        Command = "renew"
	Status       Command = "status"
	CreateIssuer Command = "create issuer"
	Cleanup      Command = "cleanup"
	// Scheduled is what `renew --scheduled` (the CronJob of `kubectl acme
	// schedule`) adds to Renew: a Warning Event for each failed renewal.
	Scheduled Command = "scheduled renew"
	// Several is what a run of several certificates (apply, renew --all,
	// issue --ingress) adds to Issue: its Leases go in one request at the
	// end. Without it each is deleted by itself, so only the commands with
	// a preflight (issue --ingress, renew --scheduled) insist on it.
	Several Command = "several certificates"
)

// Everyday are the commands a namespace's user runs: `check` reviews them.
var Everyday = []Command{CreateIssuer, Issue, Several, Renew, Status, Cleanup}

const (
	coordination = "coordination.k8s.io"
	networking   = "networking.k8s.io"
	gateway      = "gateway.networking.k8s.io"
)

type need struct {
	group, resource string
	verbs           []string
}

// needs lists what each command does in its namespace; store, solver and
// issuance are the code behind each line.
var needs = map[Command][]need{
	Issue: {
		// The Issuer (get) and the Certificate (get, create/update).
		{"", "configmaps", []string{"get", "create", "update"}},
		// The account key (get), the issued certificate (get, create, update).
		{"", "secrets", []string{"get", "create", "update"}},
		// The solver pod (the order's anchor), watched until it is ready.
		{"", "pods", []string{"watch", "create", "delete"}},
		{"", "services", []string{"create", "delete"}},
		{networking, "ingresses", []string{"create", "delete"}},
		// One issuer of a certificate at a time.
		{coordination, "leases", []string{"get", "create", "update", "delete"}},
	},
	// The run's Leases, by its label, at its end.
	Several:      {{coordination, "leases", []string{"deletecollection"}}},
	Renew:        {{"", "configmaps", []string{"list"}}},
	Scheduled:    {{"", "events", []string{"create"}}},
	Status:       {{"", "configmaps", []string{"get", "list"}}, {"", "secrets", []string{"get"}}},
	CreateIssuer: {{"", "configmaps", []string{"get", "create", "update"}}, {"", "secrets", []string{"get", "create"}}},
	Cleanup: {
		{"", "pods", []string{"list", "delete"}},
		{"", "services", []string{"list", "delete"}},
		{networking, "ingresses", []string{"list", "delete"}},
		// Held leases protect a run's objects; expired ones a killed run left are deleted.
		{coordination, "leases", []string{"get", "list", "delete"}},
	},
}

// Scope says where the commands run.
type Scope struct {
	Namespace string
	// ClusterIssuer, when set, adds what using this ClusterIssuer needs in
	// ClusterNamespace: reading its ConfigMap and its account key Secret,
	// and nothing else there (other ClusterIssuers' account keys stay out
	// of reach).
	ClusterIssuer    string
	ClusterNamespace string
	// AccountKeySecret is the ClusterIssuer's account key Secret; its name
	// when empty.
	AccountKeySecret string
	// PatchedIngresses are existing Ingresses the issuer's solvers add
	// their challenge paths to (http01.ingress.name): issuing, and cleaning
	// up after a killed issue, then need get and update on them, by name.
	PatchedIngresses []string
	// NoNewIngresses: every solver patches an existing Ingress or routes
	// through an HTTPRoute, so issuing creates and deletes no Ingress.
	NoNewIngresses bool
	// SolverTraffic: the solvers may add a temporary NetworkPolicy
	// admitting the solver's traffic (--allow-solver-traffic), which
	// issuing creates and deletes, and cleanup lists and deletes.
	SolverTraffic bool
	// HTTPRoutes: a solver routes through HTTPRoutes
	// (http01.gatewayHTTPRoute), which issuing creates and deletes, and
	// cleanup lists and deletes.
	HTTPRoutes bool
}

// Needs returns the permissions cmds need in scope, without duplicates,
// in a stable order (namespace, group, resource, verb as in verbOrder).
func Needs(scope Scope, cmds ...Command) []Permission {
	seen := map[Permission]bool{}
	var out []Permission
	add := func(p Permission) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, c := range cmds {
		for _, n := range needs[c] {
			if c == Issue && n.resource == "ingresses" && scope.NoNewIngresses {
				continue
			}
			for _, v := range n.verbs {
				add(Permission{Verb: v, Group: n.group, Resource: n.resource, Namespace: scope.Namespace})
			}
		}
		if c == Issue {
			// NetworkPolicies that would drop the CA's requests to the
			// solver pod are found before ordering; without this they
			// go unchecked, with a warning.
			add(Permission{Verb: "list", Group: networking, Resource: "networkpolicies", Namespace: scope.Namespace, Optional: true})
		}
		if scope.SolverTraffic {
			verbs := map[Command][]string{Issue: {"create", "delete"}, Cleanup: {"list", "delete"}}[c]
			for _, v := range verbs {
				add(Permission{Verb: v, Group: networking, Resource: "networkpolicies", Namespace: scope.Namespace})
			}
		}
		if scope.HTTPRoutes {
			verbs := map[Command][]string{Issue: {"create", "delete"}, Cleanup: {"list", "delete"}}[c]
			for _, v := range verbs {
				add(Permission{Verb: v, Group: gateway, Resource: "httproutes", Namespace: scope.Namespace})
			}
		}
		if c == Issue || c == Cleanup {
			for _, name := range scope.PatchedIngresses {
				for _, v := range []string{"get", "update"} {
					add(Permission{Verb: v, Group: networking, Resource: "ingresses", Namespace: scope.Namespace, Name: name})
				}
			}
		}
	}
	if iss := scope.ClusterIssuer; iss != "" {
		secret := scope.AccountKeySecret
		if secret == "" {
			secret = iss
		}
		add(Permission{Verb: "get", Resource: "configmaps", Namespace: scope.ClusterNamespace, Name: store.IssuerConfigMapName(iss, true)})
		add(Permission{Verb: "get", Resource: "secrets", Namespace: scope.ClusterNamespace, Name: secret})
	}
	Sort(out)
	return out
}

// verbOrder is the order verbs are listed in, as Roles usually do.
var verbOrder = map[string]int{"get": 0, "list": 1, "watch": 2, "create": 3, "update": 4, "patch": 5, "delete": 6, "deletecollection": 7}

// resourceOrder lists stored state first, then the solver's objects.
var resourceOrder = map[string]int{"configmaps": 0, "secrets": 1, "pods": 2, "services": 3, "ingresses": 4, "httproutes": 5, "networkpolicies": 6, "leases": 7, "events": 8}

// Sort orders permissions by namespace, resource and verb.
func Sort(ps []Permission) {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Resource != b.Resource {
			ra, oka := resourceOrder[a.Resource]
			rb, okb := resourceOrder[b.Resource]
			if oka && okb {
				return ra < rb
			}
			return a.Resource < b.Resource
		}
		if a.Group != b.Group {
			return a.Group < b.Group
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return verbOrder[a.Verb] < verbOrder[b.Verb]
	})
}

// Result is a reviewed permission.
type Result struct {
	Permission
	Allowed bool
	// Reason is the authorizer's explanation, when it gave one.
	Reason string
}

// reviewConcurrency bounds the SelfSubjectAccessReviews in flight.
const reviewConcurrency = 8

// Review asks the API server whether the current user has each
// permission. Reviews are not stored: they create nothing. One
// SelfSubjectRulesReview per namespace settles most permissions; only those
// its rules do not grant (or all, when the authorizer cannot list rules)
// get a SelfSubjectAccessReview each, which is the authoritative answer.
func Review(ctx context.Context, c kubernetes.Interface, ps []Permission) ([]Result, error) {
	out, _, err := ReviewRules(ctx, c, ps)
	return out, err
}

// Rules is what the SelfSubjectRulesReview of one namespace said, kept so
// that a command can skip a request its rules show would be forbidden.
type Rules struct {
	// exhaustive: the review answered and its authorizers listed every
	// rule (status.incomplete false), so a permission no rule grants is
	// one the user lacks. A webhook authorizer (GKE's IAM, for one) makes
	// the review incomplete.
	exhaustive bool
	rules      []authorizationv1.ResourceRule
}

// Denies reports whether the rules show for certain that the user may not
// verb resource in group (the object name, or "" for a list): the review
// was exhaustive and no rule grants it. A nil Rules denies nothing. Rules of a namespace include those of
// ClusterRoleBindings, which are the only ones that reach a cluster-scoped
// resource such as IngressClasses.
func (r *Rules) Denies(verb, group, resource, name string) bool {
	if r == nil || !r.exhaustive {
		return false
	}
	return !rulesAllow(r.rules, Permission{Verb: verb, Group: group, Resource: resource, Name: name})
}

// ReviewRules is Review that also returns the rules review of each
// namespace that answered, by namespace.
func ReviewRules(ctx context.Context, c kubernetes.Interface, ps []Permission) ([]Result, map[string]*Rules, error) {
	out := make([]Result, len(ps))
	var ask []int
	rules := map[string][]authorizationv1.ResourceRule{}
	complete := map[string]bool{}
	reviews := map[string]*Rules{}
	for i, p := range ps {
		if _, seen := complete[p.Namespace]; !seen {
			r, err := c.AuthorizationV1().SelfSubjectRulesReviews().Create(ctx, &authorizationv1.SelfSubjectRulesReview{
				Spec: authorizationv1.SelfSubjectRulesReviewSpec{Namespace: p.Namespace},
			}, metav1.CreateOptions{})
			complete[p.Namespace] = err == nil
			if err == nil {
				rules[p.Namespace] = r.Status.ResourceRules
				reviews[p.Namespace] = &Rules{exhaustive: !r.Status.Incomplete, rules: r.Status.ResourceRules}
			}
		}
		if complete[p.Namespace] && rulesAllow(rules[p.Namespace], p) {
			out[i] = Result{Permission: p, Allowed: true}
			continue
		}
		if complete[p.Namespace] && p.Optional {
			// Not worth a request of its own: a wrong "no" costs a
			// warning, not the command.
			out[i] = Result{Permission: p}
			continue
		}
		ask = append(ask, i)
	}
	if len(ask) == 0 {
		return out, reviews, nil
	}
	reviewed, err := accessReviews(ctx, c, ps, ask)
	if err != nil {
		return nil, nil, err
	}
	for _, i := range ask {
		out[i] = reviewed[i]
	}
	return out, reviews, nil
}

// rulesAllow reports whether a rules review's rules grant p.
func rulesAllow(rules []authorizationv1.ResourceRule, p Permission) bool {
	for _, r := range rules {
		if has(r.Verbs, p.Verb) && has(r.APIGroups, p.Group) && has(r.Resources, p.Resource) &&
			(len(r.ResourceNames) == 0 || (p.Name != "" && slices.Contains(r.ResourceNames, p.Name))) {
			return true
		}
	}
	return false
}

// accessReviews runs one SelfSubjectAccessReview for each ps[i], i in idx.
func accessReviews(ctx context.Context, c kubernetes.Interface, ps []Permission, idx []int) ([]Result, error) {
	out := make([]Result, len(ps))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(reviewConcurrency)
	for _, i := range idx {
		p := ps[i]
		g.Go(func() error {
			r, err := c.AuthorizationV1().SelfSubjectAccessReviews().Create(gctx, &authorizationv1.SelfSubjectAccessReview{
				Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
					Namespace: p.Namespace, Verb: p.Verb, Group: p.Group, Resource: p.Resource, Name: p.Name,
				}},
			}, metav1.CreateOptions{})
			if err != nil {
				return fmt.Errorf("review whether you may %s: %w", p, err)
			}
			out[i] = Result{Permission: p, Allowed: r.Status.Allowed, Reason: r.Status.Reason}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// Missing returns the permissions of rs that are not allowed.
func Missing(rs []Result) []Permission {
	var out []Permission
	for _, r := range rs {
		if !r.Allowed && !r.Optional {
			out = append(out, r.Permission)
		}
	}
	return out
}

// RoleName is the name of the Roles Roles builds.
const RoleName = "kubectl-acme"

// Roles builds one Role per namespace granting exactly ps: one rule per
// resource, its verbs in the usual order.
func Roles(name string, ps []Permission) []*rbacv1.Role {
	ps = slices.Clone(ps)
	Sort(ps)
	var roles []*rbacv1.Role
	byNS := map[string]*rbacv1.Role{}
	for _, p := range ps {
		role := byNS[p.Namespace]
		if role == nil {
			role = &rbacv1.Role{
				TypeMeta:   metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: "Role"},
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: p.Namespace},
			}
			byNS[p.Namespace] = role
			roles = append(roles, role)
		}
		n := len(role.Rules)
		if n > 0 && role.Rules[n-1].APIGroups[0] == p.Group && role.Rules[n-1].Resources[0] == p.Resource && ruleName(role.Rules[n-1]) == p.Name {
			role.Rules[n-1].Verbs = append(role.Rules[n-1].Verbs, p.Verb)
			continue
		}
		rule := rbacv1.PolicyRule{APIGroups: []string{p.Group}, Resources: []string{p.Resource}, Verbs: []string{p.Verb}}
		if p.Name != "" {
			rule.ResourceNames = []string{p.Name}
		}
		role.Rules = append(role.Rules, rule)
	}
	return roles
}

// Granted expands Role rules into the permissions they grant among want;
// the inverse of Roles, for tests and for reading a Role back.
func Granted(role *rbacv1.Role, want []Permission) []Permission {
	var out []Permission
	for _, p := range want {
		if p.Namespace != role.Namespace {
			continue
		}
		for _, r := range role.Rules {
			if has(r.APIGroups, p.Group) && has(r.Resources, p.Resource) && has(r.Verbs, p.Verb) &&
				(len(r.ResourceNames) == 0 || slices.Contains(r.ResourceNames, p.Name)) {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

func ruleName(r rbacv1.PolicyRule) string {
	if len(r.ResourceNames) == 1 {
		return r.ResourceNames[0]
	}
	return ""
}

func has(list []string, v string) bool {
	return slices.Contains(list, v) || slices.Contains(list, "*")
}
