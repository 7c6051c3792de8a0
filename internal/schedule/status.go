package schedule

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-acme/kubectl-acme/internal/rbac"
	"github.com/kubectl-acme/kubectl-acme/internal/store"
)

// everySelector selects every namespace's schedule objects.
const everySelector = store.LabelManagedBy + "=" + store.ManagedBy + "," + store.LabelKind + "=" + Kind

// Row is what status shows of one namespace's schedule.
type Row struct {
	Namespace, Schedule, LastRun, Result string
}

// List reads the schedules of ns ("" for every namespace) and their Jobs
// and computes their Rows. A user who may not list CronJobs gets none and
// no error: the certificates are what status is for; one who may not list
// Jobs sees no last run.
func List(ctx context.Context, c kubernetes.Interface, ns string, now time.Time) []Row {
	opts := metav1.ListOptions{LabelSelector: everySelector}
	cjs, err := c.BatchV1().CronJobs(ns).List(ctx, opts)
	if err != nil || len(cjs.Items) == 0 {
		return nil
	}
	jobs, err := c.BatchV1().Jobs(ns).List(ctx, opts)
	if err != nil {
		jobs = &batchv1.JobList{}
	}
	return Rows(cjs.Items, jobs.Items, now)
}

// Rows computes, per namespace with a schedule's CronJob, its schedule
// and the latest of its Jobs (scheduled or made with kubectl create job
// --from) with the Job's outcome from its conditions.
func Rows(cjs []batchv1.CronJob, jobs []batchv1.Job, now time.Time) []Row {
	latest := map[string]*batchv1.Job{}
	for i := range jobs {
		j := &jobs[i]
		if l := latest[j.Namespace]; l == nil || l.CreationTimestamp.Before(&j.CreationTimestamp) {
			latest[j.Namespace] = j
		}
	}
	var out []Row
	for _, cj := range cjs {
		if cj.Name != Name {
			continue
		}
		r := Row{Namespace: cj.Namespace, Schedule: cj.Spec.Schedule, LastRun: "<none>", Result: "-"}
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

// Drift is how the Roles of a namespace's schedule differ from what its
// renewal needs now (after new certificates, another issuer).
type Drift struct {
	// Found: the namespace has a schedule's Role.
	Found bool
	// Missing are the permissions needed that the Roles do not grant.
	Missing []rbac.Permission
	// Extra: the Roles grant everything needed, and more.
	Extra bool
}

// OK reports whether there is no schedule, or its Roles match.
func (d Drift) OK() bool { return !d.Found || (len(d.Missing) == 0 && !d.Extra) }

// RoleDrift compares the Roles of ns's schedule (in ns and in clusterNS,
// the cluster resource namespace) with want, the permissions its renewal
// needs. A Role that cannot be read (no schedule, or no permission to
// read Roles) counts as none.
func RoleDrift(ctx context.Context, c kubernetes.Interface, ns, clusterNS string, want []rbac.Permission) Drift {
	expected := map[string][]rbacv1.PolicyRule{}
	for _, r := range rbac.Roles(Name, want) {
		expected[r.Namespace] = r.Rules
	}
	var d Drift
	for _, roleNS := range []string{ns, clusterNS} {
		var inNS []rbac.Permission
		for _, p := range want {
			if p.Namespace == roleNS {
				inNS = append(inNS, p)
			}
		}
		role, err := c.RbacV1().Roles(roleNS).Get(ctx, RoleName(ns, roleNS), metav1.GetOptions{})
		if err != nil || role.Labels[LabelNamespace] != ns {
			if _, needed := expected[roleNS]; needed && d.Found {
				d.Missing = append(d.Missing, inNS...)
			}
			continue
		}
		d.Found = true
		grants := rbac.Granted(role, inNS)
		granted := map[rbac.Permission]bool{}
		for _, p := range grants {
			granted[p] = true
		}
		for _, p := range inNS {
			if !granted[p] {
				d.Missing = append(d.Missing, p)
			}
		}
		if !reflect.DeepEqual(role.Rules, expected[roleNS]) && len(grants) == len(inNS) {
			d.Extra = true
		}
	}
	return d
}
