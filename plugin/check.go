package plugin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/issuance"
	"github.com/kubectl-acme/kubectl-acme/internal/rbac"
)

// CheckOptions holds `kubectl acme check` input.
type CheckOptions struct {
	issuerFlags
	Output  *outputFlags
	Timeout time.Duration
	namespaceFlags

	factory *Factory
	genericiooptions.IOStreams
}

// NewCheckOptions returns options with defaults.
func NewCheckOptions(streams genericiooptions.IOStreams) *CheckOptions {
	return &CheckOptions{IOStreams: streams, Timeout: time.Minute, Output: newOutputFlags("", "wide", "yaml", "json")}
}

// NewCmdCheck builds `kubectl acme check`.
func NewCmdCheck(f *Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewCheckOptions(streams)
	cmd := &cobra.Command{
		Use:   "check [--issuer NAME [--cluster-issuer]] [-o wide|yaml|json]",
		Short: "Check that you have the permissions kubectl acme needs, or print a Role granting them",
		Long: `Ask the API server (with SelfSubjectAccessReviews, which change nothing) whether
you may do everything kubectl acme does in the namespace: create issuers, issue and
renew certificates, show their status and clean up after killed runs. Missing
permissions are listed as VERB, RESOURCE, NAMESPACE, and the command fails; -o wide
lists every permission.

-o yaml prints the minimal Role granting exactly these permissions, for your cluster
admin to apply and bind to you. With --issuer NAME --cluster-issuer it also covers
using that ClusterIssuer: reading it and its account key in the cluster resource
namespace, and nothing else there.

When the namespace has a renewal schedule (kubectl acme schedule), check also says
whether its Role still grants exactly what renew needs there, and fails if not.

kubectl acme issue runs the same check for what it needs before it starts.`,
		Example: `  # Am I allowed to use kubectl acme in this namespace?
  kubectl acme check

  # Every permission and whether I have it
  kubectl acme check -n my-app -o wide

  # The Role an admin should grant (and bind) in my-app
  kubectl acme check -n my-app -o yaml | kubectl apply -f -
  kubectl create rolebinding kubectl-acme -n my-app --role kubectl-acme --user alice`,
		Args: cobra.NoArgs,
		RunE: runE(f, o),
	}
	fl := cmd.Flags()
	o.issuerFlags.addFlags(fl, "Also check what using this issuer needs")
	o.Output.addFlag(cmd, "Output format: wide, or yaml or json for the Role")
	addTimeoutFlag(fl, &o.Timeout, "Give up after this long")
	return cmd
}

// Complete fills in the namespace.
func (o *CheckOptions) Complete(f *Factory, cmd *cobra.Command, args []string) error {
	o.factory = f
	return o.complete(f)
}

// Validate checks the flags.
func (o *CheckOptions) Validate() error {
	if err := o.Output.validate(); err != nil {
		return err
	}
	if err := o.issuerFlags.validate(); err != nil {
		return err
	}
	if o.Issuer != "" {
		if err := certmanager.ValidateName("issuer", o.Issuer); err != nil {
			return err
		}
	}
	if err := positive("--timeout", o.Timeout); err != nil {
		return err
	}
	return nil
}

// Run reviews the permissions, or prints the Role.
func (o *CheckOptions) Run(ctx context.Context) error {
	st, err := o.factory.Store()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	scope, iss := rbac.AccessScope(ctx, st, o.Namespace, o.Issuer, o.ClusterIssuer, nil)
	perms := rbac.Needs(scope, rbac.Everyday...)
	if !o.Output.table() {
		roles := rbac.Roles(rbac.RoleName, perms)
		for _, r := range roles {
			if r.Namespace != o.Namespace {
				r.Name = rbac.RoleName + "-clusterissuer-" + o.Issuer
			}
		}
		return o.printRoles(roles)
	}
	results, err := rbac.Review(ctx, st.Client, perms)
	if err != nil {
		return err
	}
	missing := rbac.Missing(results)
	if o.Output.wide() {
		if err := printPermissions(o.Out, results, true); err != nil {
			return err
		}
	} else if len(missing) > 0 || len(optionalMissing(results)) > 0 {
		if err := printPermissions(o.Out, results, false); err != nil {
			return err
		}
	}
	drift, scheduleOK := scheduleDrift(ctx, st, o.Namespace)
	if drift != "" {
		fmt.Fprintln(o.Out, drift)
	}
	if opt := optionalMissing(results); len(opt) > 0 && len(missing) == 0 {
		fmt.Fprintf(o.ErrOut, "warning: %d optional permission(s) missing (%s): issue goes on without what they are for (NetworkPolicies that would drop the CA's requests go unchecked); %s\n", len(opt), strings.Join(opt, ", "), o.roleHint())
	}
	if len(missing) > 0 {
		return fmt.Errorf("%d of the %d permissions kubectl acme needs are missing; %s", len(missing), len(perms), o.roleHint())
	}
	fmt.Fprintf(o.Out, "All %d permissions kubectl acme needs %s are granted.\n", len(perms), whereScope(scope))
	if !scheduleOK {
		return errors.New("the renewal schedule's Role does not match what renew needs")
	}
	if iss == nil {
		return nil
	}
	// The issuer's solver objects, judged by the admission chain and the
	// NetworkPolicies as issue does before ordering.
	if err := issuance.AdmitSolvers(ctx, issuance.Options{Store: st, UserAgent: o.factory.UserAgent}, iss, o.Namespace); err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "The cluster admits the solver objects of %s in namespace %q (server-side dry run).\n", issuance.KindName(iss), o.Namespace)
	return nil
}

