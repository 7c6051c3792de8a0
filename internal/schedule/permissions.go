package schedule

import (
	"context"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/rbac"
	"github.com/kubectl-acme/kubectl-acme/internal/store"
)

// Permissions is what the schedule's `renew --all --scheduled` needs in
// ns: renewing each of the namespace's certificates through its issuer
// (its solvers, a ClusterIssuer's account key), or, before there is any,
// renewing through an Issuer of the namespace; plus deleting the run's
// Leases at once and creating Events.
func Permissions(ctx context.Context, st *store.Store, ns string) ([]rbac.Permission, error) {
	certs, err := st.ListCertificates(ctx, ns)
	if err != nil {
		return nil, err
	}
	scopes := []rbac.Scope{rbac.BaseScope(st.ClusterNamespace, ns, "", false)}
	for _, cert := range certs {
		ref := cert.Spec.IssuerRef
		cluster := ref.Kind == certmanager.KindClusterIssuer
		iss, err := st.GetIssuer(ctx, cert.Namespace, ref.Name, cluster)
		if err != nil {
			scopes = append(scopes, rbac.BaseScope(st.ClusterNamespace, ns, ref.Name, cluster))
			continue
		}
		scopes = append(scopes, rbac.IssuerScope(st.ClusterNamespace, ns, iss, cert))
	}
	if len(certs) > 0 {
		scopes = scopes[1:]
	}
	seen := map[rbac.Permission]bool{}
	var out []rbac.Permission
	for _, s := range scopes {
		for _, p := range rbac.Needs(s, rbac.Issue, rbac.Several, rbac.Renew, rbac.Scheduled) {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	rbac.Sort(out)
	return out, nil
}

// CheckRoles is RoleDrift for what ns's renewal needs now.
func CheckRoles(ctx context.Context, st *store.Store, ns string) (Drift, error) {
	want, err := Permissions(ctx, st, ns)
	if err != nil {
		return Drift{}, err
	}
	return RoleDrift(ctx, st.Client, ns, ClusterNamespace(st), want), nil
}

// ClusterNamespace is where st keeps ClusterIssuers and their account
// keys.
func ClusterNamespace(st *store.Store) string {
	if st.ClusterNamespace != "" {
		return st.ClusterNamespace
	}
	return store.DefaultClusterNamespace
}
