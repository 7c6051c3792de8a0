package testenv

import (
	"context"
	"fmt"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NginxAdmissionPolicy names the ValidatingAdmissionPolicy that stands in
// for ingress-nginx's admission webhook, by the webhook's own name
// (charts/ingress-nginx/templates/admission-webhooks/validating-webhook.yaml:
// webhook validate.nginx.ingress.kubernetes.io of the
// ValidatingWebhookConfiguration ingress-nginx-admission), so a denial
// names what a real cluster's would. The binding has the configuration's
// name.
const (
	NginxAdmissionPolicy  = "validate.nginx.ingress.kubernetes.io"
	NginxAdmissionBinding = "ingress-nginx-admission"
)

// nginxValidPathType is ingress-nginx's validPathType
// (internal/ingress/inspector/rules.go) as of controller 1.12.0-1.12.5 and
// 1.13.0-1.13.1, where strict-validate-path-type became the default
// (changelog/controller-1.12.0.md) and the dot was not yet allowed
// (kubernetes/ingress-nginx#13798 added it in 1.12.6, 1.13.2 and 1.14.0).
// CEL's matches() is RE2, the syntax of Go's regexp that ingress-nginx
// compiles it with.
const nginxValidPathType = `(?i)^/[[:alnum:]\_\-/]*$`

// nginxPathDenied is CEL for "path p fails ValidatePathType"
// (internal/ingress/inspector/inspector.go): an empty path passes, an
// ImplementationSpecific one is not checked, any other type (Exact,
// Prefix) must match validPathType.
const nginxPathDenied = `has(p.path) && p.path != '' && (!has(p.pathType) || p.pathType != 'ImplementationSpecific') && !p.path.matches(r'` + nginxValidPathType + `')`

// createNginxAdmission makes the real API server enforce ingress-nginx's
// strict-validate-path-type rule for the Ingresses of class, as the
// controller's webhook does (internal/admission/controller/main.go answers
// with NGINXController.CheckIngress's error,
// internal/ingress/controller/controller.go):
//
//   - on CREATE and UPDATE of networking.k8s.io/v1 Ingresses, failing
//     closed (the chart's failurePolicy Fail);
//   - only Ingresses the controller serves: CheckIngress ignores one whose
//     class (the kubernetes.io/ingress.class annotation, else
//     spec.ingressClassName) is another controller's, and one being
//     deleted. An Ingress without a class reaches admission with the
//     default class already set by the DefaultIngressClass plugin;
//   - the message is CheckIngress's, "ingress contains invalid paths:
//     path P cannot be used with pathType T", for each path.
//
// Two differences a policy cannot avoid: the webhook answers 400
// BadRequest, a policy Invalid (422); the webhook puts one path per line
// (errors.Join), a policy's message must be one line, so "; " separates
// them.
// It returns once a dry-run create of an Exact path with a dot is denied:
// the API server compiles and starts enforcing a new policy asynchronously.
func (e *Env) createNginxAdmission(ctx context.Context) error {
	client, err := e.Client()
	if err != nil {
		return err
	}
	fail := admissionv1.Fail
	equivalent := admissionv1.Equivalent
	classAnn := "kubernetes.io/ingress.class"
	ours := fmt.Sprintf(`has(object.metadata.annotations) && '%[1]s' in object.metadata.annotations ? object.metadata.annotations['%[1]s'] == '%[2]s' : has(object.spec.ingressClassName) && object.spec.ingressClassName == '%[2]s'`, classAnn, e.IngressClass)
	badPaths := `(has(object.spec.rules) ? object.spec.rules : []).filter(r, has(r.http) && has(r.http.paths)).map(r, r.http.paths.filter(p, ` + nginxPathDenied + `).map(p, 'path ' + p.path + ' cannot be used with pathType ' + (has(p.pathType) ? p.pathType : '<nil>')).join('; ')).filter(s, s != '')`
	policy := &admissionv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{
			Name:   NginxAdmissionPolicy,
			Labels: map[string]string{"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "admission-webhook"},
		},
		Spec: admissionv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: &fail,
			MatchConstraints: &admissionv1.MatchResources{
				MatchPolicy: &equivalent,
				ResourceRules: []admissionv1.NamedRuleWithOperations{{
					RuleWithOperations: admissionv1.RuleWithOperations{
						Operations: []admissionv1.OperationType{admissionv1.Create, admissionv1.Update},
						Rule: admissionv1.Rule{
							APIGroups: []string{"networking.k8s.io"}, APIVersions: []string{"v1"}, Resources: []string{"ingresses"},
						},
					},
				}},
			},
			MatchConditions: []admissionv1.MatchCondition{
				{Name: "served-by-ingress-nginx", Expression: ours},
				{Name: "not-deleted", Expression: `!has(object.metadata.deletionTimestamp)`},
			},
			Variables: []admissionv1.Variable{{Name: "invalid", Expression: badPaths}},
			Validations: []admissionv1.Validation{{
				Expression:        `size(variables.invalid) == 0`,
				MessageExpression: `'ingress contains invalid paths: ' + variables.invalid.join('; ')`,
			}},
		},
	}
	binding := &admissionv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: NginxAdmissionBinding},
		Spec: admissionv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        NginxAdmissionPolicy,
			ValidationActions: []admissionv1.ValidationAction{admissionv1.Deny},
		},
	}
	vap := client.AdmissionregistrationV1()
	if _, err := vap.ValidatingAdmissionPolicies().Create(ctx, policy, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("testenv: create ValidatingAdmissionPolicy %s: %w", policy.Name, err)
	}
	if _, err := vap.ValidatingAdmissionPolicyBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("testenv: create ValidatingAdmissionPolicyBinding %s: %w", binding.Name, err)
	}

	exact := networkingv1.PathTypeExact
	probe := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "admission-probe"},
		Spec: networkingv1.IngressSpec{
			IngressClassName: &e.IngressClass,
			Rules: []networkingv1.IngressRule{{IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
				Paths: []networkingv1.HTTPIngressPath{{
					Path: "/.well-known/probe", PathType: &exact,
					Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
						Name: "probe", Port: networkingv1.ServiceBackendPort{Number: 80},
					}},
				}},
			}}}},
		},
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		_, err := client.NetworkingV1().Ingresses(metav1.NamespaceDefault).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil && strings.Contains(err.Error(), NginxAdmissionPolicy) {
			return nil
		}
		if err != nil && !apierrors.IsNotFound(err) && ctx.Err() == nil && !apierrors.IsServiceUnavailable(err) {
			return fmt.Errorf("testenv: probe ingress-nginx's admission rule: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("testenv: ValidatingAdmissionPolicy %s not enforced after 30s (last: %v)", NginxAdmissionPolicy, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
