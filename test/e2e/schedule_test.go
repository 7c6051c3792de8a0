package e2e

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// nsObjects names every object of the kinds schedule touches, and the
// ones its CronJob's runs make, in ns (and the schedule's Roles in the
// cluster resource namespace), with their resourceVersions: equal
// snapshots mean nothing was created, changed or deleted.
func nsObjects(t *testing.T, ns string) []string {
	t.Helper()
	ctx := t.Context()
	var out []string
	add := func(kind string, items []metav1.Object) {
		for _, m := range items {
			out = append(out, fmt.Sprintf("%s %s/%s@%s", kind, m.GetNamespace(), m.GetName(), m.GetResourceVersion()))
		}
	}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	sas, err := kube.CoreV1().ServiceAccounts(ns).List(ctx, metav1.ListOptions{})
	must(err)
	add("ServiceAccount", metaList(sas.Items))
	cms, err := kube.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
	must(err)
	add("ConfigMap", metaList(cms.Items))
	secs, err := kube.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
	must(err)
	add("Secret", metaList(secs.Items))
	pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	must(err)
	add("Pod", metaList(pods.Items))
	jobs, err := kube.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
	must(err)
	add("Job", metaList(jobs.Items))
	cjs, err := kube.BatchV1().CronJobs(ns).List(ctx, metav1.ListOptions{})
	must(err)
	add("CronJob", metaList(cjs.Items))
	for _, n := range []string{ns, "kubectl-acme"} {
		roles, err := kube.RbacV1().Roles(n).List(ctx, metav1.ListOptions{LabelSelector: "acme.kubectl.io/schedule-namespace=" + ns})
		must(err)
		add("Role", metaList(roles.Items))
		rbs, err := kube.RbacV1().RoleBindings(n).List(ctx, metav1.ListOptions{LabelSelector: "acme.kubectl.io/schedule-namespace=" + ns})
		must(err)
		add("RoleBinding", metaList(rbs.Items))
	}
	roles, err := kube.RbacV1().Roles(ns).List(ctx, metav1.ListOptions{})
	must(err)
	add("AnyRole", metaList(roles.Items))
	sort.Strings(out)
	return out
}

func metaList[T any, P interface {
	*T
	metav1.Object
}](items []T) []metav1.Object {
	out := make([]metav1.Object, len(items))
	for i := range items {
		out[i] = P(&items[i])
	}
	return out
}

