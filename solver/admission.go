package solver

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"

	"github.com/kubectl-acme/kubectl-acme/acme"
	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/kube"
)

// Admitter is a solver whose objects the cluster's admission chain can
// judge before any order exists: DryRun sends, with dryRun=All, the very
// objects Present would create for chals, and fails with an
// *AdmissionError when one is denied. Nothing is stored.
type Admitter interface {
	DryRun(ctx context.Context, chals []acme.Challenge) error
}

var (
	_ Admitter = (*Ingress)(nil)
	_ Admitter = (*HTTPRoute)(nil)
)

// placeholderTokenLen is the length of the tokens CAs send: 32 random
// bytes in base64url (Let's Encrypt's boulder and Pebble both), RFC 8555
// section 8.3 asking for at least 128 bits.
const placeholderTokenLen = 43

// PlaceholderChallenges stand in for the challenges of an order not yet
// placed, one per identifier: tokens of a CA's length and alphabet, key
// authorizations of the real form (token "." 43-character thumbprint), so
// that names, paths and annotations have the size and shape admission will
// see on the real objects.
func PlaceholderChallenges(dnsNames, ips []string) []acme.Challenge {
	var out []acme.Challenge
	add := func(id string, ip bool) {
		tok := randomToken()
		out = append(out, acme.Challenge{Identifier: id, IsIP: ip, Token: tok, KeyAuthorization: tok + "." + randomToken()})
	}
	for _, d := range dnsNames {
		add(strings.ToLower(d), false)
	}
	for _, ip := range ips {
		add(ip, true)
	}
	return out
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)[:placeholderTokenLen]
}

// DryRun sends the pod, Service and Ingress (or the update adding the
// challenge paths to Config.ExistingIngress) with dryRun=All.
func (s *Ingress) DryRun(ctx context.Context, chals []acme.Challenge) error {
	cfg := &s.Config
	ns := cfg.Namespace
	return s.dryRun(ctx, chals, func(ctx context.Context, owner *metav1.OwnerReference, created string) error {
		dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
		if cfg.ExistingIngress == "" {
			ing := cfg.ingress(chals, owner, created)
			setPathType(ing, s.pathType(ctx, ingressClassOf(ing)))
			_, err := s.Client.NetworkingV1().Ingresses(ns).Create(ctx, ing, dry)
			return Admission(err, "ingress", ns, ing.Name, "create")
		}
		ings := s.Client.NetworkingV1().Ingresses(ns)
		ing, err := ings.Get(ctx, cfg.ExistingIngress, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("ingress %s/%s (http01.ingress.name of the issuer's solver) does not exist", ns, cfg.ExistingIngress)
		}
		if err != nil {
			return Admission(err, "ingress", ns, cfg.ExistingIngress, "get")
		}
		addChallengePaths(ing, cfg.challengePaths(chals, s.pathType(ctx, ingressClassOf(ing))))
		_, err = ings.Update(ctx, ing, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}})
		return Admission(err, "ingress", ns, ing.Name, "update")
	})
}

