// Package issuance ties the pieces together: it reads Issuers and
// Certificates from the store, talks to the CA with package acme, solves
// challenges with package solver and writes the results back.
package issuance

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	xacme "golang.org/x/crypto/acme"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"

	"github.com/kubectl-acme/kubectl-acme/acme"
	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/store"
	"github.com/kubectl-acme/kubectl-acme/solver"
)

// Options configures issuance.
type Options struct {
	Store *store.Store
	// SolverImage overrides the solver pod's image.
	SolverImage string
	// ConnectTo sends self-check requests to this host:port.
	ConnectTo string
	// SelfCheckTimeout bounds the self-check; zero means a minute.
	SelfCheckTimeout time.Duration
	// WaitInsteadOfSelfCheck, when set, replaces every solver's self-check
	// with a wait this long (a solver's own waitInsteadOfSelfCheck applies
	// when this is nil).
	WaitInsteadOfSelfCheck *time.Duration
	// Force allows overwriting a Secret kubectl-acme does not own.
	Force bool
	// Replaces is the ARI CertID of the certificate a renewal replaces.
	Replaces string
	// WaitForLease waits while another process issues the certificate,
	// instead of failing with a *LeaseHeldError.
	WaitForLease bool
	// LeaseHolder names this process in the certificate's Lease;
	// DefaultHolder() when empty.
	LeaseHolder string
	// EAB binds a new account to one at the CA, for CAs that require it.
	EAB *xacme.ExternalAccountBinding
	// IngressPathType, when set, is the pathType of the challenge paths
	// (Exact, Prefix, ImplementationSpecific), over the issuer's
	// annotation and the choice by ingress class.
	IngressPathType string
	// IngressClasses, when set, shares IngressClass reads between the
	// issues of one command.
	IngressClasses *solver.IngressClasses
	// NetworkPolicies, when set, shares each namespace's NetworkPolicies
	// list between the issues of one run (the Runner makes one).
	NetworkPolicies *solver.NetworkPolicies
	// AllowSolverTraffic adds a temporary NetworkPolicy admitting the
	// solver's traffic when the namespace's policies would drop it, as
	// the issuer's solver.AnnotationAllowSolverTraffic does;
	// IngressControllerNamespace says where the ingress controller runs
	// (solver.AnnotationIngressControllerNamespace).
	AllowSolverTraffic         bool
	IngressControllerNamespace string
	// Accounts, when set, shares account clients between the issues of
	// one command (apply issues many certificates from one issuer).
	Accounts  *Accounts
	UserAgent string
	Observe   acme.Observer

	// group, set by a Runner of several jobs, shares solver workloads
	// between the run's orders (see shared.go).
	group *jobGroup
}

func clientFor(iss *certmanager.Issuer, o *Options) acme.ClientConfig {
	return acme.ClientConfig{
		DirectoryURL:  iss.Spec.ACME.Server,
		CABundle:      iss.Spec.ACME.CABundle,
		SkipTLSVerify: iss.Spec.ACME.SkipTLSVerify,
		UserAgent:     o.UserAgent,
		Log:           caRequestLog(),
	}
}

// caRequestLog logs every request to the CA at -v=6, in the form client-go
// logs the API server's (verb, URL, status, milliseconds), so one -v=6
// run shows both.
func caRequestLog() acme.RequestLogger {
	if !klog.V(6).Enabled() {
		return nil
	}
	return func(method, url, status string, elapsed time.Duration) {
		klog.V(6).InfoS("ACME response", "verb", method, "url", url, "status", status, "milliseconds", elapsed.Milliseconds())
	}
}

// Profiles lists the profiles iss's CA offers. The directory needs no
// account, so no key is read.
func Profiles(ctx context.Context, o Options, iss *certmanager.Issuer) ([]acme.Profile, error) {
	c, err := acme.NewClient(clientFor(iss, &o), nil)
	if err != nil {
		return nil, err
	}
	return acme.Profiles(ctx, c)
}

