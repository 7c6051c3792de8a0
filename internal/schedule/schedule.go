// Package schedule builds and installs the objects of a scheduled
// in-cluster renewal (`kubectl acme schedule`): a ServiceAccount, Roles
// holding exactly what `renew --all` needs (internal/rbac computes them,
// as for `check -o yaml`), RoleBindings, and a CronJob running the
// kubectl-acme image's `renew --all` with that ServiceAccount. Every object
// carries the schedule's labels; Apply updates only objects that carry
// them and Delete removes only those, so a user's object of the same name
// is never touched.
package schedule

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/kubectl-acme/kubectl-acme/internal/kube"
	"github.com/kubectl-acme/kubectl-acme/internal/rbac"
	"github.com/kubectl-acme/kubectl-acme/internal/store"
)

// Name is the name of the ServiceAccount, Role, RoleBinding and CronJob in
// the scheduled namespace.
const Name = "kubectl-acme-renew"

// Kind is the acme.kubectl.io/kind label of a schedule's objects.
const Kind = "Schedule"

// LabelNamespace on a schedule's objects in the cluster resource namespace
// names the namespace whose schedule they belong to.
const LabelNamespace = "acme.kubectl.io/schedule-namespace"

// Labels are the labels of every object of ns's schedule.
func Labels(ns string) map[string]string {
	return map[string]string{
		store.LabelManagedBy: store.ManagedBy,
		store.LabelKind:      Kind,
		store.LabelName:      Name,
		LabelNamespace:       ns,
	}
}

// Selector selects the objects of ns's schedule.
func Selector(ns string) string {
	return fmt.Sprintf("%s=%s,%s=%s,%s=%s", store.LabelManagedBy, store.ManagedBy, store.LabelKind, Kind, LabelNamespace, ns)
}

// owned reports whether m carries the labels of ns's schedule.
func owned(m metav1.Object, ns string) bool {
	l := m.GetLabels()
	return l[store.LabelManagedBy] == store.ManagedBy && l[store.LabelKind] == Kind && l[LabelNamespace] == ns
}

// Config is what a schedule is made of.
type Config struct {
	Namespace string
	// Image runs the renewal, pinned by digest (REPO@sha256:...).
	Image string
	// Schedule is the CronJob's cron expression.
	Schedule string
	// Permissions are what the renewal needs (rbac.Needs); those outside
	// Namespace go into Roles in their own namespaces.
	Permissions []rbac.Permission
	// Args are the container's arguments (the renew command line).
	Args []string
}

// DefaultSchedule is twice a day, at a minute and hour derived from the
// namespace, so that the namespaces of a cluster (and the clusters using
// one CA) do not all renew at the same moment.
func DefaultSchedule(ns string) string {
	h := fnv.New32a()
	h.Write([]byte(ns))
	v := h.Sum32()
	minute, hour := v%60, (v/60)%12
	return fmt.Sprintf("%d %d,%d * * *", minute, hour, hour+12)
}

// PinnedByDigest reports whether image names a digest.
func PinnedByDigest(image string) bool {
	_, d, ok := strings.Cut(image, "@sha256:")
	return ok && len(d) == 64 && strings.Trim(d, "0123456789abcdef") == ""
}

// RoleName is the name of the schedule's Role in namespace roleNS: Name in
// the schedule's own namespace, Name-NAMESPACE elsewhere (the cluster
// resource namespace holds one for each scheduled namespace).
func RoleName(ns, roleNS string) string {
	if roleNS == ns {
		return Name
	}
	return Name + "-" + ns
}

// Objects are the schedule's objects, in the order they are created: the
// ServiceAccount, then each Role and its RoleBinding, then the CronJob.
func Objects(c Config) []runtime.Object {
	meta := func(name, ns string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: ns, Labels: Labels(c.Namespace)}
	}
	sa := &corev1.ServiceAccount{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta: meta(Name, c.Namespace),
	}
	out := []runtime.Object{sa}
	for _, r := range rbac.Roles(Name, c.Permissions) {
		r.ObjectMeta = meta(RoleName(c.Namespace, r.Namespace), r.Namespace)
		rb := &rbacv1.RoleBinding{
			TypeMeta:   metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: "RoleBinding"},
			ObjectMeta: meta(r.Name, r.Namespace),
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: r.Name},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: Name, Namespace: c.Namespace}},
		}
		out = append(out, r, rb)
	}
	return append(out, cronJob(c, meta(Name, c.Namespace)))
}

