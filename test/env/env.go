// Package testenv runs a throwaway Kubernetes control plane (etcd,
// kube-apiserver, kube-controller-manager), Pebble with its DNS server, a
// real node (kube-scheduler, kubelet, containerd, runc; or simnode's
// simulated one) and simnode's ingress controller, all on loopback
// addresses. The
// end-to-end tests use it, and `hack/testenv` starts it for trying kubectl-acme
// by hand.
package testenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// Options configures Start.
type Options struct {
	// Dir holds the environment's state, certificates and logs. It is
	// created if missing; a previous, stopped environment in it is replaced.
	Dir string
	// BinDir holds etcd, kube-apiserver, kube-controller-manager, kubectl,
	// pebble and pebble-challtestsrv (see hack/tools.sh).
	BinDir string
	// IngressClass is the class simnode's ingress controller serves; default "nginx".
	IngressClass string
	// TestenvBinary runs simnode as `testenv simnode`; default BinDir/testenv.
	TestenvBinary string
	// Busybox runs the solver pods' httpd; default /bin/busybox.
	Busybox string
	// NodeName is the node's name; default "realnode", or "simnode" for
	// the simulated node.
	NodeName string
	// Node is NodeReal, pods on a real node (realnode.go): kube-scheduler,
	// the kubelet, containerd and runc, with simnode as the ingress and
	// Gateway controller; or NodeSim, pods on simnode's kubelet imitation,
	// which starts faster. Empty means TESTENV_NODE's value, else NodeReal.
	Node string
	// realNode is Node == NodeReal, once complete has run.
	realNode bool
	// PauseBinary is the real node's pod sandbox program (test/cmd/pause,
	// static); default pause next to TestenvBinary.
	PauseBinary string
	// ExtraPebbleEnv is added to Pebble's environment, for example
	// PEBBLE_ALTERNATE_ROOTS or PEBBLE_CHAIN_LENGTH.
	ExtraPebbleEnv map[string]string
	// EABKeys maps external account key IDs to base64url HMAC keys. When
	// set, Pebble requires external account binding.
	EABKeys map[string]string
	// PebbleHTTPPort is the loopback port Pebble sends http-01 validation
	// requests to; zero means the ingress's port (IngressHTTP). The
	// benchmark sets it to serve challenges itself.
	PebbleHTTPPort int
	// APIServerArgs are added to kube-apiserver's flags, for example
	// --audit-policy-file and --audit-log-path.
	APIServerArgs []string
	// DieWithParent makes the programs get SIGTERM when the process that
	// started them dies, so a test binary killed by its timeout leaves
	// nothing behind. `testenv up` leaves it off: its programs outlive it.
	DieWithParent bool
	// GatewayAPI installs the Gateway API CRDs, a GatewayClass simnode's
	// controller owns and a Gateway of it (see Env.GatewayName). It costs
	// about 3 s of Start on two cores: the apiserver takes that long to
	// serve the new CRDs (the HTTPRoute CRD's validation rules).
	GatewayAPI bool
	// StepCA also starts smallstep's step-ca (BinDir/step-ca, built by
	// hack/stepca.sh) with an ACME provisioner: see Env.StepCAServer. It
	// starts beside Pebble, so it adds little to Start.
	StepCA bool
	// Log receives one line per started program; nil discards.
	Log io.Writer
}

