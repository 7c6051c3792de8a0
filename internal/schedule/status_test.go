package schedule

import (
	"reflect"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-acme/kubectl-acme/internal/rbac"
	"github.com/kubectl-acme/kubectl-acme/internal/store"
)

func TestRows(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	cj := func(ns, sched string) batchv1.CronJob {
		return batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "kubectl-acme-renew"}, Spec: batchv1.CronJobSpec{Schedule: sched}}
	}
	job := func(ns, name string, ago time.Duration, cond batchv1.JobConditionType, reason string) batchv1.Job {
		j := batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: metav1.Time{Time: now.Add(-ago)}}}
		if cond != "" {
			j.Status.Conditions = []batchv1.JobCondition{{Type: cond, Status: corev1.ConditionTrue, Reason: reason}}
		}
		return j
	}
	got := Rows(
		[]batchv1.CronJob{cj("b", "1 2,14 * * *"), cj("a", "5 3,15 * * *"), cj("c", "0 0 * * *")},
		[]batchv1.Job{
			job("a", "old", 13*time.Hour, batchv1.JobComplete, ""),
			job("a", "new", time.Hour, batchv1.JobFailed, "BackoffLimitExceeded"),
			job("b", "run", 5*time.Minute, "", ""),
		}, now)
	want := []Row{
		{"a", "5 3,15 * * *", "job/new 60m ago", "Failed (BackoffLimitExceeded)"},
		{"b", "1 2,14 * * *", "job/run 5m ago", "Running"},
		{"c", "0 0 * * *", "<none>", "-"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Rows:\n got %+v\nwant %+v", got, want)
	}
}

func TestRoleDrift(t *testing.T) {
	want := []rbac.Permission{
		{Verb: "get", Resource: "configmaps", Namespace: "app"},
		{Verb: "create", Resource: "events", Namespace: "app"},
		{Verb: "get", Resource: "secrets", Namespace: "acme", Name: "shared"},
	}
	roles := func(ps []rbac.Permission, extra bool) []runtime.Object {
		var objs []runtime.Object
		for _, r := range rbac.Roles(Name, ps) {
			r.Name, r.Labels = RoleName("app", r.Namespace), Labels("app")
			if extra && r.Namespace == "app" {
				r.Rules = append(r.Rules, rbacv1.PolicyRule{Verbs: []string{"delete"}, APIGroups: []string{""}, Resources: []string{"pods"}})
			}
			objs = append(objs, r)
		}
		return objs
	}
	tests := []struct {
		name    string
		objs    []runtime.Object
		found   bool
		missing int
		extra   bool
	}{
		{"no schedule", nil, false, 0, false},
		{"exact", roles(want, false), true, 0, false},
		{"more", roles(want, true), true, 0, true},
		{"a rule less", roles(want[1:], false), true, 1, false},
		{"the cluster namespace's Role gone", roles(want[:2], false), true, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := RoleDrift(t.Context(), fake.NewClientset(tt.objs...), "app", "acme", want)
			if d.Found != tt.found || len(d.Missing) != tt.missing || d.Extra != tt.extra {
				t.Errorf("drift %+v, want found %v, %d missing, extra %v", d, tt.found, tt.missing, tt.extra)
			}
			if d.OK() != (tt.missing == 0 && !tt.extra) {
				t.Errorf("OK() = %v", d.OK())
			}
		})
	}
}

// Before there is any certificate, the schedule may renew through an
// Issuer of the namespace, and it leaves Events.
func TestPermissionsWithoutCertificates(t *testing.T) {
	st := &store.Store{Client: fake.NewClientset()}
	ps, err := Permissions(t.Context(), st, "app")
	if err != nil {
		t.Fatal(err)
	}
	events := false
	for _, p := range ps {
		if p.Namespace != "app" {
			t.Errorf("%v outside the namespace", p)
		}
		events = events || (p.Verb == "create" && p.Resource == "events")
	}
	if !events || len(ps) < 5 {
		t.Errorf("permissions %v", ps)
	}
	d, err := CheckRoles(t.Context(), st, "app")
	if err != nil || d.Found || !d.OK() {
		t.Errorf("no schedule: %+v, %v", d, err)
	}
}