// cronJob runs the renewal. Its pod meets Pod Security's restricted
// profile (https://kubernetes.io/docs/concepts/security/pod-security-standards/#restricted):
// non-root, no privilege escalation, all capabilities dropped, the
// RuntimeDefault seccomp profile; the root filesystem is read-only too,
// with an emptyDir at /tmp for the recovery record of an order being
// finalized (KUBECTL_ACME_STATE_DIR in the image).
func cronJob(c Config, meta metav1.ObjectMeta) *batchv1.CronJob {
	podLabels := Labels(c.Namespace)
	return &batchv1.CronJob{
		TypeMeta:   metav1.TypeMeta{APIVersion: batchv1.SchemeGroupVersion.String(), Kind: "CronJob"},
		ObjectMeta: meta,
		Spec: batchv1.CronJobSpec{
			Schedule: c.Schedule,
			// A renewal still running when the next is due is left to
			// finish; the two would contend for the certificates' Leases.
			ConcurrencyPolicy: batchv1.ForbidConcurrent,
			// A run missed by more than an hour (controller down) waits for
			// the next one rather than piling up.
			StartingDeadlineSeconds:    ptr.To[int64](3600),
			SuccessfulJobsHistoryLimit: ptr.To[int32](3),
			FailedJobsHistoryLimit:     ptr.To[int32](3),
			JobTemplate: batchv1.JobTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels},
				Spec: batchv1.JobSpec{
					// A failed renewal fails the Job at once, so alerts on
					// failed Jobs fire; the next scheduled run tries again.
					BackoffLimit:          ptr.To[int32](0),
					ActiveDeadlineSeconds: ptr.To[int64](30 * 60),
					Template: corev1.PodTemplateSpec{
						ObjectMeta: metav1.ObjectMeta{Labels: podLabels},
						Spec:       podSpec(c),
					},
				},
			},
		},
	}
}

func podSpec(c Config) corev1.PodSpec {
	return corev1.PodSpec{
		ServiceAccountName:           Name,
		AutomountServiceAccountToken: ptr.To(true),
		RestartPolicy:                corev1.RestartPolicyNever,
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot:   ptr.To(true),
			RunAsUser:      ptr.To[int64](65532),
			RunAsGroup:     ptr.To[int64](65532),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		Containers: []corev1.Container{{
			Name:  "renew",
			Image: c.Image,
			Args:  c.Args,
			SecurityContext: &corev1.SecurityContext{
				AllowPrivilegeEscalation: ptr.To(false),
				ReadOnlyRootFilesystem:   ptr.To(true),
				Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			},
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
			},
			VolumeMounts:             []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}},
			TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		}},
		Volumes: []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
			SizeLimit: ptr.To(resource.MustParse("16Mi"))}}}},
	}
}

// ErrNotOwned is returned when an object of the schedule's name exists and
// was not made by kubectl acme schedule for this namespace.
type ErrNotOwned struct{ Kind, Namespace, Name string }

func (e *ErrNotOwned) Error() string {
	return fmt.Sprintf("%s %s/%s exists and was not created by kubectl acme schedule for this namespace; refusing to change it (delete or rename it first)", e.Kind, e.Namespace, e.Name)
}

// Result says what Apply or Delete did to one object.
type Result struct {
	Kind, Namespace, Name string
	// Action is created, configured, unchanged or deleted.
	Action string
}

// Apply creates the objects, or updates those a previous Apply created;
// it refuses, before changing anything, when one of the names is taken by
// an object that is not the schedule's. Roles of a previous schedule that
// are no longer needed (a ClusterIssuer no longer used) are deleted.
func Apply(ctx context.Context, c kubernetes.Interface, ns, clusterNS string, objs []runtime.Object) ([]Result, error) {
	existing := make([]metav1.Object, len(objs))
	for i, o := range objs {
		cur, err := get(ctx, c, o)
		if err != nil {
			return nil, err
		}
		if cur != nil && !owned(cur, ns) {
			m := o.(metav1.Object)
			return nil, &ErrNotOwned{Kind: kindOf(o), Namespace: m.GetNamespace(), Name: m.GetName()}
		}
		existing[i] = cur
	}
	var out []Result
	keep := map[string]bool{}
	for i, o := range objs {
		m := o.(metav1.Object)
		keep[kindOf(o)+"/"+m.GetNamespace()+"/"+m.GetName()] = true
		action, err := put(ctx, c, o, existing[i])
		if err != nil {
			return out, err
		}
		out = append(out, Result{Kind: kindOf(o), Namespace: m.GetNamespace(), Name: m.GetName(), Action: action})
	}
	stale, err := find(ctx, c, ns, clusterNS)
	if err != nil {
		return out, err
	}
	for _, s := range stale {
		if keep[s.Kind+"/"+s.Namespace+"/"+s.Name] {
			continue
		}
		if err := del(ctx, c, s); err != nil {
			return out, err
		}
		s.Action = "deleted"
		out = append(out, s)
	}
	return out, nil
}

