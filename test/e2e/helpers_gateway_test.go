package e2e

import (
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// solverHTTPRoutes lists the HTTPRoutes in ns matching selector ("" for
// all), as "httproute/NAME"; none when the cluster has no Gateway API.
func solverHTTPRoutes(t *testing.T, ns, selector string) []string {
	t.Helper()
	list, err := dynamicClient(t).Resource(httpRoutesGVR).Namespace(ns).List(t.Context(), metav1.ListOptions{LabelSelector: selector})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatalf("list httproutes in %s: %v", ns, err)
	}
	var out []string
	for _, o := range list.Items {
		out = append(out, "httproute/"+o.GetName())
	}
	return out
}
