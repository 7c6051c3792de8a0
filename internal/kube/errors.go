// Package kube holds what every package that talks to the API server shares:
// errors that say which permission is missing.
package kube

import (
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Describe turns a Forbidden error into one naming the missing permission;
// other errors get the verb, resource and namespace as context.
func Describe(err error, verb, resource, ns string) error {
	where := fmt.Sprintf("in namespace %q", ns)
	if ns == "" {
		where = "in all namespaces"
	}
	if apierrors.IsForbidden(err) {
		return fmt.Errorf("forbidden: you may not %s %s %s; ask your cluster admin for a Role granting it: %w", verb, resource, where, err)
	}
	return fmt.Errorf("%s %s %s: %w", verb, resource, where, err)
}