// Delete removes every object of ns's schedule (found by its labels, in
// ns and in clusterNS), the CronJob first so no run starts meanwhile. The
// CronJob's Jobs and their pods go with it (background propagation).
func Delete(ctx context.Context, c kubernetes.Interface, ns, clusterNS string) ([]Result, error) {
	found, err := find(ctx, c, ns, clusterNS)
	if err != nil {
		return nil, err
	}
	var out []Result
	for _, x := range found {
		if err := del(ctx, c, x); err != nil {
			return out, err
		}
		x.Action = "deleted"
		out = append(out, x)
	}
	return out, nil
}

// find lists the objects of ns's schedule in ns, and its Roles and
// RoleBindings in clusterNS.
func find(ctx context.Context, c kubernetes.Interface, ns, clusterNS string) ([]Result, error) {
	var found []Result
	for _, n := range uniq(ns, clusterNS) {
		r, err := listIn(ctx, c, n, ns)
		if err != nil {
			return nil, err
		}
		for _, x := range r {
			if n == ns || x.Kind == "Role" || x.Kind == "RoleBinding" {
				found = append(found, x)
			}
		}
	}
	return found, nil
}

func uniq(a, b string) []string {
	if a == b || b == "" {
		return []string{a}
	}
	return []string{a, b}
}

// listIn finds ns's schedule objects in namespace n: CronJob first, then
// RoleBindings, Roles, ServiceAccount, so a Delete in this order never
// leaves a CronJob without its permissions mid-run.
func listIn(ctx context.Context, c kubernetes.Interface, n, ns string) ([]Result, error) {
	opts := metav1.ListOptions{LabelSelector: Selector(ns)}
	var out []Result
	add := func(kind string, items []metav1.Object) {
		for _, m := range items {
			if owned(m, ns) {
				out = append(out, Result{Kind: kind, Namespace: m.GetNamespace(), Name: m.GetName()})
			}
		}
	}
	cjs, err := c.BatchV1().CronJobs(n).List(ctx, opts)
	if err != nil {
		return nil, kube.Describe(err, "list", "cronjobs.batch", n)
	}
	add("CronJob", metas(cjs.Items))
	rbs, err := c.RbacV1().RoleBindings(n).List(ctx, opts)
	if err != nil {
		return nil, kube.Describe(err, "list", "rolebindings.rbac.authorization.k8s.io", n)
	}
	add("RoleBinding", metas(rbs.Items))
	roles, err := c.RbacV1().Roles(n).List(ctx, opts)
	if err != nil {
		return nil, kube.Describe(err, "list", "roles.rbac.authorization.k8s.io", n)
	}
	add("Role", metas(roles.Items))
	sas, err := c.CoreV1().ServiceAccounts(n).List(ctx, opts)
	if err != nil {
		return nil, kube.Describe(err, "list", "serviceaccounts", n)
	}
	add("ServiceAccount", metas(sas.Items))
	return out, nil
}

func metas[T any, P interface {
	*T
	metav1.Object
}](items []T) []metav1.Object {
	out := make([]metav1.Object, len(items))
	for i := range items {
		out[i] = P(&items[i])
	}
	return out
}

func kindOf(o runtime.Object) string {
	switch o.(type) {
	case *corev1.ServiceAccount:
		return "ServiceAccount"
	case *rbacv1.Role:
		return "Role"
	case *rbacv1.RoleBinding:
		return "RoleBinding"
	case *batchv1.CronJob:
		return "CronJob"
	}
	return fmt.Sprintf("%T", o)
}

