package issuance

import (
	"context"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/store"
	"github.com/kubectl-acme/kubectl-acme/solver"
)

var leasesGVR = coordinationv1.SchemeGroupVersion.WithResource("leases")

// withDeleteCollection gives the fake the API server's deletecollection
// of leases by label selector, which it lacks.
func withDeleteCollection(c *fake.Clientset) {
	c.PrependReactor("delete-collection", "leases", func(a k8stesting.Action) (bool, runtime.Object, error) {
		sel := a.(k8stesting.DeleteCollectionAction).GetListRestrictions().Labels
		list, err := c.Tracker().List(leasesGVR, coordinationv1.SchemeGroupVersion.WithKind("Lease"), a.GetNamespace())
		if err != nil {
			return true, nil, err
		}
		for _, l := range list.(*coordinationv1.LeaseList).Items {
			if sel.Matches(labels.Set(l.Labels)) {
				if err := c.Tracker().Delete(leasesGVR, l.Namespace, l.Name); err != nil {
					return true, nil, err
				}
			}
		}
		return true, nil, nil
	})
}

// requests counts the fake's requests by verb and namespace.
func requests(c *fake.Clientset, verb, ns string) int {
	n := 0
	for _, a := range c.Actions() {
		if a.GetVerb() == verb && a.GetNamespace() == ns && a.GetResource().Resource == "leases" {
			n++
		}
	}
	return n
}

