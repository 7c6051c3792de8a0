package plugin

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-acme/kubectl-acme/internal/schedule"
	"github.com/kubectl-acme/kubectl-acme/internal/store"
)

// printSchedules writes the schedules of ns ("" for all namespaces) under
// the certificates' table; nothing where there are none or the user may
// not list them (schedule.List).
func printSchedules(ctx context.Context, w io.Writer, c kubernetes.Interface, ns string, now time.Time) error {
	rows := schedule.List(ctx, c, ns, now)
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

// scheduleDrift says whether the Roles of ns's schedule, if there is
// one, still grant exactly what its renewal needs (schedule.RoleDrift);
// ok is false when there is a schedule and they do not.
func scheduleDrift(ctx context.Context, st *store.Store, ns string) (report string, ok bool) {
	d, err := schedule.CheckRoles(ctx, st, ns)
	if err != nil || !d.Found {
		return "", true
	}
	if d.OK() {
		return fmt.Sprintf("The renewal schedule's Role in namespace %q grants exactly what renew needs.", ns), true
	}
	var b strings.Builder
	fmt.Fprintf(&b, "The renewal schedule's Role in namespace %q no longer matches what renew needs", ns)
	for i, p := range d.Missing {
		if i == 0 {
			b.WriteString("; missing: ")
		} else {
			b.WriteString(", ")
		}
		b.WriteString(p.String())
	}
	if d.Extra {
		b.WriteString("; it grants more than renew needs")
	}
	fmt.Fprintf(&b, ". Run `kubectl acme schedule -n %s` again to update it.", ns)
	return b.String(), false
}
