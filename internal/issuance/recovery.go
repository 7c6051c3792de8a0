package issuance

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	xacme "golang.org/x/crypto/acme"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/kubectl-acme/kubectl-acme/acme"
	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/store"
)

// A recovery record keeps an order's certificate key on the user's disk
// from just before finalize until the TLS Secret is written, so a run
// killed in between (or one whose Secret write fails for good) loses
// nothing: the next issue of the certificate collects the certificate the
// CA issued for that key and writes the Secret, without a new order.
//
// The record is one PEM file, mode 0600, in StateDir()/pending: a
// KUBECTL-ACME RECOVERY block whose headers name the cluster, namespace,
// certificate, Secret and order, then the chain once issued, then the key.
// `kubectl create secret tls NAME --cert FILE --key FILE` reads it too.

// StateDirEnv overrides where kubectl-acme keeps local state.
const StateDirEnv = "KUBECTL_ACME_STATE_DIR"

// StateDir is $KUBECTL_ACME_STATE_DIR, else $XDG_STATE_HOME/kubectl-acme,
// else ~/.local/state/kubectl-acme (%LocalAppData%\kubectl-acme on Windows):
// state, not cache, as a record may hold the only copy of a key.
func StateDir() (string, error) {
	if d := os.Getenv(StateDirEnv); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "kubectl-acme"), nil
	}
	if runtime.GOOS == "windows" {
		d, err := os.UserCacheDir() // %LocalAppData%
		if err != nil {
			return "", err
		}
		return filepath.Join(d, "kubectl-acme"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no directory for local state (set %s): %w", StateDirEnv, err)
	}
	return filepath.Join(home, ".local", "state", "kubectl-acme"), nil
}

const recoveryBlock = "KUBECTL-ACME RECOVERY"

// recovery is the record of one certificate's order.
type recovery struct {
	path                            string
	cluster, namespace, certificate string
	secret, issuer, order           string
	created                         time.Time
	keyPEM, chainPEM                []byte
	written                         bool // the file exists
	observe                         acme.Observer
}

// recoveryPath is the record's file: one per cluster, namespace and
// certificate, so the next run of the same certificate finds it.
func recoveryPath(cluster, ns, cert string) (string, error) {
	dir, err := StateDir()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(cluster))
	return filepath.Join(dir, "pending", fmt.Sprintf("%s_%s_%s.pem", ns, cert, hex.EncodeToString(sum[:4]))), nil
}

func newRecovery(o *Options, iss *certmanager.Issuer, cert *certmanager.Certificate, keyPEM []byte) *recovery {
	return &recovery{
		cluster: o.Store.Cluster, namespace: cert.Namespace, certificate: cert.Name,
		secret: cert.Spec.SecretName, issuer: iss.Kind + "/" + iss.Name, keyPEM: keyPEM,
		observe: o.Observe,
	}
}

// beforeFinalize writes the record with the order's URL; without it the
// order goes no further, since the key would exist nowhere else.
func (r *recovery) beforeFinalize(orderURL string) error {
	r.order, r.created = orderURL, time.Now()
	if err := r.save(); err != nil {
		return fmt.Errorf("keep the certificate key recoverable before finalizing (set %s to a writable directory): %w", StateDirEnv, err)
	}
	return nil
}

// issued adds the chain to the record, so a failed Secret write leaves a
// complete certificate and key in it.
func (r *recovery) issued(chainPEM []byte) error {
	r.chainPEM = chainPEM
	return r.save()
}

func (r *recovery) save() error {
	path, err := recoveryPath(r.cluster, r.namespace, r.certificate)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "kubectl-acme: the certificate key of an order, kept until the certificate is in its Secret.\n"+
		"`kubectl acme issue %s -n %s` collects the certificate and writes the Secret.\n", r.certificate, r.namespace)
	err = pem.Encode(&b, &pem.Block{Type: recoveryBlock, Headers: map[string]string{
		"Cluster": r.cluster, "Namespace": r.namespace, "Certificate": r.certificate,
		"Secret": r.secret, "Issuer": r.issuer, "Order": r.order, "Created": r.created.UTC().Format(time.RFC3339),
	}})
	if err != nil {
		return err
	}
	b.Write(r.chainPEM)
	b.Write(r.keyPEM)
	// Written whole or not at all: a kill mid-write keeps the old record.
	f, err := os.CreateTemp(filepath.Dir(path), ".record-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(b.Bytes()); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	r.path, r.written = path, true
	return nil
}

