package bench

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubectl-acme/kubectl-acme/acme"
	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/store"
)

// fastClient is a clientset without client-go's default 5 QPS limit, for
// seeding (which is not timed).
func fastClient(kubeconfig string) (kubernetes.Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 2000, 4000
	cfg.UserAgent = "kubectl-acme-bench"
	return kubernetes.NewForConfig(cfg)
}

func createNamespace(ctx context.Context, c kubernetes.Interface, name string) error {
	_, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	return nil
}

// statusNamespace names the i-th namespace of the status-at-scale seed.
func statusNamespace(i int) string { return fmt.Sprintf("bench-status-%02d", i) }

// syntheticCertificate is the i-th seeded Certificate: mostly issued ones,
// with some failed, some expired and some with several names, the way
// kubectl-acme itself stores them.
func syntheticCertificate(ns string, i int, now time.Time) *certmanager.Certificate {
	name := fmt.Sprintf("site-%03d", i)
	c := &certmanager.Certificate{}
	c.APIVersion, c.Kind = certmanager.GroupVersion, certmanager.KindCertificate
	c.Name, c.Namespace = name, ns
	c.Spec = certmanager.CertificateSpec{
		SecretName: name + "-tls",
		DNSNames:   []string{name + "." + ns + ".example.test"},
		IssuerRef:  certmanager.IssuerRef{Name: "pebble", Kind: certmanager.KindIssuer, Group: certmanager.Group},
	}
	for j := range i % 4 {
		c.Spec.DNSNames = append(c.Spec.DNSNames, fmt.Sprintf("alt%d.%s.%s.example.test", j, name, ns))
	}
	issued := now.Add(-time.Duration(i%60) * 24 * time.Hour)
	started := metav1.NewTime(issued.Add(-2 * time.Second))
	finished := metav1.NewTime(issued)
	c.Status = certmanager.CertificateStatus{
		NotBefore:   &metav1.Time{Time: issued},
		NotAfter:    &metav1.Time{Time: issued.Add(90 * 24 * time.Hour)},
		RenewalTime: &metav1.Time{Time: issued.Add(60 * 24 * time.Hour)},
		Revision:    1 + i%3,
		Serial:      fmt.Sprintf("%016X", uint64(i)*0x9E3779B97F4A7C15),
		LastOrder: &certmanager.OrderStatus{
			URL: fmt.Sprintf("https://127.0.0.1/my-order/%s-%d", ns, i), State: acme.StateIssued,
			Started: started, Finished: &finished,
			Challenges: []certmanager.ChallengeStatus{{Identifier: c.Spec.DNSNames[0], Type: "http-01", State: acme.StateValid}},
		},
	}
	switch {
	case i%25 == 7:
		c.Status.NotAfter = &metav1.Time{Time: now.Add(-24 * time.Hour)}
	case i%20 == 3:
		failed := metav1.NewTime(now.Add(-time.Hour))
		c.Status.LastFailure = "challenge failed: " + c.Spec.DNSNames[0] + ": unauthorized: 404 from the ingress"
		c.Status.LastFailureTime = &failed
		c.Status.LastOrder.State = acme.StateErrored
	}
	return c
}

// SeedCertificates stores namespaces x perNamespace Certificates through
// store.Store.SaveCertificate, as kubectl-acme writes them.
func SeedCertificates(ctx context.Context, c kubernetes.Interface, namespaces, perNamespace int) error {
	for i := range namespaces {
		if err := createNamespace(ctx, c, statusNamespace(i)); err != nil {
			return err
		}
	}
	st := &store.Store{Client: c}
	now := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(32)
	for n := range namespaces {
		for i := range perNamespace {
			cert := syntheticCertificate(statusNamespace(n), i, now)
			g.Go(func() error { return st.SaveCertificate(gctx, cert) })
		}
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("seed certificates: %w", err)
	}
	return nil
}