// DryRun sends the pod, Service and HTTPRoutes with dryRun=All.
func (s *HTTPRoute) DryRun(ctx context.Context, chals []acme.Challenge) error {
	if s.Dynamic == nil {
		return errors.New("the HTTPRoute solver has no dynamic client")
	}
	ns := s.Config.Namespace
	return s.dryRun(ctx, chals, func(ctx context.Context, owner *metav1.OwnerReference, created string) error {
		var errs []error
		for _, hr := range s.Config.httpRoutes(chals, owner, created) {
			m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(hr)
			if err != nil {
				return fmt.Errorf("encode httproute %s/%s: %w", ns, hr.Name, err)
			}
			_, err = s.Dynamic.Resource(HTTPRoutes).Namespace(ns).Create(ctx, &unstructured.Unstructured{Object: m}, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			if kindNotServed(err) {
				return fmt.Errorf("create httproute %s/%s: %w", ns, hr.Name, ErrHTTPRouteNotServed)
			}
			errs = append(errs, Admission(err, "httproute", ns, hr.Name, "create"))
		}
		return errors.Join(errs...)
	})
}

// dryRun sends the pod, the Service and, through route, what routes to
// them, concurrently: they are independent, as the real ones are not (the
// pod's UID owns the others), so a made-up UID stands in for the pod's.
// Every denial is reported, not only the first.
func (w *Workload) dryRun(ctx context.Context, chals []acme.Challenge, route func(context.Context, *metav1.OwnerReference, string) error) error {
	for _, ch := range chals {
		if !tokenPattern.MatchString(ch.Token) {
			return fmt.Errorf("challenge token %q for %s is not base64url", ch.Token, ch.Identifier)
		}
	}
	cfg := &w.Config
	ns := cfg.Namespace
	created := w.now().UTC().Format(time.RFC3339)
	owner := &metav1.OwnerReference{APIVersion: "v1", Kind: "Pod", Name: cfg.Name, UID: types.UID(uuid.NewUUID())}
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	pod := cfg.pod(chals, created)
	errs := make([]error, 4)
	smallCPU := false
	var traffic TrafficVerdict
	var wg sync.WaitGroup
	wg.Add(4)
	go func() {
		defer wg.Done()
		var err error
		_, smallCPU, err = createPod(ctx, w.Client.CoreV1().Pods(ns), cfg, pod, chals, created, dry)
		errs[0] = Admission(err, "pod", ns, cfg.Name, "create")
	}()
	go func() {
		defer wg.Done()
		traffic, errs[3] = w.checkTraffic(ctx, pod.Labels)
	}()
	go func() {
		defer wg.Done()
		_, err := w.Client.CoreV1().Services(ns).Create(ctx, cfg.service(owner, created), dry)
		errs[1] = Admission(err, "service", ns, cfg.Name, "create")
	}()
	go func() {
		defer wg.Done()
		errs[2] = route(ctx, owner, created)
	}()
	wg.Wait()
	if smallCPU {
		cfg.CertManagerCPU = true
	}
	if errs[3] == nil {
		errs[3] = w.judgeTraffic(ctx, traffic, owner, created)
	}
	var denied []error
	for _, err := range flatten(errors.Join(errs...)) {
		var ae *AdmissionError
		if errors.As(err, &ae) && ae.Unjudged {
			w.emit(acme.StatePending, "warning: "+ae.Error())
			continue
		}
		denied = append(denied, err)
	}
	return errors.Join(denied...)
}

// flatten undoes errors.Join, at any depth.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// judgeTraffic acts on what the NetworkPolicies make of the solver's
// traffic: blocked fails the run, unless the issuer or user opted in to a
// temporary policy, which is then dry-run too and created by Present;
// unknown and unchecked are warnings.
func (w *Workload) judgeTraffic(ctx context.Context, v TrafficVerdict, owner *metav1.OwnerReference, created string) error {
	cfg := &w.Config
	ns := cfg.Namespace
	switch {
	case v.Traffic == TrafficAdmitted:
		return nil
	case !cfg.AllowSolverTraffic && v.Traffic == TrafficBlocked:
		return &TrafficError{Namespace: ns, Policies: v.Isolating}
	case !cfg.AllowSolverTraffic && v.Traffic == TrafficUnknown:
		w.emit(acme.StatePending, fmt.Sprintf("warning: NetworkPolicies %s select the solver pod and admit only some sources to its port %d: "+
			"if the ingress controller is not among them, validation will time out (--allow-solver-traffic adds a temporary policy; --ingress-controller-namespace lets kubectl acme judge this)",
			strings.Join(v.Partial, ", "), httpPort))
		return nil
	case !cfg.AllowSolverTraffic:
		w.emit(acme.StatePending, "warning: NetworkPolicies not checked: "+v.Why)
		return nil
	}
	np := cfg.networkPolicy(owner, created)
	_, err := w.Client.NetworkingV1().NetworkPolicies(ns).Create(ctx, np, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		return Admission(err, "networkpolicy", ns, np.Name, "create")
	}
	w.mu.Lock()
	w.openTraffic = true
	w.mu.Unlock()
	return nil
}

// AdmissionError is a solver object the API server refused: who refused
// it (a webhook, a ValidatingAdmissionPolicy and its binding, Pod
// Security, a ResourceQuota, a LimitRange, RBAC), its message, and what
// to change.
type AdmissionError struct {
	Kind, Namespace, Name string
	Verb                  string // create or update
	// By names who denied the request.
	By string
	// Message is the denial's own words.
	Message string
	// Fix says what to change.
	Fix string
	// Unjudged marks a request admission could not judge in a dry run
	// (a webhook with side effects): not a denial.
	Unjudged bool
	Err      error
}

func (e *AdmissionError) Error() string {
	what := fmt.Sprintf("%s %s/%s", e.Kind, e.Namespace, e.Name)
	if e.Unjudged {
		return fmt.Sprintf("%s could not be judged before the order: %s: %s", what, e.By, e.Message)
	}
	s := fmt.Sprintf("the cluster refuses the solver's %s: %s denied it: %s", what, e.By, e.Message)
	if e.Fix != "" {
		s += "; fix: " + e.Fix
	}
	return s
}

func (e *AdmissionError) Unwrap() error { return e.Err }

// Patterns of the API server's denial messages, by who writes them.
var (
	// k8s.io/apiserver/pkg/admission/plugin/policy/validating/dispatcher.go:
	// "ValidatingAdmissionPolicy '%s' with binding '%s' denied request: %s".
	vapDenied = regexp.MustCompile(`ValidatingAdmissionPolicy '([^']*)' with binding '([^']*)' denied request: (.*)$`)
	// k8s.io/apiserver/pkg/admission/plugin/webhook/errors/statuserror.go:
	// "admission webhook %q denied the request: %s".
	webhookDenied = regexp.MustCompile(`admission webhook "([^"]*)" denied the request(?:: (.*))?$`)
	// k8s.io/apiserver/pkg/admission/plugin/webhook/generic/webhook.go:
	// webhookerrors.NewDryRunUnsupportedErr: "admission webhook %q does not support dry run".
	webhookNoDryRun = regexp.MustCompile(`admission webhook "([^"]*)" does not support dry run`)
	// k8s.io/pod-security-admission/admission/admission.go:
	// `violates PodSecurity "%s:%s": %s`.
	podSecurity = regexp.MustCompile(`violates PodSecurity "([^"]*)": (.*)$`)
	// k8s.io/apiserver/pkg/admission/plugin/resourcequota/controller.go:
	// "exceeded quota: %s, requested: %s, used: %s, limited: %s" and
	// "failed quota: %s: must specify %s".
	quotaExceeded = regexp.MustCompile(`exceeded quota: ([^,]*), requested: ([^,]*(?:,[^,:]*=[^,]*)*), used: (.*), limited: (.*)$`)
	quotaFailed   = regexp.MustCompile(`failed quota: ([^:]*): (.*)$`)
	// plugin/pkg/admission/limitranger/admission.go: "minimum/maximum
	// %s usage per %s is %s, but ...", "%s max limit to request ratio per
	// %s is %s, but ...".
	limitRange = regexp.MustCompile(`((?:minimum|maximum) \S+ usage per (?:Container|Pod|PersistentVolumeClaim) is .*|\S+ max limit to request ratio per \S+ is .*)$`)
)

// Admission explains a refused request for one solver object: who refused
// it and what to change. Errors that are not denials by admission (RBAC,
// a lost connection) keep kube.Describe's wording. nil stays nil.
func Admission(err error, kind, ns, name, verb string) error {
	if err == nil {
		return nil
	}
	resource := map[string]string{"pod": "pods", "service": "services", "ingress": "ingresses.networking.k8s.io", "httproute": "httproutes.gateway.networking.k8s.io", "networkpolicy": "networkpolicies.networking.k8s.io"}[kind]
	var st apierrors.APIStatus
	if !errors.As(err, &st) {
		return kube.Describe(err, verb, resource, ns)
	}
	msg := st.Status().Message
	e := &AdmissionError{Kind: kind, Namespace: ns, Name: name, Verb: verb, Err: err}
	switch {
	case kube.IsRBACForbidden(err):
		return kube.Describe(err, verb, resource, ns)
	case vapDenied.MatchString(msg):
		m := vapDenied.FindStringSubmatch(msg)
		e.By = fmt.Sprintf("ValidatingAdmissionPolicy %q (binding %q)", m[1], m[2])
		e.Message = m[3]
		e.Fix = policyFix(kind)
	case webhookNoDryRun.MatchString(msg):
		m := webhookNoDryRun.FindStringSubmatch(msg)
		e.By = fmt.Sprintf("admission webhook %q", m[1])
		e.Message = "it declares side effects, so the API server does not call it for dry runs; it will judge the real objects"
		e.Unjudged = true
	case webhookDenied.MatchString(msg):
		m := webhookDenied.FindStringSubmatch(msg)
		e.By = fmt.Sprintf("admission webhook %q", m[1])
		e.Message = m[2]
		e.Fix = policyFix(kind)
	case podSecurity.MatchString(msg):
		m := podSecurity.FindStringSubmatch(msg)
		e.By = fmt.Sprintf("Pod Security admission (%s)", m[1])
		e.Message = m[2]
		e.Fix = "the message names the pod fields; set them in the solver's podTemplate (spec.securityContext of http01.ingress.podTemplate or gatewayHTTPRoute.podTemplate), or ask for the namespace's pod-security.kubernetes.io/enforce label to allow them"
	case quotaExceeded.MatchString(msg):
		m := quotaExceeded.FindStringSubmatch(msg)
		e.By = fmt.Sprintf("ResourceQuota %q", m[1])
		e.Message = fmt.Sprintf("no room for the solver %s: requested %s, used %s, limited to %s", kind, m[2], m[3], m[4])
		e.Fix = fmt.Sprintf("free %s in namespace %q or ask for ResourceQuota %s to be raised", quotaResources(m[2]), ns, m[1])
	case quotaFailed.MatchString(msg):
		m := quotaFailed.FindStringSubmatch(msg)
		e.By = fmt.Sprintf("ResourceQuota %q", m[1])
		e.Message = m[2]
		e.Fix = "set the named requests/limits in the solver's podTemplate (spec.resources)"
	case limitRange.MatchString(msg) && kind == "pod":
		e.By = "a LimitRange of the namespace"
		e.Message = limitRange.FindStringSubmatch(msg)[1]
		e.Fix = "set resources within the LimitRange in the solver's podTemplate (spec.resources)"
	case apierrors.IsForbidden(err) || apierrors.IsInvalid(err) || apierrors.IsBadRequest(err):
		e.By = "the API server"
		e.Message = msg
	default:
		return kube.Describe(err, verb, resource, ns)
	}
	return e
}

// quotaResources names the resources of a quota's "requested" list
// ("pods=1,requests.cpu=10m" is "pods, requests.cpu").
func quotaResources(requested string) string {
	var out []string
	for _, kv := range strings.Split(requested, ",") {
		k, _, _ := strings.Cut(strings.TrimSpace(kv), "=")
		out = append(out, k)
	}
	return strings.Join(out, ", ")
}

// pathTypeFix is the advice for an Ingress the admission chain refused:
// the path type override. The policy's own message says what it checks.
const pathTypeFix = "if it objects to the challenge path or its pathType, use one the controller accepts with --ingress-path-type " +
	"(ImplementationSpecific for ingress-nginx 1.12+, whose strict-validate-path-type denies Exact and Prefix paths with a dot) " +
	"or the issuer's annotation " + certmanager.AnnotationIngressPathType

func policyFix(kind string) string {
	switch kind {
	case "ingress":
		return pathTypeFix + "; otherwise ask the policy's owner to exempt objects labelled " + LabelComponent + "=http01-solver"
	case "pod":
		return "set the fields it asks for in the solver's podTemplate, or ask the policy's owner to exempt objects labelled " + LabelComponent + "=http01-solver"
	}
	return "ask the policy's owner to exempt objects labelled " + LabelComponent + "=http01-solver"
}