// RegisterIssuer makes sure iss has an account key and a registered ACME
// account, then stores it. agree is asked before accepting the CA's terms.
func RegisterIssuer(ctx context.Context, o Options, iss *certmanager.Issuer, agree func(tosURL string) bool) error {
	if iss.Spec.ACME.DisableAccountKeyGeneration {
		if _, err := o.Store.ExistingAccountKey(ctx, iss); err != nil {
			return fmt.Errorf("disableAccountKeyGeneration is set, so the account key must exist: %w", err)
		}
	}
	// Everything that can be wrong with the Issuer fails before its account
	// key Secret is created.
	eab := o.EAB
	if eab == nil && iss.Spec.ACME.ExternalAccountBinding != nil {
		var err error
		if eab, err = o.Store.ExternalAccountBinding(ctx, iss); err != nil {
			return err
		}
	}
	c, err := acme.NewClient(clientFor(iss, &o), nil)
	if err != nil {
		return err
	}
	// A CA without the profile would ignore it and issue something else.
	if err := acme.CheckProfile(ctx, c, iss.Spec.ACME.Profile); err != nil {
		return err
	}
	key, created, err := o.Store.AccountKey(ctx, iss)
	if err != nil {
		return err
	}
	c.Key = key
	acct, err := acme.Register(ctx, c, iss.Spec.ACME.Email, eab, agree)
	if err != nil {
		if created {
			err = fmt.Errorf("%w (the new account key Secret %s is kept, so a retry registers the same key)", err, iss.Spec.ACME.PrivateKeySecretRef.Name)
		}
		return err
	}
	if iss.Spec.ACME.Email != "" && !hasContact(acct.Contact, "mailto:"+iss.Spec.ACME.Email) {
		acct.Contact = []string{"mailto:" + iss.Spec.ACME.Email}
		if acct, err = c.UpdateReg(ctx, acct); err != nil {
			return fmt.Errorf("update account contact: %w", acme.Explain(err))
		}
	}
	iss.Status.ACME = &certmanager.ACMEIssuerStatus{
		URI:                 acct.URI,
		LastRegisteredEmail: iss.Spec.ACME.Email,
		AccountStatus:       acct.Status,
	}
	if err := o.Store.SaveIssuer(ctx, iss); err != nil {
		return err
	}
	// The run's orders go through the client that registered.
	o.Accounts.put(iss, c)
	return nil
}

func hasContact(list []string, c string) bool {
	for _, v := range list {
		if strings.EqualFold(v, c) {
			return true
		}
	}
	return false
}

// IssuerOf reads the Issuer or ClusterIssuer cert refers to.
func IssuerOf(ctx context.Context, s *store.Store, cert *certmanager.Certificate) (*certmanager.Issuer, error) {
	ref := cert.Spec.IssuerRef
	return s.GetIssuer(ctx, cert.Namespace, ref.Name, ref.Kind == certmanager.KindClusterIssuer)
}

// Issue orders the Certificate's certificate from iss now, stores the
// result in its Secret and records the outcome in the Certificate's status.
// The returned Certificate carries the updated status, also on failure.
//
// Every Kubernetes request counts (there are about 15 per certificate):
// the Certificate is written once, at the end, and the target Secret is
// read once, before the order.
func Issue(ctx context.Context, o Options, iss *certmanager.Issuer, cert *certmanager.Certificate) (*certmanager.Certificate, error) {
	if err := certmanager.ValidateCertificateSpec(&cert.Spec); err != nil {
		return cert, err
	}
	if iss.Spec.ACME == nil {
		return cert, fmt.Errorf("issuer %q has no acme section", iss.Name)
	}
	unlock, ctx, err := lockCertificate(ctx, &o, cert)
	if err != nil {
		return cert, err
	}
	defer unlock()
	target, err := o.Store.ReadTargetSecret(ctx, cert, o.Force)
	if err != nil {
		return cert, err
	}
	sv, err := newSolver(&o, iss, cert)
	if err != nil {
		return cert, err
	}
	c, err := o.Accounts.client(ctx, &o, iss)
	if err != nil {
		return cert, err
	}
	// A run killed after finalize left the key: collect its certificate.
	if done, err := recoverIssued(ctx, &o, c, cert, target); done || err != nil {
		return cert, err
	}

	ku, eku, err := certmanager.X509Usages(cert.Spec.Usages)
	if err != nil {
		return cert, fmt.Errorf("certificate %q: usages: %w", cert.Name, err)
	}

	// The cluster judges the solver objects before the CA is asked for
	// anything it would have to undo.
	if err := admit(ctx, sv, cert); err != nil {
		return cert, &PreflightError{Err: err}
	}

	// A new RSA key is made while the order goes out (certKey).
	certKey, err := newCertKey(target, cert)
	if err != nil {
		return cert, err
	}
	rec := newRecovery(&o, iss, cert, nil)

	cert.Status.LastOrder = &certmanager.OrderStatus{State: acme.StatePending, Started: metav1.Now()}

	dns, ips := cert.Spec.Identifiers()
	res, obtainErr := acme.Obtain(ctx, c, acme.Request{
		DNSNames:       dns,
		IPAddresses:    ips,
		CommonName:     cert.Spec.CommonName,
		Key:            certKey,
		Profile:        profileFor(cert, iss),
		NotAfter:       notAfterFor(cert),
		PreferredChain: iss.Spec.ACME.PreferredChain,
		Replaces:       o.Replaces,
		BeforeFinalize: func(orderURL string) error {
			pemKey, err := certKey.PEM()
			if err != nil {
				return err
			}
			rec.keyPEM = pemKey
			return rec.beforeFinalize(orderURL)
		},
		KeyUsage:    ku,
		ExtKeyUsage: eku,
	}, sv, o.Observe)

	// Record the outcome even when the command's context has ended.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	finished := metav1.Now()
	cert.Status.LastOrder.Finished = &finished
	if res != nil {
		cert.Status.LastOrder.URL = res.OrderURL
		cert.Status.LastOrder.Challenges = challengeStatuses(res.Challenges)
	}
	if errors.Is(obtainErr, acme.ErrNoProfiles) || errors.Is(obtainErr, acme.ErrUnknownProfile) {
		from := "the issuer's spec.acme.profile"
		if cert.Annotations[certmanager.AnnotationProfile] != "" {
			from = "the certificate's " + certmanager.AnnotationProfile + " annotation (--profile)"
		}
		obtainErr = fmt.Errorf("%w: nothing was ordered; the profile comes from %s", obtainErr, from)
	}
	var notIssued *acme.NotIssuedError
	if errors.As(obtainErr, &notIssued) && notIssued.NotAfterAsked {
		obtainErr = fmt.Errorf("%w: this certificate asks for a %s lifetime (spec.duration, --duration): ask for a shorter one, or none for the CA's default", obtainErr, cert.Spec.Duration.Duration)
	}
	if kerr := certKey.failed(); obtainErr != nil && kerr != nil {
		obtainErr = kerr // the CSR could not be signed
	}
	if obtainErr != nil {
		cert.Status.LastOrder.State = acme.StateErrored
		cert.Status.LastFailure = failureReason(obtainErr)
		cert.Status.LastFailureTime = &finished
		if err := saveCertificate(wctx, o.Store, cert); err != nil {
			obtainErr = errors.Join(obtainErr, err)
		}
		return cert, rec.explain(obtainErr)
	}

	chainPEM := res.ChainPEM()
	leaf, err := x509.ParseCertificate(res.Chain[0])
	if err != nil {
		return cert, rec.explain(fmt.Errorf("parse issued certificate: %w", err))
	}
	// The CA has issued: never lose the certificate and its key.
	_ = rec.issued(chainPEM) // the record already has the key and the order
	if writeErr := writeIssued(wctx, &o, cert, target, rec, chainPEM); writeErr != nil {
		cert.Status.LastFailure = "write secret: " + writeErr.Error()
		cert.Status.LastFailureTime = &finished
		_ = saveCertificate(wctx, o.Store, cert)
		return cert, writeErr
	}
	setIssued(wctx, c, cert, leaf)
	cert.Status.LastOrder.State = acme.StateIssued
	if err := saveCertificate(wctx, o.Store, cert); err != nil {
		return cert, fmt.Errorf("certificate stored in secret %s, but recording its status failed: %w", cert.Spec.SecretName, err)
	}
	return cert, nil
}