const fakeImage = "registry.example.test/kubectl-acme@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// TestScheduleInstallsAndUnscheduleRemoves: dry-run prints the objects and
// creates none; schedule creates them with a pod that the restricted Pod
// Security level admits (the namespace enforces it: a Job made from the
// CronJob gets its pod); a second schedule updates them in place;
// unschedule leaves the namespace object by object as it was.
func TestScheduleInstallsAndUnscheduleRemoves(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	kubectl(t, "label", "ns", ns, "pod-security.kubernetes.io/enforce=restricted", "pod-security.kubernetes.io/warn=restricted")
	createIssuer(t, env.Kubeconfig, ns, "pebble", env.IngressClass)
	before := nsObjects(t, ns)

	out := mustACME(t, env.Kubeconfig, "schedule", "-n", ns, "--image", fakeImage, "--dry-run=client", "-o", "yaml")
	var kinds []string
	for _, doc := range strings.Split(out, "\n---\n") {
		var obj struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, obj.Kind)
	}
	if want := []string{"ServiceAccount", "Role", "RoleBinding", "CronJob"}; !reflect.DeepEqual(kinds, want) {
		t.Fatalf("dry-run printed %v, want %v\n%s", kinds, want, out)
	}
	if !strings.Contains(out, "concurrencyPolicy: Forbid") || !strings.Contains(out, fakeImage) {
		t.Errorf("dry-run CronJob:\n%s", out)
	}
	if after := nsObjects(t, ns); !reflect.DeepEqual(before, after) {
		t.Fatalf("dry-run changed the namespace:\nbefore %v\nafter  %v", before, after)
	}

	out, errOut, code := acmeCmd(t, env.Kubeconfig, "schedule", "-n", ns, "--image", fakeImage)
	if code != 0 || strings.Contains(errOut, "PodSecurity") || !strings.Contains(out, "cronjob.batch/kubectl-acme-renew created") {
		t.Fatalf("schedule: exit %d\n%s\n%s", code, out, errOut)
	}
	cj, err := kube.BatchV1().CronJobs(ns).Get(t.Context(), "kubectl-acme-renew", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code = acmeCmd(t, env.Kubeconfig, "schedule", "-n", ns, "--image", fakeImage, "--schedule", "7 1,13 * * *")
	if code != 0 || !strings.Contains(out, "cronjob.batch/kubectl-acme-renew configured") {
		t.Fatalf("schedule again: exit %d\n%s\n%s", code, out, errOut)
	}
	cj2, _ := kube.BatchV1().CronJobs(ns).Get(t.Context(), "kubectl-acme-renew", metav1.GetOptions{})
	if cj2.UID != cj.UID || cj2.Spec.Schedule != "7 1,13 * * *" {
		t.Errorf("not updated in place: uid %s -> %s, schedule %q", cj.UID, cj2.UID, cj2.Spec.Schedule)
	}

	// check compares the schedule's Role with what renew needs: a rule
	// removed is named, and schedule puts it back.
	if out := mustACME(t, env.Kubeconfig, "check", "-n", ns); !strings.Contains(out, "grants exactly what renew needs") {
		t.Errorf("check with the schedule's Role intact:\n%s", out)
	}
	role, err := kube.RbacV1().Roles(ns).Get(t.Context(), "kubectl-acme-renew", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	last := role.Rules[len(role.Rules)-1]
	if last.Resources[0] != "events" {
		t.Fatalf("last rule is %v, want events", last)
	}
	role.Rules = role.Rules[:len(role.Rules)-1]
	if _, err := kube.RbacV1().Roles(ns).Update(t.Context(), role, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	out, _, code = acmeCmd(t, env.Kubeconfig, "check", "-n", ns)
	if code == 0 || !strings.Contains(out, `missing: create events in namespace "`+ns+`"`) {
		t.Errorf("check with a rule removed: exit %d\n%s", code, out)
	}
	mustACME(t, env.Kubeconfig, "schedule", "-n", ns, "--image", fakeImage, "--schedule", "7 1,13 * * *")
	mustACME(t, env.Kubeconfig, "check", "-n", ns)

	// A run made by hand, as operators do; the real Job controller makes
	// its pod, which restricted admission lets through.
	if _, stderr, code := kubectl(t, "create", "job", "-n", ns, "--from=cronjob/kubectl-acme-renew", "now"); code != 0 || strings.Contains(stderr, "PodSecurity") {
		t.Fatalf("create job: exit %d\n%s", code, stderr)
	}
	waitFor(t, 30*time.Second, "the Job's pod", func() bool {
		pods, _ := kube.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "job-name=now"})
		return pods != nil && len(pods.Items) == 1
	})

	// status shows the schedule and its last run.
	if out := mustACME(t, env.Kubeconfig, "status", "-n", ns); !strings.Contains(out, "RENEWAL SCHEDULE") ||
		!strings.Contains(out, "7 1,13 * * *") || !strings.Contains(out, "job/now") {
		t.Errorf("status does not show the schedule's run:\n%s", out)
	}

	out = mustACME(t, env.Kubeconfig, "unschedule", "-n", ns)
	for _, want := range []string{"cronjob.batch", "rolebinding.rbac.authorization.k8s.io", "role.rbac.authorization.k8s.io", "serviceaccount"} {
		if !strings.Contains(out, want+"/kubectl-acme-renew deleted") {
			t.Errorf("unschedule did not delete %s:\n%s", want, out)
		}
	}
	// The Job and its pod go with the CronJob (garbage collector).
	var after []string
	waitFor(t, 60*time.Second, "the namespace as before schedule", func() bool {
		after = nsObjects(t, ns)
		return reflect.DeepEqual(before, after)
	})
	if out := mustACME(t, env.Kubeconfig, "unschedule", "-n", ns); !strings.Contains(out, "no schedule") {
		t.Errorf("second unschedule: %s", out)
	}
}

