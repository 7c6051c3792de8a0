package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	testenv "github.com/kubectl-acme/kubectl-acme/test/env"
)

// The admission tests check that the cluster's admission chain judges the
// solver's objects before any order exists (issue 12, item 2): a denial
// reaches no CA, leaves nothing behind and names who denied it; what the
// chain accepts is issued.

// createDenyingPolicy creates a ValidatingAdmissionPolicy refusing what
// rules select and expr rejects in ns, with its binding, removed when the
// test ends; the API server enforces it a moment later.
func createDenyingPolicy(t *testing.T, ns, name string, rules []admissionregistrationv1.NamedRuleWithOperations, expr, msg string) {
	t.Helper()
	ctx := t.Context()
	vap := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy:    ptr.To(admissionregistrationv1.Fail),
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: rules},
			Validations:      []admissionregistrationv1.Validation{{Expression: expr, Message: msg}},
		},
	}
	if _, err := kube.AdmissionregistrationV1().ValidatingAdmissionPolicies().Create(ctx, vap, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	b := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-binding"},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        name,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
			MatchResources: &admissionregistrationv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns},
			}},
		},
	}
	if _, err := kube.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Create(ctx, b, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := t.Context()
		_ = kube.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Delete(ctx, b.Name, metav1.DeleteOptions{})
		_ = kube.AdmissionregistrationV1().ValidatingAdmissionPolicies().Delete(ctx, name, metav1.DeleteOptions{})
	})
}

