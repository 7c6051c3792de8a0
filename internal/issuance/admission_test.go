package issuance

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/store"
	"github.com/kubectl-acme/kubectl-acme/solver"
)

// dryRuns counts the dryRun=All creates of solver objects by resource,
// and the hosts of each Ingress sent; an Ingress with a host in deny is
// refused as a ValidatingAdmissionPolicy refuses it.
type dryRuns struct {
	mu     sync.Mutex
	counts map[string]int
	hosts  [][]string
}

func fakeAdmission(deny string) (*fake.Clientset, *dryRuns) {
	c := fake.NewClientset()
	d := &dryRuns{counts: map[string]int{}}
	c.PrependReactor("create", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		ca := a.(k8stesting.CreateActionImpl)
		if !slices.Contains(ca.GetCreateOptions().DryRun, "All") {
			return false, nil, nil
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		res := a.GetResource().Resource
		d.counts[res]++
		if ing, ok := ca.GetObject().(*networkingv1.Ingress); ok {
			var hosts []string
			for _, r := range ing.Spec.Rules {
				hosts = append(hosts, r.Host)
			}
			d.hosts = append(d.hosts, hosts)
			if deny != "" && slices.Contains(hosts, deny) {
				return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "networking.k8s.io", Resource: "ingresses"}, ing.Name,
					errors.New("ValidatingAdmissionPolicy 'no-bad' with binding 'no-bad-binding' denied request: host "+deny+" is not allowed"))
			}
		}
		return true, ca.GetObject(), nil
	})
	return c, d
}

// admitJobs predicts the run's groups from jobs, then has each job judge
// its solver objects as Issue does, concurrently; it returns each job's
// verdict.
func admitJobs(t *testing.T, c *fake.Clientset, jobs []*Job) []error {
	t.Helper()
	ctx := t.Context()
	o := Options{Store: &store.Store{Client: c}, NetworkPolicies: &solver.NetworkPolicies{}, IngressClasses: &solver.IngressClasses{}}
	g := newGatherer(ctx, len(jobs))
	g.predictAdmission(o, jobs)
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			jo := o
			jo.group = &jobGroup{g: g, slot: &slot{sem: make(chan struct{}, 1)}}
			sv, err := newSolver(&jo, j.Issuer, j.Cert)
			if err != nil {
				errs[i] = err
				return
			}
			errs[i] = admit(ctx, sv, j.Cert)
		}()
	}
	wg.Wait()
	return errs
}

func admissionJobs(n int) []*Job {
	iss := storedIssuer(certmanager.KindIssuer, "ns", "le", certmanager.ACMEChallengeSolver{HTTP01: &certmanager.ACMEChallengeSolverHTTP01{
		Ingress: &certmanager.ACMEChallengeSolverHTTP01Ingress{IngressClassName: ptr.To("nginx")},
	}})
	var jobs []*Job
	for i := range n {
		cert := &certmanager.Certificate{Spec: certmanager.CertificateSpec{SecretName: fmt.Sprintf("c%d", i), IssuerRef: certmanager.IssuerRef{Name: "le"}, DNSNames: []string{fmt.Sprintf("c%d.example", i)}}}
		cert.Name, cert.Namespace = fmt.Sprintf("c%d", i), "ns"
		jobs = append(jobs, &Job{Cert: cert, Issuer: iss})
	}
	return jobs
}

// Admitted: one dry run of the shared pod, Service and Ingress, the
// Ingress carrying every certificate's host, stands for all of them.
func TestRunAdmissionOncePerGroup(t *testing.T) {
	c, d := fakeAdmission("")
	for i, err := range admitJobs(t, c, admissionJobs(3)) {
		if err != nil {
			t.Errorf("job %d: %v", i, err)
		}
	}
	if d.counts["pods"] != 1 || d.counts["services"] != 1 || d.counts["ingresses"] != 1 {
		t.Errorf("dry runs %v, want one pod, service and ingress", d.counts)
	}
	if len(d.hosts) != 1 || !slices.Equal(d.hosts[0], []string{"c0.example", "c1.example", "c2.example"}) {
		t.Errorf("ingress hosts judged %v", d.hosts)
	}
}

// Refused: every certificate is judged on its own, so the denial is the
// certificate's whose host caused it, and the others pass.
func TestRunAdmissionFallsBackPerCertificate(t *testing.T) {
	c, d := fakeAdmission("c1.example")
	errs := admitJobs(t, c, admissionJobs(3))
	for i, err := range errs {
		var ae *solver.AdmissionError
		switch {
		case i == 1 && (!errors.As(err, &ae) || !strings.Contains(err.Error(), `ValidatingAdmissionPolicy "no-bad"`) || !strings.Contains(err.Error(), "c1.example")):
			t.Errorf("job 1: want the policy's denial naming c1.example, got %v", err)
		case i != 1 && err != nil:
			t.Errorf("job %d: %v", i, err)
		}
	}
	// The group's, then one per certificate.
	if d.counts["pods"] != 4 || d.counts["ingresses"] != 4 {
		t.Errorf("dry runs %v, want 4 pods and 4 ingresses", d.counts)
	}
}

// A certificate whose names changed after the run grouped it (its
// Prepare replaced it) is judged on its own; the others still share.
func TestRunAdmissionChangedCertificateOnItsOwn(t *testing.T) {
	c, d := fakeAdmission("")
	jobs := admissionJobs(3)
	ctx := t.Context()
	o := Options{Store: &store.Store{Client: c}, NetworkPolicies: &solver.NetworkPolicies{}, IngressClasses: &solver.IngressClasses{}}
	g := newGatherer(ctx, len(jobs))
	g.predictAdmission(o, jobs)
	changed := *jobs[2].Cert
	changed.Spec.DNSNames = []string{"other.example"}
	jobs[2].Cert = &changed
	for i, j := range jobs {
		jo := o
		jo.group = &jobGroup{g: g, slot: &slot{sem: make(chan struct{}, 1)}}
		sv, err := newSolver(&jo, j.Issuer, j.Cert)
		if err != nil {
			t.Fatal(err)
		}
		if err := admit(ctx, sv, j.Cert); err != nil {
			t.Errorf("job %d: %v", i, err)
		}
	}
	if d.counts["ingresses"] != 2 || !slices.Equal(d.hosts[1], []string{"other.example"}) {
		t.Errorf("dry runs %v, ingress hosts %v", d.counts, d.hosts)
	}
}
