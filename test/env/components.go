package testenv

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// serviceAccountIssuer is what a real cluster's in-cluster name would be;
// nothing resolves or routes it here.
const serviceAccountIssuer = "https://kubernetes.default.svc.cluster.local"

// pkiFiles are the generated keys and certificates.
type pkiFiles struct {
	clusterCA      string // signs the kube-apiserver serving certificate
	apiserverCert  string
	apiserverKey   string
	serviceAccount string // signs service account tokens
	tokens         string // --token-auth-file
	adminToken     string
	acmeCA         string // signs Pebble's serving certificate
	pebbleCert     string
	pebbleKey      string
}

func writePKI(pki, pebble string) (*pkiFiles, error) {
	f := &pkiFiles{
		clusterCA:      filepath.Join(pki, "ca.crt"),
		apiserverCert:  filepath.Join(pki, "apiserver.crt"),
		apiserverKey:   filepath.Join(pki, "apiserver.key"),
		serviceAccount: filepath.Join(pki, "sa.key"),
		tokens:         filepath.Join(pki, "tokens.csv"),
		acmeCA:         filepath.Join(pebble, "ca.crt"),
		pebbleCert:     filepath.Join(pebble, "cert.pem"),
		pebbleKey:      filepath.Join(pebble, "key.pem"),
	}
	loopback := []net.IP{net.ParseIP("127.0.0.1")}

	cluster, err := newCA("testenv cluster CA")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(f.clusterCA, cluster.pem, 0o644); err != nil {
		return nil, fmt.Errorf("write cluster CA: %w", err)
	}
	apiserverNames := []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}
	// 10.0.0.1 is the kubernetes Service's IP in --service-cluster-ip-range.
	if err := cluster.issueServing(f.apiserverCert, f.apiserverKey, "kube-apiserver", apiserverNames, append(loopback, net.ParseIP("10.0.0.1"))); err != nil {
		return nil, err
	}
	if err := writeSigningKey(f.serviceAccount); err != nil {
		return nil, err
	}

	token := make([]byte, 16)
	if _, err := rand.Read(token); err != nil {
		return nil, fmt.Errorf("generate admin token: %w", err)
	}
	f.adminToken = hex.EncodeToString(token)
	if err := os.WriteFile(f.tokens, []byte(f.adminToken+`,admin,admin,"system:masters"`+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write token file: %w", err)
	}

	acme, err := newCA("testenv ACME API CA")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(f.acmeCA, acme.pem, 0o644); err != nil {
		return nil, fmt.Errorf("write ACME CA: %w", err)
	}
	if err := acme.issueServing(f.pebbleCert, f.pebbleKey, "pebble", []string{"localhost"}, loopback); err != nil {
		return nil, err
	}
	return f, nil
}

func (e *Env) startEtcd(ctx context.Context, o Options) error {
	client, err := e.freePort()
	if err != nil {
		return err
	}
	peer, err := e.freePort()
	if err != nil {
		return err
	}
	clientURL := fmt.Sprintf("http://127.0.0.1:%d", client)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peer)
	args := []string{
		"--name=testenv",
		"--data-dir=" + filepath.Join(e.Dir, etcdDir),
		"--listen-client-urls=" + clientURL,
		"--advertise-client-urls=" + clientURL,
		"--listen-peer-urls=" + peerURL,
		"--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=testenv=" + peerURL,
		// The data is thrown away anyway; fsync only slows tests down.
		"--unsafe-no-fsync",
		"--log-level=warn",
	}
	httpc := &http.Client{}
	err = e.launch(ctx, o, "etcd", args, nil, 30*time.Second, func(ctx context.Context) error {
		body, err := get(ctx, httpc, clientURL+"/health", "")
		if err != nil {
			return err
		}
		if !strings.Contains(body, `"health":"true"`) {
			return fmt.Errorf("etcd health: %s", body)
		}
		return nil
	})
	if err != nil {
		return err
	}
	e.etcdURL = clientURL
	return nil
}