func leaseNames(t *testing.T, c *fake.Clientset, ns string) map[string]bool {
	t.Helper()
	list, err := c.CoordinationV1().Leases(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, l := range list.Items {
		out[l.Name] = true
	}
	return out
}

// acquireFinished takes cert's lease for rl's run and finishes it.
func acquireFinished(t *testing.T, c *fake.Clientset, rl *runLeases, ns, cert string) *certLease {
	t.Helper()
	cl, lctx, _, err := acquireLease(t.Context(), c, ns, cert, "me@host pid 1", rl.run, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	rl.finished(cl)
	select {
	case <-cl.done:
	default:
		t.Error("finished did not stop renewing")
	}
	if lctx.Err() == nil {
		t.Error("the lease's context must end when its certificate is done")
	}
	return cl
}

func TestRunLeasesGoInOneRequestPerNamespace(t *testing.T) {
	ctx := t.Context()
	c := fake.NewClientset()
	withDeleteCollection(c)
	rl := newRunLeases("r1")
	for _, cert := range []string{"a", "b", "c"} {
		acquireFinished(t, c, rl, "ns", cert)
	}
	acquireFinished(t, c, rl, "other", "d")
	// Another run's lease and one of a single-certificate issue stay.
	if _, _, _, err := acquireLease(ctx, c, "ns", "e", "you@host pid 2", "r2", false, nil); err != nil {
		t.Fatal(err)
	}
	single, _, _, err := acquireLease(ctx, c, "ns", "f", "you@host pid 2", "", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if single.lease.Labels[solver.LabelRun] != "" {
		t.Errorf("a single certificate's lease has run label %q", single.lease.Labels[solver.LabelRun])
	}
	l, _ := c.CoordinationV1().Leases("ns").Get(ctx, LeaseName("a"), metav1.GetOptions{})
	if l.Labels[solver.LabelRun] != "r1" || l.Labels[store.LabelKind] != certificateLeaseKind {
		t.Errorf("a run's lease has labels %v", l.Labels)
	}
	c.ClearActions()

	if err := rl.release(ctx); err != nil {
		t.Fatal(err)
	}
	if n := requests(c, "delete-collection", "ns"); n != 1 || requests(c, "delete", "ns") != 0 {
		t.Errorf("ns: %d deletecollections and %d deletes, want 1 and 0", n, requests(c, "delete", "ns"))
	}
	for _, a := range c.Actions() {
		if dc, ok := a.(k8stesting.DeleteCollectionAction); ok {
			want, _ := labels.Parse(certificateLeaseSelector + "," + solver.LabelRun + "=r1")
			if got := dc.GetListRestrictions().Labels; got.String() != want.String() {
				t.Errorf("deletecollection selects %q, want %q", got, want)
			}
		}
	}
	// The only lease in a namespace goes with its own preconditioned delete.
	if requests(c, "delete", "other") != 1 || requests(c, "delete-collection", "other") != 0 {
		t.Errorf("other: %d deletes, %d deletecollections, want 1 and 0", requests(c, "delete", "other"), requests(c, "delete-collection", "other"))
	}
	if got := leaseNames(t, c, "ns"); len(got) != 2 || !got[LeaseName("e")] || !got[LeaseName("f")] {
		t.Errorf("leases left in ns: %v, want those of e and f", got)
	}
	if got := leaseNames(t, c, "other"); len(got) != 0 {
		t.Errorf("leases left in other: %v", got)
	}
	_ = single.release(ctx)
}

// A lease of the run that expired and was taken over carries the taker's
// labels: the run's deletecollection leaves it to its new holder.
func TestRunLeaseTakenOverIsNotTheRunsAnyMore(t *testing.T) {
	ctx := t.Context()
	c := fake.NewClientset()
	withDeleteCollection(c)
	rl := newRunLeases("r1")
	acquireFinished(t, c, rl, "ns", "a")
	acquireFinished(t, c, rl, "ns", "b")
	for _, taker := range []struct{ cert, run string }{{"a", "r2"}, {"b", ""}} {
		l, err := c.CoordinationV1().Leases("ns").Get(ctx, LeaseName(taker.cert), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		past := metav1.NewMicroTime(time.Now().Add(-LeaseDuration - time.Second))
		l.Spec.RenewTime = &past
		if err := c.Tracker().Update(leasesGVR, l, "ns"); err != nil {
			t.Fatal(err)
		}
		cl, _, _, err := acquireLease(ctx, c, "ns", taker.cert, "you@host pid 2", taker.run, false, nil)
		if err != nil {
			t.Fatalf("take over %s: %v", taker.cert, err)
		}
		defer cl.stopRenewing()
		got, _ := c.CoordinationV1().Leases("ns").Get(ctx, LeaseName(taker.cert), metav1.GetOptions{})
		if v, ok := got.Labels[solver.LabelRun]; v != taker.run || (taker.run == "" && ok) {
			t.Errorf("%s after takeover: run label %q, want %q", taker.cert, v, taker.run)
		}
		if got.Labels[store.LabelKind] != certificateLeaseKind {
			t.Errorf("%s after takeover: labels %v", taker.cert, got.Labels)
		}
	}
	if err := rl.release(ctx); err != nil {
		t.Fatal(err)
	}
	if got := leaseNames(t, c, "ns"); len(got) != 2 {
		t.Errorf("the run's release deleted leases it no longer held: left %v", got)
	}
	for _, cert := range []string{"a", "b"} {
		if li, _ := CertificateLease(ctx, c, "ns", cert, time.Now()); li == nil || li.Holder != "you@host pid 2" {
			t.Errorf("%s: holder %+v, want the taker", cert, li)
		}
	}
}

// Without the deletecollection permission each lease goes by itself,
// quietly.
func TestRunLeasesWithoutDeleteCollection(t *testing.T) {
	ctx := t.Context()
	c := fake.NewClientset()
	c.PrependReactor("delete-collection", "leases", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(leasesGVR.GroupResource(), "", nil)
	})
	rl := newRunLeases("r1")
	for _, cert := range []string{"a", "b", "c"} {
		acquireFinished(t, c, rl, "ns", cert)
	}
	c.ClearActions()
	if err := rl.release(ctx); err != nil {
		t.Errorf("release without deletecollection: %v, want nothing to report", err)
	}
	if requests(c, "delete-collection", "ns") != 1 || requests(c, "delete", "ns") != 3 {
		t.Errorf("%d deletecollections, %d deletes, want 1 and 3", requests(c, "delete-collection", "ns"), requests(c, "delete", "ns"))
	}
	for _, a := range c.Actions() {
		if d, ok := a.(k8stesting.DeleteAction); ok && a.GetVerb() == "delete" {
			if p := d.GetDeleteOptions().Preconditions; p == nil || p.UID == nil || p.ResourceVersion == nil {
				t.Errorf("delete of %s without UID and resourceVersion preconditions", d.GetName())
			}
		}
	}
	if got := leaseNames(t, c, "ns"); len(got) != 0 {
		t.Errorf("leases left: %v", got)
	}
}

// In a run of several certificates, lockCertificate labels the lease with
// the run and unlock leaves it to the run's release.
func TestLockCertificateInARun(t *testing.T) {
	ctx := t.Context()
	c := fake.NewClientset()
	withDeleteCollection(c)
	g := newGatherer(ctx, 2)
	o := &Options{Store: &store.Store{Client: c}, LeaseHolder: "me@host pid 1", group: &jobGroup{g: g}}
	for _, name := range []string{"a", "b"} {
		cert := &certmanager.Certificate{}
		cert.Namespace, cert.Name = "ns", name
		unlock, _, err := lockCertificate(ctx, o, cert)
		if err != nil {
			t.Fatal(err)
		}
		unlock()
	}
	for _, name := range []string{"a", "b"} {
		l, err := c.CoordinationV1().Leases("ns").Get(ctx, LeaseName(name), metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s: unlock in a run deleted the lease: %v", name, err)
		}
		if l.Labels[solver.LabelRun] != g.run {
			t.Errorf("%s: run label %q, want %q", name, l.Labels[solver.LabelRun], g.run)
		}
	}
	// The run's end, after an interrupt: the release still happens.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := g.leases.release(cctx); err != nil {
		t.Fatal(err)
	}
	if got := leaseNames(t, c, "ns"); len(got) != 0 {
		t.Errorf("leases left after the run: %v", got)
	}
}
