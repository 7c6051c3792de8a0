package solver

import (
	"context"
	"sync/atomic"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func TestPathTypeFor(t *testing.T) {
	impl, exact := networkingv1.PathTypeImplementationSpecific, networkingv1.PathTypeExact
	tests := []struct {
		controller, class string
		want              networkingv1.PathType
	}{
		{"k8s.io/ingress-nginx", "anything", impl},
		{"openshift.io/ingress-to-route", "", impl},
		{"traefik.io/ingress-controller", "nginx", exact}, // the controller decides, not the name
		{"", "nginx", impl},
		{"", "gce", impl},
		{"", "gce-internal", impl},
		{"", "traefik", exact},
		{"", "", exact},
	}
	for _, tt := range tests {
		got, why := PathTypeFor(tt.controller, tt.class)
		if got != tt.want || why == "" {
			t.Errorf("PathTypeFor(%q, %q) = %s (%q), want %s", tt.controller, tt.class, got, why, tt.want)
		}
	}
}

func TestIngressClassLookup(t *testing.T) {
	ctx := context.Background()
	classes := []runtime.Object{
		&networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "public"}, Spec: networkingv1.IngressClassSpec{Controller: "k8s.io/ingress-nginx"}},
		&networkingv1.IngressClass{
			ObjectMeta: metav1.ObjectMeta{Name: "edge", Annotations: map[string]string{networkingv1.AnnotationIsDefaultIngressClass: "true"}},
			Spec:       networkingv1.IngressClassSpec{Controller: "traefik.io/ingress-controller"},
		},
	}
	client := fake.NewClientset(classes...)
	var reads atomic.Int32
	client.PrependReactor("*", "ingressclasses", func(k8stesting.Action) (bool, runtime.Object, error) {
		reads.Add(1)
		return false, nil, nil
	})
	ic := &IngressClasses{}
	for range 3 {
		if c, n := ic.controller(ctx, client, "public"); c != "k8s.io/ingress-nginx" || n != "public" {
			t.Errorf("class public: controller %q name %q", c, n)
		}
	}
	if c, n := ic.controller(ctx, client, ""); c != "traefik.io/ingress-controller" || n != "edge" {
		t.Errorf("default class: controller %q name %q", c, n)
	}
	if c, n := ic.controller(ctx, client, "gce"); c != "" || n != "gce" {
		t.Errorf("missing class gce: controller %q name %q, want the name alone", c, n)
	}
	if got := reads.Load(); got != 3 {
		t.Errorf("%d IngressClass requests, want 3 (one per class)", got)
	}

	// A namespaced Role cannot read IngressClasses: the name decides.
	forbidden := fake.NewClientset(classes...)
	forbidden.PrependReactor("*", "ingressclasses", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "networking.k8s.io", Resource: "ingressclasses"}, "public", nil)
	})
	if c, n := (*IngressClasses)(nil).controller(ctx, forbidden, "public"); c != "" || n != "public" {
		t.Errorf("forbidden: controller %q name %q", c, n)
	}
	if got, _ := PathTypeFor((*IngressClasses)(nil).controller(ctx, forbidden, "nginx")); got != networkingv1.PathTypeImplementationSpecific {
		t.Errorf("forbidden, class nginx: %s", got)
	}
}

// TestIngressClassDeny: a read the user's rules forbid is not sent, and
// decides as its Forbidden answer would.
func TestIngressClassDeny(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset(&networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "public"}, Spec: networkingv1.IngressClassSpec{Controller: "k8s.io/ingress-nginx"}})
	var reads atomic.Int32
	client.PrependReactor("*", "ingressclasses", func(k8stesting.Action) (bool, runtime.Object, error) {
		reads.Add(1)
		return false, nil, nil
	})
	ic := &IngressClasses{}
	ic.Deny(func(verb, name string) bool { return name != "public" })
	if c, n := ic.controller(ctx, client, "nginx"); c != "" || n != "nginx" {
		t.Errorf("denied class nginx: controller %q name %q, want the name alone", c, n)
	}
	if c, n := ic.controller(ctx, client, ""); c != "" || n != "" {
		t.Errorf("denied list for the default class: controller %q name %q", c, n)
	}
	if c, _ := ic.controller(ctx, client, "public"); c != "k8s.io/ingress-nginx" {
		t.Errorf("allowed class public: controller %q", c)
	}
	if got := reads.Load(); got != 1 {
		t.Errorf("%d IngressClass requests, want 1 (the allowed one)", got)
	}
}