func (e *Env) startAPIServer(ctx context.Context, o Options) error {
	port, err := e.freePort()
	if err != nil {
		return err
	}
	url := fmt.Sprintf("https://127.0.0.1:%d", port)
	args := []string{
		"--bind-address=127.0.0.1",
		// Without it, the apiserver picks a non-loopback interface address.
		"--advertise-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", port),
		"--etcd-servers=" + e.etcdURL,
		"--cert-dir=" + filepath.Join(e.Dir, pkiDir),
		"--tls-cert-file=" + e.pki.apiserverCert,
		"--tls-private-key-file=" + e.pki.apiserverKey,
		"--token-auth-file=" + e.pki.tokens,
		"--authorization-mode=RBAC",
		"--service-account-issuer=" + serviceAccountIssuer,
		"--service-account-key-file=" + e.pki.serviceAccount,
		"--service-account-signing-key-file=" + e.pki.serviceAccount,
		"--api-audiences=" + serviceAccountIssuer,
		// No proxy routes service IPs on this machine; on the real node,
		// test/cni's Proxy serves the kubernetes Service's ClusterIP
		// inside each pod (realnode.go startPodProxy).
		"--service-cluster-ip-range=10.0.0.0/24",
		// The endpoints of the kubernetes Service would be 127.0.0.1, which
		// Endpoints validation rejects; nothing needs them.
		"--endpoint-reconciler-type=none",
		"--enable-priority-and-fairness=false",
		// As kubeadm and managed clusters do: privileged pods are then
		// refused by Pod Security admission, not by the apiserver itself.
		"--allow-privileged=true",
		"--profiling=false",
		// Pod Security admission stays on, as it is by default: tests must
		// see the restricted-namespace rejections a real cluster gives.
	}
	args = append(args, o.APIServerArgs...)
	httpc, err := tlsClient(e.pki.clusterCA)
	if err != nil {
		return err
	}
	err = e.launch(ctx, o, "kube-apiserver", args, nil, 90*time.Second, func(ctx context.Context) error {
		_, err := get(ctx, httpc, url+"/readyz", e.adminToken)
		return err
	})
	if err != nil {
		return err
	}
	e.APIServer = url
	return e.writeKubeconfig()
}

func (e *Env) writeKubeconfig() error {
	ca, err := os.ReadFile(e.pki.clusterCA)
	if err != nil {
		return fmt.Errorf("read cluster CA: %w", err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["testenv"] = &clientcmdapi.Cluster{Server: e.APIServer, CertificateAuthorityData: ca}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: e.adminToken}
	cfg.Contexts["testenv"] = &clientcmdapi.Context{Cluster: "testenv", AuthInfo: "admin", Namespace: "default"}
	cfg.CurrentContext = "testenv"
	if err := clientcmd.WriteToFile(*cfg, e.Kubeconfig); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return nil
}

func (e *Env) startControllerManager(ctx context.Context, o Options) error {
	args := []string{
		"--kubeconfig=" + e.Kubeconfig,
		"--service-account-private-key-file=" + e.pki.serviceAccount,
		"--root-ca-file=" + e.pki.clusterCA,
		"--leader-elect=false",
		"--secure-port=0",
		"--use-service-account-credentials=false",
		// Its default is under /usr/libexec, which it would create.
		"--flex-volume-plugin-dir=" + filepath.Join(e.Dir, kcmDir, "flexvolume"),
	}
	if !o.realNode {
		// The simulated node sends no kubelet heartbeats the way these
		// controllers expect; they would taint it and evict solver pods.
		// A real kubelet needs them: the node lifecycle controller lifts
		// the not-ready taint the kubelet registers its node with.
		args = append(args, "--controllers=*,-node-lifecycle-controller,-taint-eviction-controller")
	}
	client, err := e.Client()
	if err != nil {
		return err
	}
	// The default ServiceAccount is the last thing pods need before the
	// ServiceAccount admission plugin lets them in.
	return e.launch(ctx, o, "kube-controller-manager", args, nil, 60*time.Second, func(ctx context.Context) error {
		_, err := client.CoreV1().ServiceAccounts(corev1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		return err
	})
}

// createIngressClass registers simnode's ingress controller the way an
// ingress-nginx install does (kind's manifest, for one): as the default
// class, so Ingresses without a class get it from admission.
func (e *Env) createIngressClass(ctx context.Context) error {
	client, err := e.Client()
	if err != nil {
		return err
	}
	class := &networkingv1.IngressClass{
		ObjectMeta: metav1.ObjectMeta{
			Name:        e.IngressClass,
			Annotations: map[string]string{networkingv1.AnnotationIsDefaultIngressClass: "true"},
		},
		Spec: networkingv1.IngressClassSpec{Controller: "k8s.io/ingress-nginx"},
	}
	_, err = client.NetworkingV1().IngressClasses().Create(ctx, class, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("testenv: create IngressClass %s: %w", e.IngressClass, err)
	}
	return nil
}

func (e *Env) startSimnode(ctx context.Context, o Options) error {
	e.mu.Lock()
	ln := e.ingressListener
	e.mu.Unlock()
	if ln == nil {
		return errors.New("testenv: the ingress's port is no longer held")
	}
	lf, err := ln.File()
	if err != nil {
		return fmt.Errorf("testenv: ingress listener: %w", err)
	}
	defer lf.Close() // the child has its own copy
	args := []string{
		"simnode",
		"--kubeconfig=" + e.Kubeconfig,
		"--node-name=" + e.NodeName,
		"--listen=" + e.IngressHTTP,
		"--listen-fd=3", // lf, the first of ExtraFiles
		"--class=" + e.IngressClass,
		"--workdir=" + filepath.Join(e.Dir, nodeDir),
		"--busybox=" + o.Busybox,
		"--gateway-class=" + e.GatewayClass,
		// GKE's classes (simnode.GKEClasses), on the same address.
		"--gke",
		"--pod-network-dir=" + e.PodNetworkDir(),
	}
	// The held socket accepts connections before simnode serves, so
	// ready is an HTTP answer (any: no route is 404), which simnode gives
	// only once its caches are synced.
	ready := func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+e.IngressHTTP+"/", nil)
		if err != nil {
			return err
		}
		req.Host = "testenv-ready.invalid"
		res, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			return err
		}
		return res.Body.Close()
	}
	if err := e.launchBinary(ctx, o, "simnode", o.TestenvBinary, args, nil, 30*time.Second, ready, lf); err != nil {
		return err
	}
	// simnode holds the port now: when it exits, the port refuses, as
	// a stopped ingress controller's does.
	e.mu.Lock()
	if e.ingressListener == ln {
		_ = ln.Close()
		e.ingressListener = nil
	}
	e.mu.Unlock()
	return nil
}