// PreflightError is a check before the order that failed: the cluster
// refuses a solver object, or nothing could route the CA to the solver.
// No order was placed and nothing was created.
type PreflightError struct{ Err error }

func (e *PreflightError) Error() string {
	return e.Err.Error() + "\n(checked before ordering: no order was placed, nothing was created)"
}

func (e *PreflightError) Unwrap() error { return e.Err }

// saveCertificate retries on conflict: status is ours to write.
func saveCertificate(ctx context.Context, s *store.Store, cert *certmanager.Certificate) error {
	return retry.OnError(retry.DefaultBackoff, isTransient, func() error { return s.SaveCertificate(ctx, cert) })
}

func isTransient(err error) bool {
	var notOwned *store.ErrSecretNotOwned
	if errors.As(err, &notOwned) {
		return false
	}
	return apierrors.IsConflict(err) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) ||
		apierrors.IsTooManyRequests(err) || apierrors.IsInternalError(err) || apierrors.IsServiceUnavailable(err) ||
		utilnet.IsConnectionReset(err) || utilnet.IsConnectionRefused(err)
}

func privateKey(target *store.TargetSecret, cert *certmanager.Certificate, spec acme.KeySpec, rotation string) (crypto.Signer, error) {
	if rotation == "Never" && target.Existing != nil {
		if pemKey := target.Existing.Data[corev1.TLSPrivateKeyKey]; pemKey != nil {
			k, err := acme.ParseKey(pemKey)
			if err != nil {
				return nil, fmt.Errorf("rotationPolicy Never: existing key in secret %s cannot be read: %v", cert.Spec.SecretName, err)
			}
			return k, nil
		}
	}
	return acme.GenerateKey(spec)
}

// solverName is unique per order, so leftovers of a killed run never
// collide with a new run, and short enough for every object kind.
func solverName(cert string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	base := "acme-solver-" + cert
	if len(base) > 50 {
		base = strings.TrimRight(base[:50], "-.")
	}
	return base + "-" + hex.EncodeToString(b)
}

// failureReason is the one-line reason shown by `status`.
func failureReason(err error) string {
	var ce *acme.ChallengeError
	if errors.As(err, &ce) {
		return ce.Error()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timed out: " + err.Error()
	}
	if errors.Is(err, context.Canceled) {
		return "interrupted: " + err.Error()
	}
	return err.Error()
}

// challengeStatuses converts the protocol layer's outcomes to the stored
// status shape.
func challengeStatuses(in []acme.ChallengeOutcome) []certmanager.ChallengeStatus {
	out := make([]certmanager.ChallengeStatus, 0, len(in))
	for _, c := range in {
		out = append(out, certmanager.ChallengeStatus{Identifier: c.Identifier, Type: c.Type, State: c.State, Detail: c.Detail})
	}
	return out
}
