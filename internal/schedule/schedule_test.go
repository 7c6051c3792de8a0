package schedule

import (
	"context"
	"errors"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-acme/kubectl-acme/internal/rbac"
)

func TestDefaultSchedule(t *testing.T) {
	seen := map[string]bool{}
	for _, ns := range []string{"a", "b", "my-app", "prod", "staging"} {
		s := DefaultSchedule(ns)
		if s != DefaultSchedule(ns) {
			t.Fatalf("%s: not stable", ns)
		}
		f := strings.Fields(s)
		if len(f) != 5 || strings.Count(f[1], ",") != 1 || f[2] != "*" {
			t.Errorf("%s: %q is not twice a day", ns, s)
		}
		seen[s] = true
	}
	if len(seen) < 4 {
		t.Errorf("namespaces share schedules: %v", seen)
	}
}

func TestPinnedByDigest(t *testing.T) {
	d := strings.Repeat("ab", 32)
	for img, want := range map[string]bool{
		"r/x@sha256:" + d:        true,
		"r/x:v1@sha256:" + d:     true,
		"r/x:v1":                 false,
		"r/x@sha256:" + d[:10]:   false,
		"r/x@sha256:" + d + "zz": false,
	} {
		if got := PinnedByDigest(img); got != want {
			t.Errorf("PinnedByDigest(%q) = %v", img, got)
		}
	}
}

func testConfig() Config {
	perms := rbac.Needs(rbac.Scope{Namespace: "app", ClusterIssuer: "le", ClusterNamespace: "kubectl-acme"}, rbac.Issue, rbac.Renew, rbac.Scheduled)
	return Config{Namespace: "app", Image: "r/x@sha256:" + strings.Repeat("0", 64), Schedule: "1 2,14 * * *", Permissions: perms, Args: []string{"renew", "--all"}}
}

// The pod meets Pod Security's restricted profile field by field, and the
// ClusterIssuer's permissions go to a Role in its namespace.
func TestObjects(t *testing.T) {
	objs := Objects(testConfig())
	if len(objs) != 6 {
		t.Fatalf("%d objects, want SA, 2 x (Role, RoleBinding), CronJob", len(objs))
	}
	cj := objs[len(objs)-1].(*batchv1.CronJob)
	if cj.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent || *cj.Spec.SuccessfulJobsHistoryLimit > 5 || *cj.Spec.FailedJobsHistoryLimit > 5 {
		t.Errorf("cronjob spec: %+v", cj.Spec)
	}
	pod := cj.Spec.JobTemplate.Spec.Template.Spec
	c := pod.Containers[0]
	sc := c.SecurityContext
	switch {
	case pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot,
		pod.SecurityContext.SeccompProfile == nil || pod.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault,
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation,
		len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL",
		pod.HostNetwork || pod.HostPID || len(pod.Volumes) != 1 || pod.Volumes[0].EmptyDir == nil:
		t.Errorf("pod is not restricted: %+v", pod)
	}
	var clusterRole bool
	for _, o := range objs {
		m := o.(metav1.Object)
		if !owned(m, "app") {
			t.Errorf("%s/%s lacks the schedule's labels", m.GetNamespace(), m.GetName())
		}
		if m.GetNamespace() == "kubectl-acme" && m.GetName() == "kubectl-acme-renew-app" {
			clusterRole = true
		}
	}
	if !clusterRole {
		t.Error("no Role for the ClusterIssuer in its namespace")
	}
}

func TestApplyAndDeleteTouchOnlyTheirOwn(t *testing.T) {
	ctx := context.Background()
	users := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: Name, Namespace: "other"}}
	keep := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "mine", Namespace: "app", Labels: map[string]string{"app.kubernetes.io/managed-by": "kubectl-acme"}}}
	c := fake.NewClientset(users, keep)

	if _, err := Apply(ctx, c, "app", "kubectl-acme", Objects(testConfig())); err != nil {
		t.Fatal(err)
	}
	rs, err := Apply(ctx, c, "app", "kubectl-acme", Objects(testConfig()))
	if err != nil || len(rs) != 6 {
		t.Fatalf("second apply: %v %v", rs, err)
	}
	// A user's object of the schedule's name is refused, before anything changes.
	other := testConfig()
	other.Namespace = "other"
	other.Permissions = rbac.Needs(rbac.Scope{Namespace: "other"}, rbac.Issue)
	_, err = Apply(ctx, c, "other", "kubectl-acme", Objects(other))
	var notOwned *ErrNotOwned
	if !errors.As(err, &notOwned) {
		t.Fatalf("apply over a user's ServiceAccount: %v", err)
	}
	if l, _ := c.RbacV1().Roles("other").List(ctx, metav1.ListOptions{}); len(l.Items) != 0 {
		t.Error("a refused apply created a Role")
	}

	rs, err = Delete(ctx, c, "app", "kubectl-acme")
	if err != nil || len(rs) != 6 {
		t.Fatalf("delete: %v %v", rs, err)
	}
	if _, err := c.CoreV1().ServiceAccounts("app").Get(ctx, "mine", metav1.GetOptions{}); err != nil {
		t.Error("delete removed another kubectl-acme object")
	}
	if _, err := c.CoreV1().ServiceAccounts("other").Get(ctx, Name, metav1.GetOptions{}); err != nil {
		t.Error("delete removed the user's ServiceAccount")
	}
	if l, _ := c.RbacV1().Roles("kubectl-acme").List(ctx, metav1.ListOptions{}); len(l.Items) != 0 {
		t.Error("the ClusterIssuer's Role is left")
	}
}
