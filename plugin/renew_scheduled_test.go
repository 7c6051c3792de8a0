package plugin

import (
	"errors"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubectl-acme/kubectl-acme/internal/store"
)

// TestScheduledPreflight: a scheduled run lacking any permission the
// schedule grants fails naming each of them, the optional NetworkPolicy
// list too; holding them all, it goes on.
func TestScheduledPreflight(t *testing.T) {
	for _, tc := range []struct {
		name   string
		denied string // resource the reviews deny
		want   []string
	}{
		{"all granted", "", nil},
		{"pods", "pods", []string{"watch pods", "create pods", "delete pods"}},
		{"optional networkpolicies", "networkpolicies", []string{`list networkpolicies.networking.k8s.io in namespace "web"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fake.NewClientset()
			// The rules review grants nothing, so every permission gets an
			// access review, answered by resource.
			c.PrependReactor("create", "selfsubjectrulesreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
				return true, &authorizationv1.SelfSubjectRulesReview{}, nil
			})
			c.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
				r := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview)
				r.Status.Allowed = r.Spec.ResourceAttributes.Resource != tc.denied
				return true, r, nil
			})
			o := &RenewOptions{namespaceFlags: namespaceFlags{Namespace: "web"}, Scheduled: true}
			err := o.scheduledPreflight(t.Context(), &store.Store{Client: c})
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var re *ScheduledRoleError
			if !errors.As(err, &re) || len(re.Missing) != len(tc.want) {
				t.Fatalf("got %v, want the %d missing permissions", err, len(tc.want))
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not name %q", err, w)
				}
			}
		})
	}
}
