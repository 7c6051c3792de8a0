package issuance

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func TestLeaseOneHolderAtATime(t *testing.T) {
	ctx := t.Context()
	c := fake.NewClientset()
	a, _, _, err := acquireLease(ctx, c, "ns", "web", "alice@laptop pid 1", "", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _, _, err = acquireLease(ctx, c, "ns", "web", "bob@desk pid 2", "", false, nil)
	var held *LeaseHeldError
	if !errors.As(err, &held) || held.Holder != "alice@laptop pid 1" || !strings.Contains(err.Error(), "alice@laptop pid 1") || !strings.Contains(err.Error(), "--wait") {
		t.Fatalf("second holder: got %v, want a LeaseHeldError naming alice", err)
	}
	if li, err := CertificateLease(ctx, c, "ns", "web", time.Now()); err != nil || li == nil || li.Holder != "alice@laptop pid 1" {
		t.Errorf("CertificateLease = %+v, %v", li, err)
	}
	// Another certificate is independent.
	other, _, _, err := acquireLease(ctx, c, "ns", "api", "bob@desk pid 2", "", false, nil)
	if err != nil {
		t.Fatalf("another certificate: %v", err)
	}
	_ = other.release(ctx)

	// A waiter gets the lease once it is released.
	got := make(chan error, 1)
	go func() {
		b, _, _, err := acquireLease(ctx, c, "ns", "web", "bob@desk pid 2", "", true, nil)
		if err == nil {
			err = b.release(ctx)
		}
		got <- err
	}()
	time.Sleep(100 * time.Millisecond)
	if err := a.release(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("waiter: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiter did not get the released lease")
	}
	if _, err := c.CoordinationV1().Leases("ns").Get(ctx, LeaseName("web"), metav1.GetOptions{}); err == nil {
		t.Error("release left the lease behind")
	}
}

func TestLeaseOfACrashedHolderExpires(t *testing.T) {
	ctx := t.Context()
	past := metav1.NewMicroTime(time.Now().Add(-LeaseDuration - time.Second))
	holder, secs := "crashed@host pid 9", int32(LeaseDuration/time.Second)
	c := fake.NewClientset(&coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: LeaseName("web"), Namespace: "ns"},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs, AcquireTime: &past, RenewTime: &past},
	})
	if li, err := CertificateLease(ctx, c, "ns", "web", time.Now()); err != nil || li != nil {
		t.Errorf("an expired lease is not held: got %+v, %v", li, err)
	}
	l, lctx, _, err := acquireLease(ctx, c, "ns", "web", "me@host pid 1", "", false, nil)
	if err != nil {
		t.Fatalf("take over an expired lease: %v", err)
	}
	stored, _ := c.CoordinationV1().Leases("ns").Get(ctx, LeaseName("web"), metav1.GetOptions{})
	if *stored.Spec.HolderIdentity != "me@host pid 1" || stored.Spec.LeaseTransitions == nil || *stored.Spec.LeaseTransitions != 1 {
		t.Errorf("lease after takeover: %+v", stored.Spec)
	}
	if err := l.release(ctx); err != nil {
		t.Fatal(err)
	}
	if lctx.Err() == nil {
		t.Error("the lease's context must end with release")
	}
}

func TestLeaseLostCancelsTheIssuance(t *testing.T) {
	ctx := t.Context()
	c := fake.NewClientset()
	l, lctx, _, err := acquireLease(ctx, c, "ns", "web", "me@host pid 1", "", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.release(context.Background()) }()
	// The API server's optimistic concurrency, which the fake lacks: an
	// update must carry the stored resourceVersion.
	c.PrependReactor("update", "leases", func(a k8stesting.Action) (bool, runtime.Object, error) {
		l := a.(k8stesting.UpdateAction).GetObject().(*coordinationv1.Lease)
		cur, err := c.Tracker().Get(coordinationv1.SchemeGroupVersion.WithResource("leases"), l.Namespace, l.Name)
		if err == nil && cur.(*coordinationv1.Lease).ResourceVersion != l.ResourceVersion {
			return true, nil, apierrors.NewConflict(coordinationv1.Resource("leases"), l.Name, errors.New("the object has been modified"))
		}
		return false, nil, nil
	})
	// Renewing needs no read while nobody else writes the lease.
	if err := l.renew(ctx); err != nil {
		t.Fatalf("renew: %v", err)
	}
	// Someone else takes the lease over (we failed to renew in time).
	stored, _ := c.CoordinationV1().Leases("ns").Get(ctx, LeaseName("web"), metav1.GetOptions{})
	thief := "thief@host pid 2"
	stored.Spec.HolderIdentity = &thief
	stored.ResourceVersion = "taken"
	if err := c.Tracker().Update(coordinationv1.SchemeGroupVersion.WithResource("leases"), stored, "ns"); err != nil {
		t.Fatal(err)
	}
	if err := l.renew(ctx); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("renew after a takeover: %v, want ErrLeaseLost", err)
	}
	_ = lctx
}
