package issuance

import (
	"testing"
	"time"

	"k8s.io/client-go/kubernetes/fake"
)

func TestExpiredLeases(t *testing.T) {
	ctx := t.Context()
	c := fake.NewClientset()
	cl, _, _, err := acquireLease(ctx, c, "ns", "web", "alice@laptop pid 1", "", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	cl.stop() // killed: nobody renews or releases it
	<-cl.done
	now := time.Now()
	if l, err := ExpiredLeases(ctx, c, "", 0, now); err != nil || len(l) != 0 {
		t.Fatalf("a held lease is listed as expired: %+v, %v", l, err)
	}
	later := now.Add(LeaseDuration + time.Second)
	if l, err := ExpiredLeases(ctx, c, "ns", time.Minute, later); err != nil || len(l) != 0 {
		t.Fatalf("a lease expired a second ago is older than a minute: %+v, %v", l, err)
	}
	l, err := ExpiredLeases(ctx, c, "", 0, later)
	if err != nil || len(l) != 1 || l[0].Certificate != "web" || l[0].Holder != "alice@laptop pid 1" {
		t.Fatalf("ExpiredLeases = %+v, %v; want web's, held by alice", l, err)
	}
	deleted, err := DeleteExpiredLease(ctx, c, l[0])
	if err != nil || !deleted {
		t.Fatalf("DeleteExpiredLease = %v, %v", deleted, err)
	}
	if again, _ := ExpiredLeases(ctx, c, "", 0, later); len(again) != 0 {
		t.Errorf("still listed after delete: %+v", again)
	}
}