// TestScheduleLeavesUsersObjects: a ServiceAccount of the schedule's name
// that schedule did not create is neither taken over nor deleted.
func TestScheduleLeavesUsersObjects(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	kubectl(t, "create", "serviceaccount", "-n", ns, "kubectl-acme-renew")
	before := nsObjects(t, ns)
	_, errOut, code := acmeCmd(t, env.Kubeconfig, "schedule", "-n", ns, "--image", fakeImage)
	if code == 0 || !strings.Contains(errOut, "ServiceAccount "+ns+"/kubectl-acme-renew exists and was not created by kubectl acme schedule") {
		t.Fatalf("schedule over a user's ServiceAccount: exit %d\n%s", code, errOut)
	}
	mustACME(t, env.Kubeconfig, "unschedule", "-n", ns)
	if after := nsObjects(t, ns); !reflect.DeepEqual(before, after) {
		t.Fatalf("namespace changed:\nbefore %v\nafter  %v", before, after)
	}
	// Bad input: -A, a tag instead of a digest, no image known.
	for _, args := range [][]string{
		{"schedule", "-A", "--image", fakeImage},
		{"schedule", "-n", ns, "--image", "registry.example.test/kubectl-acme:v1"},
		{"schedule", "-n", ns},
	} {
		if _, errOut, code := acmeCmd(t, env.Kubeconfig, args...); code == 0 || !strings.HasPrefix(errOut, "error: ") {
			t.Errorf("%v: exit %d\n%s", args, code, errOut)
		}
	}
}

// TestRenewScheduled: as the CronJob runs it, renew exits 0 after a
// renewal (the Job completes) and 1 after a failure, which leaves a
// Warning Event on the Certificate's ConfigMap naming the error.
func TestRenewScheduled(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createIssuer(t, env.Kubeconfig, ns, "pebble", env.IngressClass)
	mustACME(t, env.Kubeconfig, issueArgs(ns, "web", "pebble", "--domain", "web."+ns+".example.test", "-q")...)
	out, errOut, code := acmeCmd(t, env.Kubeconfig, "renew", "web", "-n", ns, "--force", "--scheduled", "--connect-to", env.IngressHTTP, "-q")
	if code != 0 || !strings.Contains(out, "renewed") {
		t.Fatalf("scheduled renewal: exit %d, want 0\n%s\n%s", code, out, errOut)
	}
	// The issuer gone (its account key stays), the renewal fails.
	mustACME(t, env.Kubeconfig, "delete", "issuer", "pebble", "-n", ns)
	_, errOut, code = acmeCmd(t, env.Kubeconfig, "renew", "--all", "-n", ns, "--force", "--scheduled", "-q")
	if code != 1 {
		t.Fatalf("failed scheduled renewal: exit %d, want 1\n%s", code, errOut)
	}
	evs, err := kube.CoreV1().Events(ns).List(t.Context(), metav1.ListOptions{FieldSelector: "involvedObject.name=acme-certificate-web,reason=RenewalFailed"})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs.Items) != 1 || evs.Items[0].Type != "Warning" || !strings.Contains(evs.Items[0].Message, "pebble") || evs.Items[0].InvolvedObject.UID == "" {
		t.Fatalf("events: %+v", evs.Items)
	}
	if out, _, _ := kubectl(t, "get", "events", "-n", ns); !strings.Contains(out, "RenewalFailed") {
		t.Errorf("kubectl get events:\n%s", out)
	}
}
