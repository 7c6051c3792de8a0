package plugin

import (
	"reflect"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-acme/kubectl-acme/internal/status"
)

func TestScheduleRows(t *testing.T) {
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
	got := ScheduleRows(
		[]batchv1.CronJob{cj("b", "1 2,14 * * *"), cj("a", "5 3,15 * * *"), cj("c", "0 0 * * *")},
		[]batchv1.Job{
			job("a", "old", 13*time.Hour, batchv1.JobComplete, ""),
			job("a", "new", time.Hour, batchv1.JobFailed, "BackoffLimitExceeded"),
			job("b", "run", 5*time.Minute, "", ""),
		}, now)
	want := []ScheduleRow{
		{"a", "5 3,15 * * *", "job/new 60m ago", "Failed (BackoffLimitExceeded)"},
		{"b", "1 2,14 * * *", "job/run 5m ago", "Running"},
		{"c", "0 0 * * *", "<none>", "-"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ScheduleRows:\n got %+v\nwant %+v", got, want)
	}
}

func TestFailingRenewalSaysWhenItExpires(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	na := now.Add(50 * time.Hour)
	_, rows := CertificateTable([]status.Row{{Name: "web", NotAfter: &na, LastFailure: "CA unreachable"}}, false, true, now)
	if got, want := rows[0][6], "Failed (renewal failing, expires in 2d2h): CA unreachable"; got != want {
		t.Errorf("status %q, want %q", got, want)
	}
}