func (e *Env) startChallTestSrv(ctx context.Context, o Options) error {
	dns, err := e.freePort()
	if err != nil {
		return err
	}
	mgmt, err := e.freePort()
	if err != nil {
		return err
	}
	dnsAddr := fmt.Sprintf("127.0.0.1:%d", dns)
	mgmtURL := fmt.Sprintf("http://127.0.0.1:%d", mgmt)
	args := []string{
		"-dnsserver=" + dnsAddr,
		fmt.Sprintf("-management=127.0.0.1:%d", mgmt),
		"-defaultIPv4=127.0.0.1",
		// No AAAA answers: nothing listens on ::1.
		"-defaultIPv6=",
		// Only DNS: http-01 must be answered by the cluster's ingress.
		"-http01=", "-https01=", "-tlsalpn01=", "-doh=",
	}
	httpc := &http.Client{}
	err = e.launch(ctx, o, "pebble-challtestsrv", args, nil, 15*time.Second, func(ctx context.Context) error {
		// Pebble's resolver uses TCP.
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", dnsAddr)
		if err != nil {
			return err
		}
		conn.Close()
		// Any answer will do: every management endpoint wants a POST.
		_, err = get(ctx, httpc, mgmtURL+"/", "")
		var status *httpStatusError
		if errors.As(err, &status) {
			return nil
		}
		return err
	})
	if err != nil {
		return err
	}
	e.ChallTestSrvDNS = dnsAddr
	e.ChallTestSrvManagement = mgmtURL
	return nil
}

// pebbleConfig mirrors the config struct of pebble v2.10.3's cmd/pebble.
type pebbleConfig struct {
	Pebble struct {
		ListenAddress                  string                   `json:"listenAddress"`
		ManagementListenAddress        string                   `json:"managementListenAddress"`
		HTTPPort                       int                      `json:"httpPort"`
		TLSPort                        int                      `json:"tlsPort"`
		Certificate                    string                   `json:"certificate"`
		PrivateKey                     string                   `json:"privateKey"`
		ExternalAccountBindingRequired bool                     `json:"externalAccountBindingRequired"`
		ExternalAccountMACKeys         map[string]string        `json:"externalAccountMACKeys,omitempty"`
		KeyAlgorithm                   string                   `json:"keyAlgorithm"`
		Profiles                       map[string]pebbleProfile `json:"profiles"`
		RetryAfter                     struct {
			Authz int `json:"authz"`
			Order int `json:"order"`
		} `json:"retryAfter"`
	} `json:"pebble"`
}