// Env is a running environment. Its exported fields are saved in
// Dir/env.json, so Load in another process sees the same values.
type Env struct {
	Dir        string `json:"dir"`
	BinDir     string `json:"binDir"`
	Kubeconfig string `json:"kubeconfig"` // admin (system:masters) kubeconfig
	APIServer  string `json:"apiServer"`  // https://127.0.0.1:PORT
	// ACMEServer is Pebble's directory URL, https://127.0.0.1:PORT/dir.
	ACMEServer string `json:"acmeServer"`
	// ACMECABundle is a PEM file with the CA of Pebble's API (and
	// management) TLS certificate.
	ACMECABundle string `json:"acmeCABundle"`
	// ACMERoots is a PEM file with every root Pebble's certificates chain
	// to, alternates included. Pebble makes new roots each time it starts.
	ACMERoots string `json:"acmeRoots"`
	// IngressHTTP is host:port of simnode's ingress controller, which is
	// also where Pebble sends http-01 validation requests.
	IngressHTTP  string `json:"ingressHTTP"`
	IngressClass string `json:"ingressClass"`
	NodeName     string `json:"nodeName"`
	// RealNode is set when a real kubelet runs the pods (Options.RealNode).
	RealNode bool `json:"realNode,omitempty"`
	// GatewayNamespace/GatewayName is a Gateway of GatewayClass, whose
	// controller is simnode: it routes the HTTPRoutes attached to the
	// Gateway on IngressHTTP too. Its one listener, "http" on port 80,
	// admits routes from all namespaces. Empty without Options.GatewayAPI.
	GatewayClass     string `json:"gatewayClass,omitempty"`
	GatewayNamespace string `json:"gatewayNamespace,omitempty"`
	GatewayName      string `json:"gatewayName,omitempty"`
	// PebbleManagement is Pebble's management API, https://127.0.0.1:PORT
	// (roots, intermediates, certificate status), served with the ACMECABundle CA.
	PebbleManagement string `json:"pebbleManagement"`
	// ChallTestSrvManagement is pebble-challtestsrv's management API,
	// http://127.0.0.1:PORT, to change the DNS answers Pebble sees.
	ChallTestSrvManagement string `json:"challTestSrvManagement"`
	// ChallTestSrvDNS is the DNS server (host:port) Pebble resolves names with.
	ChallTestSrvDNS string `json:"challTestSrvDNS"`
	// StepCAServer is step-ca's ACME directory URL,
	// https://127.0.0.1:PORT/acme/acme/directory; empty without
	// Options.StepCA. step-ca resolves names with ChallTestSrvDNS too and
	// validates http-01 on IngressHTTP's port.
	StepCAServer string `json:"stepCAServer,omitempty"`
	// StepCACABundle is a PEM file with the CA of step-ca's HTTPS
	// certificate: its root, which signs its intermediate, which signs
	// step-ca's own certificate.
	StepCACABundle string `json:"stepCACABundle,omitempty"`
	// StepCARoots is a PEM file with the root step-ca's certificates chain
	// to (the same root: step-ca has one).
	StepCARoots string `json:"stepCARoots,omitempty"`

	mu    sync.Mutex
	procs []*proc
	ports map[int]bool
	// ingressListener holds IngressHTTP's port from the moment it is
	// picked until simnode serves it (startSimnode hands it over).
	ingressListener *net.TCPListener
	log             io.Writer
	// Set by Start only; secrets and key material the later steps need.
	adminToken string
	pki        *pkiFiles
	etcdURL    string
	spawner    *spawner      // set with Options.DieWithParent
	stopGrace  time.Duration // before SIGKILL; 0 means 5s
}

// Paths inside Dir. Start removes only these when reusing a directory, so a
// mistaken Dir such as $HOME loses nothing else.
const (
	envFile      = "env"
	envJSONFile  = "env.json"
	pidsFile     = "pids"
	kubeconfigFn = "kubeconfig"
	logsDir      = "logs"
	etcdDir      = "etcd"
	pkiDir       = "pki"
	pebbleDir    = "pebble"
	nodeDir      = "node"
	kcmDir       = "kube-controller-manager"
	stepCADir    = "step-ca"
)

// Options.Node values.
const (
	NodeReal = "real"
	NodeSim  = "sim"
)