// done removes the record once the Secret holds the certificate.
func (r *recovery) done() {
	if r.written {
		_ = os.Remove(r.path)
		r.written = false
	}
}

// explain adds to the error of a failed order whether the key was kept.
func (r *recovery) explain(err error) error {
	if !r.written {
		return err
	}
	var notIssued *acme.NotIssuedError
	if errors.As(err, &notIssued) {
		// Nothing exists to collect: keeping the key would only make the
		// next run look for a certificate the CA never issued.
		r.discard(fmt.Sprintf("the order is %s: the CA issued no certificate for the kept key", notIssued.Status))
		return err
	}
	return fmt.Errorf("%w; the CA may have issued the certificate: its key is kept in %s (mode 0600), and `kubectl acme issue %s -n %s` collects it without a new order",
		err, r.path, r.certificate, r.namespace)
}

// loadRecovery reads cert's record; nil when there is none.
func loadRecovery(o *Options, cert *certmanager.Certificate) (*recovery, error) {
	path, err := recoveryPath(o.Store.Cluster, cert.Namespace, cert.Name)
	if err != nil {
		return nil, nil // no state directory: nothing was kept
	}
	r, err := readRecovery(path)
	if r == nil || err != nil {
		return nil, err
	}
	r.observe = o.Observe
	return r, nil
}

// readRecovery parses a record; nil when the file does not exist.
func readRecovery(path string) (*recovery, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read recovery record: %w", err)
	}
	r := &recovery{path: path, written: true}
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch {
		case b.Type == recoveryBlock:
			h := b.Headers
			r.cluster, r.namespace, r.certificate = h["Cluster"], h["Namespace"], h["Certificate"]
			r.secret, r.issuer, r.order = h["Secret"], h["Issuer"], h["Order"]
			r.created, _ = time.Parse(time.RFC3339, h["Created"])
		case b.Type == "CERTIFICATE":
			r.chainPEM = append(r.chainPEM, pem.EncodeToMemory(b)...)
		case strings.HasSuffix(b.Type, "PRIVATE KEY"):
			r.keyPEM = pem.EncodeToMemory(b)
		}
	}
	if r.order == "" || r.keyPEM == nil {
		return nil, fmt.Errorf("recovery record %s is incomplete; move it away to issue anew", path)
	}
	return r, nil
}

// PendingRecovery is a record waiting for its certificate's next issue.
type PendingRecovery struct {
	Namespace, Certificate, Order, Path string
	Created                             time.Time
}

// PendingRecoveries lists the records of cluster's certificates in ns (""
// for all namespaces).
func PendingRecoveries(cluster, ns string) ([]PendingRecovery, error) {
	probe, err := recoveryPath(cluster, "x", "x")
	if err != nil {
		return nil, nil // no state directory: nothing was kept
	}
	suffix := strings.TrimPrefix(filepath.Base(probe), "x_x")
	files, err := filepath.Glob(filepath.Join(filepath.Dir(probe), "*"+suffix))
	if err != nil {
		return nil, err
	}
	var out []PendingRecovery
	for _, f := range files {
		r, err := readRecovery(f)
		if err != nil || r == nil || r.cluster != cluster || (ns != "" && r.namespace != ns) {
			continue
		}
		out = append(out, PendingRecovery{Namespace: r.namespace, Certificate: r.certificate, Order: r.order, Path: f, Created: r.created})
	}
	return out, nil
}

// collectTimeout bounds each request to the CA while collecting a
// certificate: x/crypto/acme retries 429 and 5xx until its context ends.
const collectTimeout = 30 * time.Second