type pebbleProfile struct {
	Description    string `json:"description"`
	ValidityPeriod uint64 `json:"validityPeriod"` // seconds
}

func (e *Env) startPebble(ctx context.Context, o Options, ingressPort int) error {
	port, err := e.freePort()
	if err != nil {
		return err
	}
	mgmt, err := e.freePort()
	if err != nil {
		return err
	}
	// Pebble needs a TLS-ALPN-01 port; nothing listens there.
	tlsPort, err := e.freePort()
	if err != nil {
		return err
	}
	var cfg pebbleConfig
	c := &cfg.Pebble
	c.ListenAddress = fmt.Sprintf("127.0.0.1:%d", port)
	c.ManagementListenAddress = fmt.Sprintf("127.0.0.1:%d", mgmt)
	// Pebble validates http-01 on this port, where the ingress listens.
	c.HTTPPort = ingressPort
	if o.PebbleHTTPPort != 0 {
		c.HTTPPort = o.PebbleHTTPPort
	}
	c.TLSPort = tlsPort
	c.Certificate = e.pki.pebbleCert
	c.PrivateKey = e.pki.pebbleKey
	c.KeyAlgorithm = "ecdsa"
	c.ExternalAccountBindingRequired = len(o.EABKeys) > 0
	c.ExternalAccountMACKeys = o.EABKeys
	c.Profiles = map[string]pebbleProfile{
		"default":    {Description: "90-day certificates", ValidityPeriod: 90 * 24 * 3600},
		"shortlived": {Description: "160-hour certificates", ValidityPeriod: 160 * 3600},
	}
	// Non-zero, so clients meet Retry-After (Pebble alternates seconds and
	// HTTP dates) without slowing tests down.
	c.RetryAfter.Authz = 1
	c.RetryAfter.Order = 1
	data, err := json.MarshalIndent(&cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("encode pebble config: %w", err)
	}
	cfgFile := filepath.Join(e.Dir, pebbleDir, "config.json")
	if err := os.WriteFile(cfgFile, data, 0o644); err != nil {
		return fmt.Errorf("write pebble config: %w", err)
	}

	env := []string{
		"PEBBLE_VA_NOSLEEP=1",
		"PEBBLE_WFE_NONCEREJECT=0",
		// A reused authorization would let a test pass without its solver.
		"PEBBLE_AUTHZREUSE=0",
	}
	for k, v := range o.ExtraPebbleEnv {
		env = append(env, k+"="+v)
	}
	args := []string{"-config=" + cfgFile, "-dnsserver=" + e.ChallTestSrvDNS}
	dir := fmt.Sprintf("https://127.0.0.1:%d/dir", port)
	httpc, err := tlsClient(e.pki.acmeCA)
	if err != nil {
		return err
	}
	err = e.launch(ctx, o, "pebble", args, env, 30*time.Second, func(ctx context.Context) error {
		if _, err := get(ctx, httpc, dir, ""); err != nil {
			return err
		}
		_, err := get(ctx, httpc, fmt.Sprintf("https://127.0.0.1:%d/roots/0", mgmt), "")
		return err
	})
	if err != nil {
		return err
	}
	e.ACMEServer = dir
	e.PebbleManagement = fmt.Sprintf("https://127.0.0.1:%d", mgmt)
	return nil
}

// fetchRoots saves every root Pebble issues under: /roots/0 and the
// alternates after it, until Pebble answers 404.
func (e *Env) fetchRoots(ctx context.Context) error {
	httpc, err := tlsClient(e.pki.acmeCA)
	if err != nil {
		return err
	}
	var roots strings.Builder
	for i := 0; ; i++ {
		body, err := get(ctx, httpc, fmt.Sprintf("%s/roots/%d", e.PebbleManagement, i), "")
		var status *httpStatusError
		if i > 0 && errors.As(err, &status) && status.code == http.StatusNotFound {
			break
		}
		if err != nil {
			return fmt.Errorf("fetch pebble root %d: %w", i, err)
		}
		roots.WriteString(body)
	}
	e.ACMERoots = filepath.Join(e.Dir, pebbleDir, "roots.pem")
	if err := os.WriteFile(e.ACMERoots, []byte(roots.String()), 0o644); err != nil {
		return fmt.Errorf("write pebble roots: %w", err)
	}
	return nil
}

