package solver

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// ListenerSets is the Gateway API's ListenerSet (gateway.networking.k8s.io/v1
// since Gateway API 1.5; cert-manager 1.20+ attaches HTTP-01 routes to it).
var ListenerSets = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "listenersets"}

// checkListenerSetParents fails, before anything is created, when a parent
// is a ListenerSet and the cluster does not serve that kind: the HTTPRoute
// would be accepted by the API server and attach to nothing.
func checkListenerSetParents(ctx context.Context, dc dynamic.Interface, ns string, refs []gatewayv1.ParentReference) error {
	for _, pr := range refs {
		if pr.Kind == nil || *pr.Kind != "ListenerSet" {
			continue
		}
		if pr.Group != nil && *pr.Group != "" && *pr.Group != gatewayv1.GroupName {
			continue // someone else's ListenerSet kind: the Gateway controller decides
		}
		pns := ns
		if pr.Namespace != nil && *pr.Namespace != "" {
			pns = string(*pr.Namespace)
		}
		_, err := dc.Resource(ListenerSets).Namespace(pns).List(ctx, metav1.ListOptions{Limit: 1})
		switch {
		case err == nil, apierrors.IsForbidden(err):
			// Served; whether this ListenerSet exists and accepts the
			// route is the Gateway controller's to say (route status).
		case kindNotServed(err):
			return fmt.Errorf("parent ListenerSet %s/%s: the cluster does not serve ListenerSets (gateway.networking.k8s.io/v1, Gateway API 1.5+): install a Gateway API release that has them, or name the Gateway (acme.cert-manager.io/http01-parentrefkind: Gateway)", pns, pr.Name)
		default:
			return fmt.Errorf("list ListenerSets in %s: %w", pns, err)
		}
	}
	return nil
}
