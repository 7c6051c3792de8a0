package issuance

import (
	"context"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-acme/kubectl-acme/internal/kube"
)

// ExpiredLease is a certificate Lease nobody holds any more: its holder
// was killed before it could release it. The next issue would take it
// over; cleanup deletes it so nothing is left behind.
type ExpiredLease struct {
	Namespace, Name, Certificate string
	LeaseInfo
	resourceVersion string
}

// ExpiredLeases lists the certificate Leases in ns ("" for all) that
// expired at least olderThan before now.
func ExpiredLeases(ctx context.Context, c kubernetes.Interface, ns string, olderThan time.Duration, now time.Time) ([]ExpiredLease, error) {
	list, err := c.CoordinationV1().Leases(ns).List(ctx, metav1.ListOptions{
		LabelSelector: certificateLeaseSelector,
	})
	if err != nil {
		return nil, kube.Describe(err, "list", "leases.coordination.k8s.io", ns)
	}
	var out []ExpiredLease
	for i := range list.Items {
		l := &list.Items[i]
		li := leaseInfo(l)
		if now.Before(li.Expires.Add(olderThan)) {
			continue
		}
		out = append(out, ExpiredLease{
			Namespace: l.Namespace, Name: l.Name, Certificate: strings.TrimPrefix(l.Name, LeaseName("")),
			LeaseInfo: li, resourceVersion: l.ResourceVersion,
		})
	}
	return out, nil
}

// DeleteExpiredLease deletes l unless it changed since it was listed: a
// process that took it over in between keeps it (deleted is false).
func DeleteExpiredLease(ctx context.Context, c kubernetes.Interface, l ExpiredLease) (deleted bool, _ error) {
	err := c.CoordinationV1().Leases(l.Namespace).Delete(ctx, l.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{ResourceVersion: &l.resourceVersion},
	})
	switch {
	case err == nil:
		return true, nil
	case apierrors.IsNotFound(err) || apierrors.IsConflict(err):
		return false, nil
	}
	return false, kube.Describe(err, "delete", "leases.coordination.k8s.io", l.Namespace)
}