func (o *CheckOptions) roleHint() string {
	return roleHint(o.Namespace, o.Issuer, o.ClusterIssuer)
}

func roleHint(ns, issuer string, cluster bool) string {
	cmd := fmt.Sprintf("kubectl acme check -n %s -o yaml", ns)
	if cluster {
		cmd = fmt.Sprintf("kubectl acme check -n %s --issuer %s --cluster-issuer -o yaml", ns, issuer)
	}
	return fmt.Sprintf("`%s` prints a Role granting them", cmd)
}

func whereScope(s rbac.Scope) string {
	if s.ClusterIssuer != "" {
		return fmt.Sprintf("in namespaces %q and %q", s.Namespace, s.ClusterNamespace)
	}
	return fmt.Sprintf("in namespace %q", s.Namespace)
}

// printPermissions writes VERB, RESOURCE, NAMESPACE, ALLOWED; all rows,
// or only the missing ones.
func printPermissions(w io.Writer, rs []rbac.Result, all bool) error {
	var rows [][]string
	for _, r := range rs {
		if r.Allowed && !all {
			continue
		}
		allowed := "no"
		if r.Allowed {
			allowed = "yes"
		} else if r.Optional {
			allowed = "no (optional)"
		}
		res := r.ResourceName()
		if r.Name != "" {
			res += "/" + r.Name
		}
		rows = append(rows, []string{r.Verb, res, r.Namespace, allowed})
	}
	return printTable(w, []string{"VERB", "RESOURCE", "NAMESPACE", "ALLOWED"}, rows)
}

// optionalMissing are the optional permissions rs lacks, as VERB RESOURCE.
func optionalMissing(rs []rbac.Result) []string {
	var out []string
	for _, r := range rs {
		if !r.Allowed && r.Optional {
			out = append(out, r.Verb+" "+r.ResourceName())
		}
	}
	return out
}

// printRoles writes Roles as YAML documents or a JSON List, less the
// fields a fresh object has (creationTimestamp: null).
func (o *CheckOptions) printRoles(roles []*rbacv1.Role) error {
	list, err := toList(roles)
	if err != nil {
		return err
	}
	for i := range list.Items {
		dropFreshFields(list.Items[i].Object)
	}
	return o.Output.printDocuments(o.Out, list)
}

// MissingPermissionsError is the preflight's answer: the permissions a
// command needs and does not have.
type MissingPermissionsError struct {
	Missing []rbac.Permission
	Table   string
	Hint    string
}

func (e *MissingPermissionsError) Error() string {
	return fmt.Sprintf("you lack %d permission(s) this command needs; %s:\n%s", len(e.Missing), e.Hint, e.Table)
}

// preflight reviews what cmds need and fails fast, before anything is
// created, with the table of what is missing.
func preflight(ctx context.Context, c kubernetes.Interface, scope rbac.Scope, hint string, cmds ...rbac.Command) error {
	_, err := preflightRules(ctx, c, scope, hint, cmds...)
	return err
}

// preflightRules is preflight that also returns the rules review of
// scope's namespace (nil when there was none), for the command to skip
// requests it shows would be forbidden (rbac.DenyIngressClassReads).
func preflightRules(ctx context.Context, c kubernetes.Interface, scope rbac.Scope, hint string, cmds ...rbac.Command) (*rbac.Rules, error) {
	results, rules, err := rbac.Preflight(ctx, c, scope, cmds...)
	if err != nil || results == nil {
		return rules, err
	}
	var b bytes.Buffer
	if err := printPermissions(&b, results, false); err != nil {
		return nil, err
	}
	return nil, &MissingPermissionsError{Missing: rbac.Missing(results), Table: string(bytes.TrimRight(b.Bytes(), "\n")), Hint: hint}
}
