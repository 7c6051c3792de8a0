package plugin

import (
	"context"
	"fmt"
	"io"
	"sort"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-acme/kubectl-acme/internal/schedule"
	"github.com/kubectl-acme/kubectl-acme/internal/store"
)

// scheduleSelector selects every namespace's schedule objects.
const scheduleSelector = store.LabelManagedBy + "=" + store.ManagedBy + "," + store.LabelKind + "=" + schedule.Kind

// ScheduleRow is what status shows of one namespace's schedule.
type ScheduleRow struct {
	Namespace, Schedule, LastRun, Result string
}

// ScheduleRows computes, per namespace with a schedule's CronJob, its
// schedule and the latest of its Jobs (scheduled or made with kubectl
// create job --from) with the Job's outcome from its conditions.
func ScheduleRows(cjs []batchv1.CronJob, jobs []batchv1.Job, now time.Time) []ScheduleRow {
	latest := map[string]*batchv1.Job{}
	for i := range jobs {
		j := &jobs[i]
		if l := latest[j.Namespace]; l == nil || l.CreationTimestamp.Before(&j.CreationTimestamp) {
			latest[j.Namespace] = j
		}
	}
	var out []ScheduleRow
	for _, cj := range cjs {
		if cj.Name != schedule.Name {
			continue
		}
		r := ScheduleRow{Namespace: cj.Namespace, Schedule: cj.Spec.Schedule, LastRun: "<none>", Result: "-"}
		if cj.Spec.Suspend != nil && *cj.Spec.Suspend {
			r.Schedule += " (suspended)"
		}
		if j := latest[cj.Namespace]; j != nil {
			r.LastRun = fmt.Sprintf("job/%s %s ago", j.Name, duration.HumanDuration(now.Sub(j.CreationTimestamp.Time)))
			r.Result = jobResult(j)
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Namespace < out[j].Namespace })
	return out
}

// jobResult is a Job's outcome as its conditions say: Complete, Failed
// (with the controller's reason) or Running.
func jobResult(j *batchv1.Job) string {
	for _, c := range j.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			return "Complete"
		case batchv1.JobFailed:
			if c.Reason != "" {
				return "Failed (" + c.Reason + ")"
			}
			return "Failed"
		}
	}
	return "Running"
}

// printSchedules writes the schedules of ns ("" for all namespaces) under
// the certificates' table. A user who may not list CronJobs or Jobs sees
// no schedule section rather than an error: the certificates are what
// status is for.
func printSchedules(ctx context.Context, w io.Writer, c kubernetes.Interface, ns string, now time.Time) error {
	opts := metav1.ListOptions{LabelSelector: scheduleSelector}
	cjs, err := c.BatchV1().CronJobs(ns).List(ctx, opts)
	if err != nil || len(cjs.Items) == 0 {
		return nil
	}
	jobs, err := c.BatchV1().Jobs(ns).List(ctx, opts)
	if err != nil {
		jobs = &batchv1.JobList{}
	}
	rows := ScheduleRows(cjs.Items, jobs.Items, now)
	if len(rows) == 0 {
		return nil
	}
	var table [][]string
	for _, r := range rows {
		table = append(table, []string{r.Namespace, r.Schedule, r.LastRun, r.Result})
	}
	if _, err := fmt.Fprintln(w); err != nil {
		return err
	}
	return printTable(w, []string{"NAMESPACE", "RENEWAL SCHEDULE", "LAST RUN", "RESULT"}, table)
}