// Start runs a new environment in o.Dir and returns once every part answers.
// On error, it stops what it started.
func Start(ctx context.Context, o Options) (_ *Env, err error) {
	begin := time.Now()
	if err := o.complete(); err != nil {
		return nil, err
	}
	e := &Env{
		Dir:          o.Dir,
		BinDir:       o.BinDir,
		Kubeconfig:   filepath.Join(o.Dir, kubeconfigFn),
		IngressClass: o.IngressClass,
		NodeName:     o.NodeName,
		RealNode:     o.realNode,
		ports:        map[int]bool{},
		log:          o.Log,
	}
	if o.GatewayAPI {
		e.GatewayClass, e.GatewayNamespace, e.GatewayName = defaultGatewayClass, defaultGatewayNamespace, defaultGatewayName
	}
	if err := e.prepareDir(); err != nil {
		return nil, err
	}
	if o.DieWithParent {
		e.spawner = newSpawner()
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, e.Stop())
		}
	}()
	if e.pki, err = writePKI(filepath.Join(o.Dir, pkiDir), filepath.Join(o.Dir, pebbleDir)); err != nil {
		return nil, err
	}
	e.adminToken = e.pki.adminToken
	e.ACMECABundle = e.pki.acmeCA

	// The ingress's port is held from now on and handed to simnode:
	// picked and left unbound for the seconds the control plane takes to
	// start, it was now and then bound by another program in that time
	// (a test's CA proxy on 127.0.0.1:0 beside this environment), whose
	// answers then stood in for the ingress's.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("testenv: listen for the ingress: %w", err)
	}
	e.ingressListener = ln.(*net.TCPListener)
	ingressPort := ln.Addr().(*net.TCPAddr).Port
	e.mu.Lock()
	e.ports[ingressPort] = true
	e.mu.Unlock()
	e.IngressHTTP = ln.Addr().String()

	// The control plane and the ACME side do not depend on each other, and
	// starting them side by side saves a few seconds on every test run.
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := e.retryOnce(gctx, "etcd", func() error { return e.startEtcd(gctx, o) }); err != nil {
			return err
		}
		if err := e.retryOnce(gctx, "kube-apiserver", func() error { return e.startAPIServer(gctx, o) }); err != nil {
			return err
		}
		// The Gateway API objects need only the apiserver: installing them
		// while the controller manager starts hides most of their cost.
		cp, cpctx := errgroup.WithContext(gctx)
		cp.Go(func() error {
			return e.retryOnce(cpctx, "kube-controller-manager", func() error { return e.startControllerManager(cpctx, o) })
		})
		cp.Go(func() error { return e.createIngressClass(cpctx) })
		cp.Go(func() error { return e.createNginxAdmission(cpctx) })
		if o.GatewayAPI {
			cp.Go(func() error { return e.installGatewayAPI(cpctx) })
		}
		if err := cp.Wait(); err != nil {
			return err
		}
		if o.realNode {
			if err := e.startRealNode(gctx, o); err != nil {
				return err
			}
		}
		return e.retryOnce(gctx, "simnode", func() error { return e.startSimnode(gctx, o) })
	})
	g.Go(func() error {
		if err := e.retryOnce(gctx, "pebble-challtestsrv", func() error { return e.startChallTestSrv(gctx, o) }); err != nil {
			return err
		}
		cas, cactx := errgroup.WithContext(gctx)
		cas.Go(func() error {
			if err := e.retryOnce(cactx, "pebble", func() error { return e.startPebble(cactx, o, ingressPort) }); err != nil {
				return err
			}
			return e.fetchRoots(cactx)
		})
		if o.StepCA {
			cas.Go(func() error {
				return e.retryOnce(cactx, "step-ca", func() error { return e.startStepCA(cactx, o, ingressPort) })
			})
		}
		return cas.Wait()
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if o.realNode {
		if err := e.publishCAs(); err != nil {
			return nil, err
		}
	}
	if err := e.writeEnvFiles(); err != nil {
		return nil, err
	}
	e.logf("environment ready in %s: . %s", time.Since(begin).Round(100*time.Millisecond), filepath.Join(e.Dir, envFile))
	return e, nil
}

func (o *Options) complete() error {
	if o.Dir == "" {
		return errors.New("testenv: Dir is required")
	}
	if o.BinDir == "" {
		return errors.New("testenv: BinDir is required")
	}
	var err error
	if o.Dir, err = filepath.Abs(o.Dir); err != nil {
		return fmt.Errorf("testenv: %w", err)
	}
	if o.BinDir, err = filepath.Abs(o.BinDir); err != nil {
		return fmt.Errorf("testenv: %w", err)
	}
	if o.IngressClass == "" {
		o.IngressClass = "nginx"
	}
	if o.TestenvBinary == "" {
		o.TestenvBinary = filepath.Join(o.BinDir, "testenv")
	}
	if o.Busybox == "" {
		o.Busybox = "/bin/busybox"
	}
	if o.Node == "" {
		o.Node = os.Getenv("TESTENV_NODE")
	}
	switch o.Node {
	case "", NodeReal:
		o.Node, o.realNode = NodeReal, true
	case NodeSim:
	default:
		return fmt.Errorf("testenv: node %q (TESTENV_NODE or Options.Node): want %s or %s", o.Node, NodeReal, NodeSim)
	}
	if o.NodeName == "" {
		o.NodeName = "simnode"
		if o.realNode {
			o.NodeName = "realnode"
		}
	}
	if o.PauseBinary == "" {
		o.PauseBinary = filepath.Join(filepath.Dir(o.TestenvBinary), "pause")
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	bins := []string{o.TestenvBinary, o.Busybox}
	if o.StepCA {
		bins = append(bins, filepath.Join(o.BinDir, "step-ca"))
	}
	names := []string{"etcd", "kube-apiserver", "kube-controller-manager", "kubectl", "pebble", "pebble-challtestsrv"}
	if o.realNode {
		names = append(names, "kube-scheduler", "kubelet")
		bins = append(bins, o.PauseBinary, containerdBin, ctrBin, runcBin)
	}
	for _, name := range names {
		bins = append(bins, filepath.Join(o.BinDir, name))
	}
	for _, bin := range bins {
		if _, err := os.Stat(bin); err != nil {
			return fmt.Errorf("testenv: missing program (run hack/tools.sh and make testenv-bin): %w", err)
		}
	}
	return nil
}

// prepareDir refuses a directory whose environment still runs, and clears
// what a stopped one left.
func (e *Env) prepareDir() error {
	if old, err := readPids(e.Dir, filepath.Join(e.Dir, pidsFile)); err == nil {
		for _, p := range old {
			if p.running() {
				return fmt.Errorf("testenv: an environment is still running in %s (%s pid %d); stop it first", e.Dir, p.name, p.pid)
			}
		}
	}
	// A real node's mounts must go before its files do.
	if err := cleanupRealNode(e.Dir); err != nil {
		return err
	}
	for _, name := range []string{envFile, envJSONFile, pidsFile, kubeconfigFn, logsDir, etcdDir, pkiDir, pebbleDir, nodeDir, kcmDir, realNodeDir, stepCADir} {
		if err := os.RemoveAll(filepath.Join(e.Dir, name)); err != nil {
			return fmt.Errorf("testenv: clear %s: %w", e.Dir, err)
		}
	}
	for _, name := range []string{logsDir, pkiDir, pebbleDir, nodeDir, kcmDir, stepCADir} {
		if err := os.MkdirAll(filepath.Join(e.Dir, name), 0o755); err != nil {
			return fmt.Errorf("testenv: %w", err)
		}
	}
	// etcd insists on owner-only permissions for its data directory.
	if err := os.MkdirAll(filepath.Join(e.Dir, etcdDir), 0o700); err != nil {
		return fmt.Errorf("testenv: %w", err)
	}
	return nil
}

// Load returns the environment that `testenv up` left running in dir. Its
// Stop stops that environment.
func Load(dir string) (*Env, error) {
	data, err := os.ReadFile(filepath.Join(dir, envJSONFile))
	if err != nil {
		return nil, fmt.Errorf("testenv: no environment in %s: %w", dir, err)
	}
	e := &Env{}
	if err := json.Unmarshal(data, e); err != nil {
		return nil, fmt.Errorf("testenv: parse %s: %w", envJSONFile, err)
	}
	if e.procs, err = readPids(e.Dir, filepath.Join(e.Dir, pidsFile)); err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	for _, p := range e.procs {
		if !p.running() {
			return nil, fmt.Errorf("testenv: environment in %s is not running: %s (pid %d) has exited; see %s", dir, p.name, p.pid, p.logFile)
		}
	}
	return e, nil
}

// StopDir stops whatever environment runs in dir, even one whose Start did
// not finish (no env.json yet). Nothing running is not an error.
func StopDir(dir string) error {
	procs, err := readPids(dir, filepath.Join(dir, pidsFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("testenv: %w", err)
	}
	e := &Env{Dir: dir, procs: procs}
	return e.Stop()
}

// Stop stops every program of the environment, dependents first: SIGTERM to
// each process group, SIGKILL after a grace period. Calling it again, or on
// an environment already stopped, does nothing.
func (e *Env) Stop() error {
	e.mu.Lock()
	procs := slices.Clone(e.procs)
	if e.ingressListener != nil {
		_ = e.ingressListener.Close()
		e.ingressListener = nil
	}
	e.mu.Unlock()
	sort.SliceStable(procs, func(i, j int) bool {
		return stopRank(procs[i].name) < stopRank(procs[j].name)
	})
	// kube-apiserver may drain for a few seconds on SIGTERM; the rest exit at once.
	grace := e.stopGrace
	if grace == 0 {
		grace = 5 * time.Second
	}
	var errs []error
	for _, p := range procs {
		if err := p.stop(grace); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("testenv: stop %s: %w", e.Dir, err)
	}
	if err := cleanupRealNode(e.Dir); err != nil {
		return err
	}
	// Only cosmetic: lets `down` leave no <defunct> entries behind in ps.
	deadline := time.Now().Add(3 * time.Second)
	for _, p := range procs {
		for !p.reaped() && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if e.spawner != nil {
		e.spawner.close()
	}
	return nil
}

// stopRank orders Stop: dependents before what they depend on.
func stopRank(name string) int {
	switch name {
	case "simnode":
		return 1
	case "kubelet", "podproxy":
		return 2
	case "kube-scheduler":
		return 3
	case "containerd":
		return 4
	case "pebble", "step-ca":
		return 2
	case "pebble-challtestsrv":
		return 3
	case "kube-controller-manager":
		return 4
	case "kube-apiserver":
		return 5
	case "etcd":
		return 6
	}
	return 0 // unknown programs are newer dependents: stop them first
}

// Running reports whether every program of the environment is still running.
func (e *Env) Running() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range e.procs {
		if !p.running() {
			return false
		}
	}
	return len(e.procs) > 0
}

// LogFile returns the log of one of the programs (etcd, kube-apiserver,
// kube-controller-manager, pebble-challtestsrv, pebble, step-ca, simnode;
// on the real node also kube-scheduler, containerd, kubelet, podproxy).
func (e *Env) LogFile(name string) string {
	return filepath.Join(e.Dir, logsDir, name+".log")
}

// Environ returns the variables Dir/env exports, as KEY=VALUE.
func (e *Env) Environ() []string {
	env := []string{
		"KUBECONFIG=" + e.Kubeconfig,
		"ACME_SERVER=" + e.ACMEServer,
		"ACME_CA_BUNDLE=" + e.ACMECABundle,
		"ACME_ROOTS=" + e.ACMERoots,
		"INGRESS_HTTP=" + e.IngressHTTP,
		"PEBBLE_MANAGEMENT=" + e.PebbleManagement,
		"CHALLTESTSRV_MANAGEMENT=" + e.ChallTestSrvManagement,
	}
	if e.GatewayName != "" {
		env = append(env, "GATEWAY_NAMESPACE="+e.GatewayNamespace, "GATEWAY_NAME="+e.GatewayName)
	}
	if e.StepCAServer != "" {
		env = append(env, "STEPCA_SERVER="+e.StepCAServer, "STEPCA_CA_BUNDLE="+e.StepCACABundle, "STEPCA_ROOTS="+e.StepCARoots)
	}
	return env
}

func (e *Env) writeEnvFiles() error {
	var b strings.Builder
	b.WriteString("# Source this file: . " + shellQuote(filepath.Join(e.Dir, envFile)) + "\n")
	for _, kv := range e.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Fprintf(&b, "export %s=%s\n", k, shellQuote(v))
	}
	fmt.Fprintf(&b, "export PATH=%s:\"$PATH\"\n", shellQuote(e.BinDir))
	if err := writeFileAtomic(filepath.Join(e.Dir, envFile), []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("testenv: %w", err)
	}
	data, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return fmt.Errorf("testenv: encode %s: %w", envJSONFile, err)
	}
	if err := writeFileAtomic(filepath.Join(e.Dir, envJSONFile), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("testenv: %w", err)
	}
	return nil
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func (e *Env) logf(format string, args ...any) {
	if e.log != nil {
		fmt.Fprintf(e.log, "testenv: "+format+"\n", args...)
	}
}