// recoverIssued looks for a record an earlier run of cert left. When the
// CA issued its order, it writes that certificate and key to the Secret,
// records the certificate as issued and returns done: no new order is
// needed. A record that cannot give a usable certificate (the order is
// invalid or expired, the certificate no longer matches the spec, the
// Secret already holds a newer one) is deleted, saying so, and Issue
// orders as usual. While the CA or the Secret cannot be reached, the record
// is kept and the error returned.
func recoverIssued(ctx context.Context, o *Options, c *xacme.Client, cert *certmanager.Certificate, target *store.TargetSecret) (done bool, _ error) {
	r, err := loadRecovery(o, cert)
	if r == nil || err != nil {
		return false, err
	}
	r.note(fmt.Sprintf("found the key of order %s, kept by an earlier run in %s", r.order, r.path))
	if len(r.chainPEM) == 0 {
		chain, why, err := r.fetch(ctx, c)
		if err != nil {
			return true, fmt.Errorf("collect the certificate of order %s: %w (its key stays in %s)", r.order, err, r.path)
		}
		if why != "" {
			r.discard(why)
			return false, nil
		}
		r.chainPEM = chain
	}
	leaf, why := r.check(cert)
	inSecret := false
	if why == "" && target != nil {
		inSecret, why = r.inSecret(target.Existing, cert, leaf)
	}
	if why != "" {
		r.discard(why)
		return false, nil
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if inSecret {
		// The killed run's write reached the API server after all.
		r.done()
	} else if err := writeIssued(wctx, o, cert, target, r, r.chainPEM); err != nil {
		return true, err
	}
	now := metav1.Now()
	started := metav1.NewTime(r.created)
	cert.Status.LastOrder = &certmanager.OrderStatus{State: acme.StateIssued, Started: started, Finished: &now, URL: r.order}
	setIssued(wctx, c, cert, leaf)
	if inSecret {
		r.note(fmt.Sprintf("certificate of order %s is in secret %s already (the earlier run's write went through): no new order needed", r.order, cert.Spec.SecretName))
	} else {
		r.note(fmt.Sprintf("certificate of order %s written to secret %s: no new order needed", r.order, cert.Spec.SecretName))
	}
	if err := saveCertificate(wctx, o.Store, cert); err != nil {
		return true, fmt.Errorf("certificate stored in secret %s, but recording its status failed: %w", cert.Spec.SecretName, err)
	}
	return true, nil
}

// fetch asks the CA for the order's certificate. why says why there is
// none to collect; err is a failure to ask.
func (r *recovery) fetch(ctx context.Context, c *xacme.Client) (chain []byte, why string, err error) {
	ctx, cancel := context.WithTimeout(ctx, collectTimeout)
	defer cancel()
	order, err := c.GetOrder(ctx, r.order)
	err = acme.Explain(err)
	var ae *xacme.Error
	if errors.As(err, &ae) && ae.StatusCode/100 == 4 {
		return nil, "the CA no longer knows the order: " + err.Error(), nil
	}
	if err != nil {
		return nil, "", err
	}
	if order.Status == xacme.StatusProcessing {
		order, err = c.WaitOrder(ctx, r.order)
		var oe *xacme.OrderError
		if errors.As(err, &oe) {
			return nil, fmt.Sprintf("the order is %s: the CA issued nothing for it", oe.Status), nil
		}
		if err != nil {
			return nil, "", acme.Explain(err)
		}
	}
	if order.Status != xacme.StatusValid || order.CertURL == "" {
		return nil, fmt.Sprintf("the order is %s: the CA issued nothing for it", order.Status), nil
	}
	der, err := c.FetchCert(ctx, order.CertURL, true)
	if err != nil {
		return nil, "", acme.Explain(err)
	}
	var b bytes.Buffer
	for _, d := range der {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: d})
	}
	return b.Bytes(), "", nil
}

