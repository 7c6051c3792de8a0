// Package kube holds what every package that talks to the API server shares:
// errors that say which permission is missing.
package kube

import (
	"errors"
	"fmt"
	"regexp"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// rbacDenied is how the authorizer words a refusal (k8s.io/apiserver
// pkg/endpoints/handlers/responsewriters/errors.go, forbiddenMessage):
// `User "alice" cannot create resource "pods" in API group "" in the
// namespace "x"`. Admission refusals (Pod Security, ResourceQuota, a
// webhook) are Forbidden too, and never say so.
var rbacDenied = regexp.MustCompile(` cannot \S+ resource "`)

// IsRBACForbidden reports whether err is the authorizer's Forbidden, not
// an admission plugin's.
func IsRBACForbidden(err error) bool {
	var st apierrors.APIStatus
	if !apierrors.IsForbidden(err) || !errors.As(err, &st) {
		return false
	}
	return rbacDenied.MatchString(st.Status().Message)
}

// Describe turns a Forbidden error into one naming the missing permission;
// other errors get the verb, resource and namespace as context.
func Describe(err error, verb, resource, ns string) error {
	where := fmt.Sprintf("in namespace %q", ns)
	if ns == "" {
		where = "in all namespaces"
	}
	if IsRBACForbidden(err) {
		return fmt.Errorf("forbidden: you may not %s %s %s; ask your cluster admin for a Role granting it: %w", verb, resource, where, err)
	}
	if apierrors.IsForbidden(err) {
		return fmt.Errorf("%s %s %s: refused by admission: %w", verb, resource, where, err)
	}
	return fmt.Errorf("%s %s %s: %w", verb, resource, where, err)
}