// Client returns a clientset with the admin credentials.
func (e *Env) Client() (kubernetes.Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", e.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("testenv: load kubeconfig: %w", err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	return client, nil
}

// retryOnce retries a program's start once, for the race between picking a
// free port and the program binding it.
func (e *Env) retryOnce(ctx context.Context, name string, start func() error) error {
	err := start()
	if err == nil || ctx.Err() != nil {
		return err
	}
	e.logf("%s failed to start, retrying once: %v", name, err)
	if err := start(); err != nil {
		// The first error is in the log above, and in the program's log.
		return fmt.Errorf("testenv: start %s (tried twice): %w", name, err)
	}
	return nil
}

func (e *Env) launch(ctx context.Context, o Options, name string, args, env []string, timeout time.Duration, ready func(context.Context) error) error {
	return e.launchBinary(ctx, o, name, filepath.Join(o.BinDir, name), args, env, timeout, ready)
}

// launchBinary starts a program and waits until ready succeeds. If the
// program exits or does not get ready in time, it is stopped.
func (e *Env) launchBinary(ctx context.Context, o Options, name, bin string, args, env []string, timeout time.Duration, ready func(context.Context) error, files ...*os.File) error {
	begin := time.Now()
	p, err := startProc(procOptions{
		dir:        e.Dir,
		name:       name,
		bin:        bin,
		args:       args,
		env:        append(childEnviron(), env...),
		spawner:    e.spawner,
		extraFiles: files,
	})
	if err != nil {
		return err
	}
	if err := e.addProc(p); err != nil {
		return errors.Join(err, p.stop(time.Second))
	}
	if err := waitReady(ctx, p, timeout, ready); err != nil {
		return errors.Join(err, p.stop(5*time.Second), e.removeProc(p))
	}
	e.logf("%s ready in %s (pid %d, log %s)", name, time.Since(begin).Round(10*time.Millisecond), p.pid, p.logFile)
	return nil
}

func waitReady(parent context.Context, p *proc, timeout time.Duration, ready func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if p.exited() {
			return fmt.Errorf("%s exited while starting; end of %s:\n%s", p.name, p.logFile, p.logTail(15))
		}
		attempt, cancelAttempt := context.WithTimeout(ctx, 2*time.Second)
		err := ready(attempt)
		cancelAttempt()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			if parent.Err() != nil {
				return fmt.Errorf("waiting for %s: %w", p.name, parent.Err())
			}
			return fmt.Errorf("%s not ready after %s: %w; end of %s:\n%s", p.name, timeout, err, p.logFile, p.logTail(15))
		case <-tick.C:
		}
	}
}

func (e *Env) addProc(p *proc) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.procs = append(e.procs, p)
	return writePids(filepath.Join(e.Dir, pidsFile), e.procs)
}

func (e *Env) removeProc(p *proc) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.procs = slices.DeleteFunc(e.procs, func(q *proc) bool { return q == p })
	return writePids(filepath.Join(e.Dir, pidsFile), e.procs)
}

// freePort returns a loopback port that was free a moment ago. Ports are
// never handed out twice within one environment.
func (e *Env) freePort() (int, error) {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("find free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		e.mu.Lock()
		taken := e.ports[port]
		e.ports[port] = true
		e.mu.Unlock()
		if !taken {
			return port, nil
		}
	}
	return 0, errors.New("find free port: no new port after 20 tries")
}

// childEnviron is our environment minus what would change the programs'
// behaviour behind our back: etcd reads ETCD_* as flags, Pebble reads
// PEBBLE_* (PEBBLE_VA_ALWAYS_VALID would make every test pass).
func childEnviron() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "ETCD_") || strings.HasPrefix(kv, "PEBBLE_") || strings.HasPrefix(kv, "KUBECONFIG=")
	})
}

func tlsClient(caFile string) (*http.Client, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no certificate in %s", caFile)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}, nil
}

type httpStatusError struct {
	url  string
	code int
	body string
}

func (e *httpStatusError) Error() string {
	body := strings.TrimSpace(e.body)
	if len(body) > 300 {
		body = body[:300] + "..."
	}
	return "GET " + e.url + ": " + strconv.Itoa(e.code) + " " + body
}

func get(ctx context.Context, c *http.Client, url, token string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", &httpStatusError{url: url, code: resp.StatusCode, body: string(body)}
	}
	return string(body), nil
}
