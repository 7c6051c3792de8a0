package plugin

import (
	"context"
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/kubectl-acme/kubectl-acme/internal/rbac"
	"github.com/kubectl-acme/kubectl-acme/internal/schedule"
	"github.com/kubectl-acme/kubectl-acme/internal/store"
)

// ScheduledRoleError is a scheduled run's answer when its ServiceAccount
// lacks permissions the schedule's Role granted: the Role was edited, or
// the namespace gained a certificate of another issuer since schedule ran.
type ScheduledRoleError struct {
	Namespace string
	// Flags are those the schedule was made with besides -n: a cluster
	// resource namespace other than the default.
	Flags   string
	Missing []rbac.Permission
}

func (e *ScheduledRoleError) Error() string {
	names := make([]string, len(e.Missing))
	for i, p := range e.Missing {
		names[i] = p.String()
	}
	return fmt.Sprintf("the schedule's ServiceAccount lacks %d permission(s) the renewal needs: %s; nothing was ordered or created. Run `kubectl acme schedule -n %s%s` again to restore its Role (kubectl acme check -n %s%s shows the difference)",
		len(e.Missing), strings.Join(names, ", "), e.Namespace, e.Flags, e.Namespace, e.Flags)
}

// scheduledPreflight runs before a scheduled renewal orders anything: the
// ServiceAccount must hold every permission kubectl acme schedule grants
// for the namespace (schedule.Permissions), the optional ones too, since
// the Role holds them and an unattended run has nobody to read a warning.
// A run that lacked one would otherwise fail midway, or leave a solver pod
// it may not delete, or fail without the Event alerting relies on. A
// cluster that does not let the ServiceAccount review its own access
// skips the check, as issue's preflight does.
func (o *RenewOptions) scheduledPreflight(ctx context.Context, st *store.Store) error {
	perms, err := schedule.Permissions(ctx, st, o.Namespace)
	if apierrors.IsForbidden(errors.Unwrap(err)) {
		// Without reading the namespace's certificates, what renewing
		// through an Issuer of the namespace needs, which the Role holds
		// whatever the issuers (ClusterIssuers add to it).
		perms, err = rbac.Needs(rbac.BaseScope(st.ClusterNamespace, o.Namespace, "", false), rbac.Issue, rbac.Several, rbac.Renew, rbac.Scheduled), nil
	}
	if err != nil {
		return err
	}
	for i := range perms {
		perms[i].Optional = false
	}
	results, err := rbac.Review(ctx, st.Client, perms)
	if err != nil {
		if apierrors.IsForbidden(errors.Unwrap(err)) || apierrors.IsNotFound(errors.Unwrap(err)) {
			return nil
		}
		return err
	}
	if missing := rbac.Missing(results); len(missing) > 0 {
		e := &ScheduledRoleError{Namespace: o.Namespace, Missing: missing}
		if cns := schedule.ClusterNamespace(st); cns != store.DefaultClusterNamespace {
			e.Flags = " --cluster-resource-namespace " + cns
		}
		return e
	}
	return nil
}