// denyingPolicy is createDenyingPolicy, then waits until the API server
// enforces it on solver pods or Services.
func denyingPolicy(t *testing.T, ns, name string, rules []admissionregistrationv1.NamedRuleWithOperations, expr, msg string) {
	t.Helper()
	ctx := t.Context()
	createDenyingPolicy(t, ns, name, rules, expr, msg)
	// The API server compiles policies from an informer: wait until this
	// one denies (a dry-run of what it matches).
	waitFor(t, 30*time.Second, "policy "+name+" to be enforced", func() bool {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "probe", Labels: map[string]string{"app.kubernetes.io/component": "http01-solver"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
		svc := &corev1.Service{ObjectMeta: pod.ObjectMeta, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}
		dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
		_, perr := kube.CoreV1().Pods(ns).Create(ctx, pod, dry)
		_, serr := kube.CoreV1().Services(ns).Create(ctx, svc, dry)
		return (perr != nil && strings.Contains(perr.Error(), name)) || (serr != nil && strings.Contains(serr.Error(), name))
	})
}

func solverRule(group, resource string) []admissionregistrationv1.NamedRuleWithOperations {
	return []admissionregistrationv1.NamedRuleWithOperations{{RuleWithOperations: admissionregistrationv1.RuleWithOperations{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
		Rule:       admissionregistrationv1.Rule{APIGroups: []string{group}, APIVersions: []string{"v1"}, Resources: []string{resource}},
	}}}
}

// TestIssueDeniedByPolicyBeforeOrder: a ValidatingAdmissionPolicy refusing
// the solver pod stops the run before the CA sees a newOrder, creates
// nothing, and the message names the policy, its binding, its message
// and a fix. apply --dry-run=server and check --issuer report the same.
func TestIssueDeniedByPolicyBeforeOrder(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	denyingPolicy(t, ns, "no-solver-pods-"+ns, solverRule("", "pods"),
		`!has(object.metadata.labels) || !('app.kubernetes.io/component' in object.metadata.labels) || object.metadata.labels['app.kubernetes.io/component'] != 'http01-solver'`,
		"solver pods are not allowed here")
	p := startCAProxy(t)
	createIssuerVia(t, p, ns, "pebble")
	before := p.NewOrders()

	_, errOut, code := acmeCmd(t, env.Kubeconfig, issueArgs(ns, "web", "pebble", "--domain", "vap."+ns+".example.test")...)
	if code == 0 {
		t.Fatal("issue succeeded despite the policy")
	}
	wantAll(t, "issue's error", errOut,
		`ValidatingAdmissionPolicy "no-solver-pods-`+ns+`" (binding "no-solver-pods-`+ns+`-binding")`,
		"solver pods are not allowed here", "fix:", "no order was placed")
	if n := p.NewOrders() - before; n != 0 {
		t.Errorf("%d newOrder requests reached the CA, want none", n)
	}
	assertNoSolverObjects(t, ns)
	if _, err := kube.CoreV1().Secrets(ns).Get(t.Context(), "web", metav1.GetOptions{}); err == nil {
		t.Error("secret web exists")
	}

	out, errOut, code := acmeCmd(t, env.Kubeconfig, "check", "-n", ns, "--issuer", "pebble")
	if code == 0 {
		t.Errorf("check passed despite the policy:\n%s", out)
	}
	wantAll(t, "check's output", out+errOut, `ValidatingAdmissionPolicy "no-solver-pods-`+ns+`"`, "solver pods are not allowed here")
	assertNoSolverObjects(t, ns)
}

// TestIssueRestrictedNamespaceWithLimitQuota: Pod Security "restricted"
// and a ResourceQuota that admits only pods with limits let the solver
// pod in: the certificate is issued, nothing is left.
func TestIssueRestrictedNamespaceWithLimitQuota(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	if _, _, code := kubectl(t, "label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted"); code != 0 {
		t.Fatal("label namespace failed")
	}
	createQuota(t, ns, "limits", corev1.ResourceList{
		corev1.ResourceLimitsCPU: resource.MustParse("1"), corev1.ResourceLimitsMemory: resource.MustParse("1Gi"),
		corev1.ResourceRequestsCPU: resource.MustParse("1"), corev1.ResourceRequestsMemory: resource.MustParse("1Gi"),
	})
	createIssuer(t, env.Kubeconfig, ns, "pebble", env.IngressClass)
	name := "psa." + ns + ".example.test"
	mustACME(t, env.Kubeconfig, issueArgs(ns, "web", "pebble", "--domain", name)...)
	verifySecret(t, ns, "web", []string{name})
	assertNoSolverObjects(t, ns)
}

// TestIssueUnderLimitRangeMaxCPU: a LimitRange capping a container's CPU
// at 500m (as OpenShift projects and many platform teams set) refuses the
// solver pod's one CPU; the pod is sent again at cert-manager's 100m, the
// certificate is issued and nothing is left.
func TestIssueUnderLimitRangeMaxCPU(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	lr := &corev1.LimitRange{
		ObjectMeta: metav1.ObjectMeta{Name: "max-cpu"},
		Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
			Type: corev1.LimitTypeContainer,
			Max:  corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")},
		}}},
	}
	if _, err := kube.CoreV1().LimitRanges(ns).Create(t.Context(), lr, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	createIssuer(t, env.Kubeconfig, ns, "pebble", env.IngressClass)
	created := watchCreates(t, ns)
	name := "limits." + ns + ".example.test"
	mustACME(t, env.Kubeconfig, issueArgs(ns, "web", "pebble", "--domain", name)...)
	verifySecret(t, ns, "web", []string{name})
	if cpu := created.firstPodCPU(t); cpu.MilliValue() != 100 {
		t.Errorf("solver pod under a 500m LimitRange has CPU limit %s, want 100m", cpu)
	}
	assertNoSolverObjects(t, ns)
}

// TestIssueQuotaFullBeforeOrder: a ResourceQuota with no room for one
// more pod is reported before any order, naming the quota and resource,
// and not as a missing permission.
func TestIssueQuotaFullBeforeOrder(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createQuota(t, ns, "no-pods", corev1.ResourceList{corev1.ResourcePods: resource.MustParse("0")})
	p := startCAProxy(t)
	createIssuerVia(t, p, ns, "pebble")
	before := p.NewOrders()
	_, errOut, code := acmeCmd(t, env.Kubeconfig, issueArgs(ns, "web", "pebble", "--domain", "quota."+ns+".example.test")...)
	if code == 0 {
		t.Fatal("issue succeeded with no room for a pod")
	}
	wantAll(t, "issue's error", errOut, `ResourceQuota "no-pods"`, "pods", "no order was placed")
	if strings.Contains(errOut, "you may not") {
		t.Errorf("a full quota reported as a missing permission:\n%s", errOut)
	}
	if n := p.NewOrders() - before; n != 0 {
		t.Errorf("%d newOrder requests reached the CA, want none", n)
	}
	assertNoSolverObjects(t, ns)
}