// check returns the record's leaf, or why it cannot serve cert now.
func (r *recovery) check(cert *certmanager.Certificate) (*x509.Certificate, string) {
	b, _ := pem.Decode(r.chainPEM)
	if b == nil {
		return nil, "the record holds no certificate"
	}
	leaf, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, "its certificate cannot be read: " + err.Error()
	}
	key, err := acme.ParseKey(r.keyPEM)
	if err != nil {
		return nil, "its key cannot be read: " + err.Error()
	}
	if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(leaf.PublicKey) {
		return nil, "the certificate is not for the kept key"
	}
	if time.Now().After(leaf.NotAfter) {
		return nil, "the certificate has expired"
	}
	dns, ips := cert.Spec.Identifiers()
	var leafIPs []string
	for _, ip := range leaf.IPAddresses {
		leafIPs = append(leafIPs, ip.String())
	}
	if !sameSet(leaf.DNSNames, dns) || !sameSet(leafIPs, ips) {
		return nil, "the certificate's names are no longer the certificate's spec"
	}
	return leaf, ""
}

// inSecret compares leaf with the certificate in sec, the Secret as read
// before the order (nil when it does not exist): written says sec already
// holds leaf; why says not to write leaf, as sec holds a newer certificate
// (written by another run meanwhile).
func (r *recovery) inSecret(sec *corev1.Secret, cert *certmanager.Certificate, leaf *x509.Certificate) (written bool, why string) {
	if sec == nil {
		return false, ""
	}
	b, _ := pem.Decode(sec.Data[corev1.TLSCertKey])
	if b == nil {
		return false, ""
	}
	cur, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return false, ""
	}
	if cur.SerialNumber.Cmp(leaf.SerialNumber) == 0 && bytes.Equal(sec.Data[corev1.TLSPrivateKeyKey], r.keyPEM) {
		return true, ""
	}
	if cur.NotBefore.After(leaf.NotBefore) {
		return false, "secret " + cert.Spec.SecretName + " holds a newer certificate"
	}
	return false, ""
}

func (r *recovery) discard(why string) {
	_ = os.Remove(r.path)
	r.written = false
	r.note(fmt.Sprintf("deleted %s (order %s): %s", r.path, r.order, why))
}

func (r *recovery) note(detail string) {
	if r.observe != nil {
		r.observe(acme.Event{State: acme.StatePending, Detail: detail})
	}
}

// writeIssued writes the TLS Secret, retrying transient failures; target
// is the Secret as read before the order. On success the record is
// removed; on failure it is kept whole, and the error says where: the
// certificate and key are never lost.
func writeIssued(ctx context.Context, o *Options, cert *certmanager.Certificate, target *store.TargetSecret, r *recovery, chainPEM []byte) error {
	err := retry.OnError(retry.DefaultBackoff, isTransient, func() error {
		err := o.Store.WriteTLSSecret(ctx, cert, target, chainPEM, r.keyPEM, o.Force)
		target = nil // a retry reads the Secret afresh
		return err
	})
	if err == nil {
		r.done()
		return nil
	}
	if r.save() == nil || r.written {
		err = fmt.Errorf("%w; the issued certificate and key were saved to %s (mode 0600): `kubectl acme issue %s -n %s` writes them to the Secret without a new order once it can",
			err, r.path, cert.Name, cert.Namespace)
	}
	return err
}

// setIssued records leaf as cert's current certificate.
func setIssued(ctx context.Context, c *xacme.Client, cert *certmanager.Certificate, leaf *x509.Certificate) {
	cert.Status.NotBefore = &metav1.Time{Time: leaf.NotBefore}
	cert.Status.NotAfter = &metav1.Time{Time: leaf.NotAfter}
	cert.Status.RenewalTime = &metav1.Time{Time: renewalAfterIssue(ctx, c, cert, leaf, time.Now())}
	cert.Status.Serial = strings.ToUpper(leaf.SerialNumber.Text(16))
	cert.Status.Revision++
	cert.Status.LastFailure = ""
	cert.Status.LastFailureTime = nil
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
