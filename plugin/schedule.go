package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-acme/kubectl-acme/internal/schedule"
	"github.com/kubectl-acme/kubectl-acme/internal/store"
)

// ScheduleOptions holds `kubectl acme schedule` input.
type ScheduleOptions struct {
	Image    string
	Schedule string
	DryRun   string
	Output   *outputFlags
	// namespaceFlags' -A is refused: a schedule covers one namespace.
	namespaceFlags
	Timeout time.Duration

	build   BuildInfo
	factory *Factory
	genericiooptions.IOStreams
}

// NewScheduleOptions returns options with defaults.
func NewScheduleOptions(streams genericiooptions.IOStreams, build BuildInfo) *ScheduleOptions {
	return &ScheduleOptions{IOStreams: streams, build: build, DryRun: "none", Timeout: time.Minute, Output: newOutputFlags("", "yaml", "json", "name")}
}

// NewCmdSchedule builds `kubectl acme schedule`.
func NewCmdSchedule(f *Factory, streams genericiooptions.IOStreams, build BuildInfo) *cobra.Command {
	o := NewScheduleOptions(streams, build)
	cmd := &cobra.Command{
		Use:   "schedule [-n NAMESPACE] [--image REPO@sha256:DIGEST] [--schedule CRON] [--dry-run=client -o yaml]",
		Short: "Renew the namespace's certificates from a CronJob in the cluster",
		Long: `Install, in one namespace, a CronJob that runs kubectl acme renew --all from the
kubectl-acme container image, so certificates are renewed without anyone at a
terminal and with no controller installed:

  ServiceAccount kubectl-acme-renew
  Role kubectl-acme-renew with exactly the permissions renew --all needs in the
    namespace (as kubectl acme check -o yaml computes them, for the issuers the
    namespace's certificates use), plus create events; and, for a ClusterIssuer,
    Role kubectl-acme-renew-NAMESPACE in the cluster resource namespace to read
    it and its account key
  RoleBindings of these Roles to the ServiceAccount
  CronJob kubectl-acme-renew: twice a day at a time derived from the namespace
    (--schedule to change), concurrencyPolicy Forbid, the last 3 successful and
    3 failed Jobs kept, a pod that passes Pod Security "restricted"

The image is pinned by digest: the release's own image by default, or --image
for your registry's copy. A Job completes when the run renewed certificates or
found none due, and fails when a renewal failed, leaving a Warning Event on the
Certificate's ConfigMap (kubectl get events). kubectl acme status shows the last
run.

Running schedule again updates these objects in place (after adding
certificates with another issuer, for instance; kubectl acme check says when the
Role no longer matches). kubectl acme unschedule removes them. Objects of these
names that schedule did not create are never changed.`,
		Example: `  # Renew my-app's certificates from the cluster
  kubectl acme schedule -n my-app

  # The objects it would create, for review or GitOps
  kubectl acme schedule -n my-app --dry-run=client -o yaml

  # From a registry copy of the image, every six hours
  kubectl acme schedule -n my-app --image registry.example.com/kubectl-acme@sha256:... --schedule "17 */6 * * *"`,
		Args: cobra.NoArgs,
		RunE: runE(f, o),
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Image, "image", o.Image, "Container image to run, by digest (REPO@sha256:...); default: this release's image")
	fl.StringVar(&o.Schedule, "schedule", o.Schedule, "Cron schedule of the renewal (default: twice a day, at a minute and hour derived from the namespace)")
	fl.StringVar(&o.DryRun, "dry-run", o.DryRun, `"client" only prints what would be created (with -o yaml, json or name)`)
	fl.Lookup("dry-run").NoOptDefVal = "client"
	o.Output.addFlag(cmd, "Output format: yaml or json (the objects), or name")
	o.addAllNamespacesFlag(fl, "Refused: a schedule covers one namespace")
	addTimeoutFlag(fl, &o.Timeout, "Give up after this long")
	return cmd
}

// Complete fills in the namespace and the defaults that depend on it and
// on the build.
func (o *ScheduleOptions) Complete(f *Factory, cmd *cobra.Command, args []string) error {
	o.factory = f
	if err := o.complete(f); err != nil {
		return err
	}
	if o.Image == "" {
		o.Image = o.build.Image
	}
	if o.Schedule == "" {
		o.Schedule = schedule.DefaultSchedule(o.Namespace)
	}
	return nil
}

// Validate checks the flags.
func (o *ScheduleOptions) Validate() error {
	switch {
	case o.AllNamespaces:
		return errors.New("a schedule covers one namespace: run kubectl acme schedule -n NAMESPACE in each (its ServiceAccount can then do nothing outside it)")
	case o.Image == "":
		return errors.New("this build of kubectl-acme does not know its release image: give --image REPO@sha256:DIGEST (make image builds one; push it to your registry)")
	case !schedule.PinnedByDigest(o.Image):
		return fmt.Errorf("--image %s: give the image by digest, REPO@sha256:DIGEST, so every run uses the same image", o.Image)
	case o.DryRun != "none" && o.DryRun != "client":
		return fmt.Errorf("--dry-run=%s: only none or client are supported", o.DryRun)
	}
	if err := positive("--timeout", o.Timeout); err != nil {
		return err
	}
	if len(strings.Fields(o.Schedule)) != 5 && (len(o.Schedule) == 0 || o.Schedule[0] != '@') {
		return fmt.Errorf("--schedule %q: want a cron expression of five fields, like \"17 3,15 * * *\"", o.Schedule)
	}
	return o.Output.validate()
}

