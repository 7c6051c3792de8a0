package issuance

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestLeaseOneHolderAtATime(t *testing.T) {
	ctx := t.Context()
	c := fake.NewClientset()
	a, _, _, err := acquireLease(ctx, c, "ns", "web", "alice@laptop pid 1", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _, _, err = acquireLease(ctx, c, "ns", "web", "bob@desk pid 2", false, nil)
	var held *LeaseHeldError
	if !errors.As(err, &held) || held.Holder != "alice@laptop pid 1" || !strings.Contains(err.Error(), "alice@laptop pid 1") || !strings.Contains(err.Error(), "--wait") {
		t.Fatalf("second holder: got %v, want a LeaseHeldError naming alice", err)
	}
	if li, err := CertificateLease(ctx, c, "ns", "web", time.Now()); err != nil || li == nil || li.Holder != "alice@laptop pid 1" {
		t.Errorf("CertificateLease = %+v, %v", li, err)
	}
	// Another certificate is independent.
	other, _, _, err := acquireLease(ctx, c, "ns", "api", "bob@desk pid 2", false, nil)
	if err != nil {
		t.Fatalf("another certificate: %v", err)
	}
	_ = other.release(ctx)

	// A waiter gets the lease once it is released.
	got := make(chan error, 1)
	go func() {
		b, _, _, err := acquireLease(ctx, c, "ns", "web", "bob@desk pid 2", true, nil)
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
	l, lctx, _, err := acquireLease(ctx, c, "ns", "web", "me@host pid 1", false, nil)
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
	l, lctx, _, err := acquireLease(ctx, c, "ns", "web", "me@host pid 1", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.release(context.Background()) }()
	// Someone else takes the lease over (we failed to renew in time).
	stored, _ := c.CoordinationV1().Leases("ns").Get(ctx, LeaseName("web"), metav1.GetOptions{})
	thief := "thief@host pid 2"
	stored.Spec.HolderIdentity = &thief
	if _, err := c.CoordinationV1().Leases("ns").Update(ctx, stored, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := l.renew(ctx); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("renew after a takeover: %v, want ErrLeaseLost", err)
	}
	_ = lctx
}