// createQuota creates a ResourceQuota and waits until the quota controller
// has written its status: until then admission refuses what it limits.
func createQuota(t *testing.T, ns, name string, hard corev1.ResourceList) {
	t.Helper()
	ctx := t.Context()
	q := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.ResourceQuotaSpec{Hard: hard}}
	if _, err := kube.CoreV1().ResourceQuotas(ns).Create(ctx, q, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "quota "+name+"'s status", func() bool {
		got, err := kube.CoreV1().ResourceQuotas(ns).Get(ctx, name, metav1.GetOptions{})
		return err == nil && len(got.Status.Hard) == len(hard)
	})
}

// TestIssueForcedExactDeniedByNginxAdmission: forcing pathType Exact on
// class nginx, whose admission rule (ingress-nginx's
// strict-validate-path-type, test/env/admission.go) denies Exact paths
// with a dot, fails before any order reaches the CA, names the policy
// and the override to change, and leaves nothing. apply --dry-run=server
// and check report the same denial.
func TestIssueForcedExactDeniedByNginxAdmission(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	p := startCAProxy(t)
	createIssuerVia(t, p, ns, "pebble")
	before := p.NewOrders()
	host := "exact." + ns + ".example.test"
	_, errOut, code := acmeCmd(t, env.Kubeconfig, issueArgs(ns, "web", "pebble", "--domain", host, "--ingress-path-type", "Exact")...)
	if code == 0 {
		t.Fatal("issue with pathType Exact on class nginx succeeded")
	}
	wantAll(t, "issue's error", errOut, `ValidatingAdmissionPolicy "`+testenv.NginxAdmissionPolicy+`"`, "--ingress-path-type", "ImplementationSpecific", "no order was placed")
	if n := p.NewOrders() - before; n != 0 {
		t.Errorf("%d newOrder requests reached the CA, want none", n)
	}
	assertNoSolverObjects(t, ns)

	manifest := filepath.Join(t.TempDir(), "cert.yaml")
	if err := os.WriteFile(manifest, []byte(`apiVersion: cert-manager.io/v1
kind: Certificate
metadata:
  name: web
  namespace: `+ns+`
spec:
  secretName: web
  dnsNames: [`+host+`]
  issuerRef: {name: pebble, kind: Issuer}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := acmeCmd(t, env.Kubeconfig, "apply", "-f", manifest, "--dry-run=server", "--ingress-path-type", "Exact")
	if code == 0 {
		t.Errorf("apply --dry-run=server passed:\n%s", out)
	}
	wantAll(t, "apply --dry-run=server", out+errOut, `ValidatingAdmissionPolicy "`+testenv.NginxAdmissionPolicy+`"`, "--ingress-path-type")
	if n := p.NewOrders() - before; n != 0 {
		t.Errorf("%d newOrder requests reached the CA, want none", n)
	}
	assertNoSolverObjects(t, ns)

	// The same issuer with the override stored on it: check --issuer
	// reports the denial.
	mustACME(t, env.Kubeconfig, "create", "issuer", "exact", "-n", ns,
		"--server", p.Directory, "--ca-bundle", p.CABundle,
		"--email", "e2e@example.com", "--ingress-class", env.IngressClass, "--agree-tos", "--ingress-path-type", "Exact")
	out, errOut, code = acmeCmd(t, env.Kubeconfig, "check", "-n", ns, "--issuer", "exact")
	if code == 0 {
		t.Errorf("check --issuer passed:\n%s", out)
	}
	wantAll(t, "check --issuer", out+errOut, `ValidatingAdmissionPolicy "`+testenv.NginxAdmissionPolicy+`"`)
	assertNoSolverObjects(t, ns)
}