// Run builds the objects and prints or applies them.
func (o *ScheduleOptions) Run(ctx context.Context) error {
	st, err := o.factory.Store()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	perms, err := schedule.Permissions(ctx, st, o.Namespace)
	if err != nil {
		return err
	}
	args := []string{"renew", "--all", "--scheduled", "--namespace", o.Namespace}
	if cns := schedule.ClusterNamespace(st); cns != store.DefaultClusterNamespace {
		args = append(args, "--cluster-resource-namespace", cns)
	}
	objs := schedule.Objects(schedule.Config{Namespace: o.Namespace, Image: o.Image, Schedule: o.Schedule, Permissions: perms, Args: args})
	if o.DryRun == "client" {
		if o.Output.table() {
			var rs []schedule.Result
			for _, obj := range objs {
				m := obj.(metav1.Object)
				rs = append(rs, schedule.Result{Kind: obj.GetObjectKind().GroupVersionKind().Kind, Namespace: m.GetNamespace(), Name: m.GetName(), Action: "created (dry run)"})
			}
			printResults(o.Out, rs)
			return nil
		}
		return o.printObjects(objs)
	}
	results, err := schedule.Apply(ctx, st.Client, o.Namespace, schedule.ClusterNamespace(st), objs)
	printResults(o.Out, results)
	if err != nil {
		return err
	}
	if !o.Output.table() {
		return o.printObjects(objs)
	}
	fmt.Fprintf(o.ErrOut, "renewing namespace %q on schedule %q with %s\n", o.Namespace, o.Schedule, o.Image)
	return nil
}

// resourceNames are kubectl's names of the schedule's kinds.
var resourceNames = map[string]string{"ServiceAccount": "serviceaccount", "Role": "role.rbac.authorization.k8s.io",
	"RoleBinding": "rolebinding.rbac.authorization.k8s.io", "CronJob": "cronjob.batch"}

func printResults(w io.Writer, rs []schedule.Result) {
	for _, r := range rs {
		fmt.Fprintf(w, "%s/%s %s (namespace %s)\n", resourceNames[r.Kind], r.Name, r.Action, r.Namespace)
	}
}

// printObjects writes the objects with -o, as kubectl create --dry-run
// does, less the empty fields a fresh object has (creationTimestamp: null,
// status: {}).
func (o *ScheduleOptions) printObjects(objs []runtime.Object) error {
	list, err := toList(objs)
	if err != nil {
		return err
	}
	for i := range list.Items {
		dropFreshFields(list.Items[i].Object)
	}
	return o.Output.printDocuments(o.Out, list)
}

// dropFreshFields deletes, at any depth, a null creationTimestamp and an
// empty status.
func dropFreshFields(m map[string]any) {
	for k, v := range m {
		switch v := v.(type) {
		case nil:
			if k == "creationTimestamp" {
				delete(m, k)
			}
		case map[string]any:
			if k == "status" && len(v) == 0 {
				delete(m, k)
				continue
			}
			dropFreshFields(v)
		case []any:
			for _, e := range v {
				if em, ok := e.(map[string]any); ok {
					dropFreshFields(em)
				}
			}
		}
	}
}

// UnscheduleOptions holds `kubectl acme unschedule` input.
type UnscheduleOptions struct {
	namespaceFlags
	Timeout time.Duration

	factory *Factory
	genericiooptions.IOStreams
}

// NewUnscheduleOptions returns options with defaults.
func NewUnscheduleOptions(streams genericiooptions.IOStreams) *UnscheduleOptions {
	return &UnscheduleOptions{IOStreams: streams, Timeout: time.Minute}
}

// NewCmdUnschedule builds `kubectl acme unschedule`.
func NewCmdUnschedule(f *Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewUnscheduleOptions(streams)
	cmd := &cobra.Command{
		Use:   "unschedule [-n NAMESPACE]",
		Short: "Remove what kubectl acme schedule created in the namespace",
		Long: `Delete the CronJob, RoleBindings, Roles and ServiceAccount that kubectl acme
schedule created for the namespace (found by their labels; the Roles in the
cluster resource namespace too), and with the CronJob its Jobs and their pods.
Objects it did not create are left alone; certificates and their Secrets stay.`,
		Example: `  kubectl acme unschedule -n my-app`,
		Args:    cobra.NoArgs,
		RunE:    runE(f, o),
	}
	addTimeoutFlag(cmd.Flags(), &o.Timeout, "Give up after this long")
	return cmd
}

// Complete fills in the namespace.
func (o *UnscheduleOptions) Complete(f *Factory, cmd *cobra.Command, args []string) error {
	o.factory = f
	return o.complete(f)
}

// Validate checks the timeout.
func (o *UnscheduleOptions) Validate() error {
	return positive("--timeout", o.Timeout)
}

// Run deletes the schedule's objects.
func (o *UnscheduleOptions) Run(ctx context.Context) error {
	st, err := o.factory.Store()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	results, err := schedule.Delete(ctx, st.Client, o.Namespace, schedule.ClusterNamespace(st))
	printResults(o.Out, results)
	if err != nil {
		return err
	}
	if len(results) == 0 {
		fmt.Fprintf(o.Out, "no schedule in namespace %q\n", o.Namespace)
	}
	return nil
}