// get reads the object of o's kind and name; nil if there is none.
func get(ctx context.Context, c kubernetes.Interface, o runtime.Object) (metav1.Object, error) {
	m := o.(metav1.Object)
	ns, name := m.GetNamespace(), m.GetName()
	var cur metav1.Object
	var err error
	var res string
	switch o.(type) {
	case *corev1.ServiceAccount:
		res = "serviceaccounts"
		cur, err = c.CoreV1().ServiceAccounts(ns).Get(ctx, name, metav1.GetOptions{})
	case *rbacv1.Role:
		res = "roles.rbac.authorization.k8s.io"
		cur, err = c.RbacV1().Roles(ns).Get(ctx, name, metav1.GetOptions{})
	case *rbacv1.RoleBinding:
		res = "rolebindings.rbac.authorization.k8s.io"
		cur, err = c.RbacV1().RoleBindings(ns).Get(ctx, name, metav1.GetOptions{})
	case *batchv1.CronJob:
		res = "cronjobs.batch"
		cur, err = c.BatchV1().CronJobs(ns).Get(ctx, name, metav1.GetOptions{})
	default:
		return nil, fmt.Errorf("schedule: unexpected object %T", o)
	}
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, kube.Describe(err, "get", res, ns)
	}
	return cur, nil
}

// put creates o, or updates cur (the schedule's own) to o.
func put(ctx context.Context, c kubernetes.Interface, o runtime.Object, cur metav1.Object) (string, error) {
	m := o.(metav1.Object)
	ns := m.GetNamespace()
	create := cur == nil
	if !create {
		m.SetResourceVersion(cur.GetResourceVersion())
	}
	var err error
	var res string
	switch x := o.(type) {
	case *corev1.ServiceAccount:
		res = "serviceaccounts"
		if create {
			_, err = c.CoreV1().ServiceAccounts(ns).Create(ctx, x, metav1.CreateOptions{})
		} else {
			// Nothing of a ServiceAccount is the schedule's to change.
			return "unchanged", nil
		}
	case *rbacv1.Role:
		res = "roles.rbac.authorization.k8s.io"
		if create {
			_, err = c.RbacV1().Roles(ns).Create(ctx, x, metav1.CreateOptions{})
		} else {
			_, err = c.RbacV1().Roles(ns).Update(ctx, x, metav1.UpdateOptions{})
		}
	case *rbacv1.RoleBinding:
		res = "rolebindings.rbac.authorization.k8s.io"
		if create {
			_, err = c.RbacV1().RoleBindings(ns).Create(ctx, x, metav1.CreateOptions{})
		} else {
			_, err = c.RbacV1().RoleBindings(ns).Update(ctx, x, metav1.UpdateOptions{})
		}
	case *batchv1.CronJob:
		res = "cronjobs.batch"
		if create {
			_, err = c.BatchV1().CronJobs(ns).Create(ctx, x, metav1.CreateOptions{})
		} else {
			_, err = c.BatchV1().CronJobs(ns).Update(ctx, x, metav1.UpdateOptions{})
		}
	}
	verb := "update"
	if create {
		verb = "create"
	}
	if err != nil {
		return "", kube.Describe(err, verb, res, ns)
	}
	if create {
		return "created", nil
	}
	return "configured", nil
}

func del(ctx context.Context, c kubernetes.Interface, r Result) error {
	bg := metav1.DeletePropagationBackground
	opts := metav1.DeleteOptions{PropagationPolicy: &bg}
	var err error
	var res string
	switch r.Kind {
	case "CronJob":
		res = "cronjobs.batch"
		err = c.BatchV1().CronJobs(r.Namespace).Delete(ctx, r.Name, opts)
	case "RoleBinding":
		res = "rolebindings.rbac.authorization.k8s.io"
		err = c.RbacV1().RoleBindings(r.Namespace).Delete(ctx, r.Name, opts)
	case "Role":
		res = "roles.rbac.authorization.k8s.io"
		err = c.RbacV1().Roles(r.Namespace).Delete(ctx, r.Name, opts)
	case "ServiceAccount":
		res = "serviceaccounts"
		err = c.CoreV1().ServiceAccounts(r.Namespace).Delete(ctx, r.Name, opts)
	default:
		return errors.New("schedule: unknown kind " + r.Kind)
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return kube.Describe(err, "delete", res, r.Namespace)
	}
	return nil
}
