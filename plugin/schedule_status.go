package plugin

import (
	"context"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-acme/kubectl-acme/internal/rbac"
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

// scheduleDrift compares the Roles of ns's schedule, if there is one, with
// what its renewal needs now (new certificates, another issuer): the
// missing permissions, and whether the Roles grant anything else. ok is
// false when there is a schedule and it does not match; a Role that cannot
// be read (no schedule, or no permission to read Roles) counts as none.
func scheduleDrift(ctx context.Context, st *store.Store, ns string) (report string, ok bool) {
	want, err := ScheduledPermissions(ctx, st, ns)
	if err != nil {
		return "", true
	}
	expected := map[string][]rbacv1.PolicyRule{}
	for _, r := range rbac.Roles(schedule.Name, want) {
		expected[r.Namespace] = r.Rules
	}
	var missing []rbac.Permission
	found, extra := false, false
	for _, roleNS := range []string{ns, clusterNamespace(st)} {
		role, err := st.Client.RbacV1().Roles(roleNS).Get(ctx, schedule.RoleName(ns, roleNS), metav1.GetOptions{})
		if err != nil || role.Labels[schedule.LabelNamespace] != ns {
			if _, needed := expected[roleNS]; needed && found {
				for _, p := range want {
					if p.Namespace == roleNS {
						missing = append(missing, p)
					}
				}
			}
			continue
		}
		found = true
		var inNS []rbac.Permission
		for _, p := range want {
			if p.Namespace == roleNS {
				inNS = append(inNS, p)
			}
		}
		granted := map[rbac.Permission]bool{}
		for _, p := range rbac.Granted(role, inNS) {
			granted[p] = true
		}
		for _, p := range inNS {
			if !granted[p] {
				missing = append(missing, p)
			}
		}
		if !reflect.DeepEqual(role.Rules, expected[roleNS]) && len(rbac.Granted(role, inNS)) == len(inNS) {
			extra = true
		}
	}
	if !found {
		return "", true
	}
	if len(missing) == 0 && !extra {
		return fmt.Sprintf("The renewal schedule's Role in namespace %q grants exactly what renew needs.", ns), true
	}
	var b strings.Builder
	fmt.Fprintf(&b, "The renewal schedule's Role in namespace %q no longer matches what renew needs", ns)
	for i, p := range missing {
		if i == 0 {
			b.WriteString("; missing: ")
		} else {
			b.WriteString(", ")
		}
		b.WriteString(p.String())
	}
	if extra {
		b.WriteString("; it grants more than renew needs")
	}
	fmt.Fprintf(&b, ". Run `kubectl acme schedule -n %s` again to update it.", ns)
	return b.String(), false
}
