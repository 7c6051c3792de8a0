// Package bench measures kubectl-acme against the floor (the CA's own
// round trips, driven in-process with golang.org/x/crypto/acme) and
// against a peer (lego), on the local test environment: issuance time for
// one certificate and for batches, Kubernetes API and ACME requests per
// certificate, and `kubectl acme status -A` over thousands of
// certificates. `make bench` runs it; bench/README.md discusses the
// results.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	testenv "github.com/kubectl-acme/kubectl-acme/test/env"
)

// Config says what to measure.
type Config struct {
	// Repo is the repository root; bench/lego is built from it.
	Repo string
	// BinDir holds kubectl, kubectl-acme, testenv and the environment's
	// programs (make tools build testenv-bin).
	BinDir string
	// Dir holds the environment, kept afterwards for its logs; empty
	// means a temporary directory, removed afterwards.
	Dir string
	// Runs is how many certificates the floor, lego and kubectl-acme one
	// at a time each time, after Warmup untimed ones.
	Runs, Warmup int
	// Batches are the batch sizes; each runs as one `kubectl acme apply
	// -f` (when the plugin has it) and as parallel `kubectl acme issue`
	// processes.
	Batches []int
	// Concurrency is apply's --concurrency, and the bound on parallel
	// issue processes.
	Concurrency int
	// StatusNamespaces x StatusPerNamespace Certificates are seeded for
	// `status -A`, which runs StatusRuns times after one warm-up.
	StatusNamespaces, StatusPerNamespace, StatusRuns int
	// CountCerts certificates per client go through the counting proxy.
	CountCerts int
	// Log receives progress; nil discards.
	Log io.Writer
}

func (c *Config) complete() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Runs, 12)
	def(&c.Warmup, 1)
	def(&c.Concurrency, 20)
	def(&c.StatusNamespaces, 50)
	def(&c.StatusPerNamespace, 100)
	def(&c.StatusRuns, 5)
	def(&c.CountCerts, 3)
	if c.Batches == nil {
		c.Batches = []int{20, 100}
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
}

// run is one benchmark run's state.
type run struct {
	cfg    Config
	env    *testenv.Env
	client kubernetes.Interface
	k      *kubectl
	port   int // Pebble's http-01 port
	audit  string
	res    *Results
	proxy  *acmeProxy
}

func (b *run) logf(format string, args ...any) {
	fmt.Fprintf(b.cfg.Log, "bench: "+format+"\n", args...)
}

// Run starts an environment, measures, stops it and returns the results.
func Run(ctx context.Context, cfg Config) (_ *Results, err error) {
	cfg.complete()
	b := &run{cfg: cfg, res: &Results{Generated: time.Now().UTC().Round(time.Second), GoVersion: runtime.Version(), CPUs: runtime.NumCPU()}}

	work, err := os.MkdirTemp("", "kubectl-acme-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	dir := cfg.Dir
	if dir == "" {
		dir = filepath.Join(work, "env")
	}

	// Built first, so the compiler does not compete with the measurements.
	b.logf("building bench/lego")
	legoBin, err := buildLego(ctx, cfg.Repo, work)
	if err != nil {
		return nil, err
	}

	// Hold Pebble's http-01 port until the floor's responder takes it, so
	// the environment cannot hand it to anything else.
	hold, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer hold.Close()
	b.port = hold.Addr().(*net.TCPAddr).Port

	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	policy := filepath.Join(dir, "audit-policy.yaml")
	b.audit = filepath.Join(dir, "audit.log")
	_ = os.Remove(b.audit)
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o644); err != nil {
		return nil, err
	}
	b.logf("starting the environment in %s", dir)
	b.env, err = testenv.Start(ctx, testenv.Options{
		Dir:            dir,
		BinDir:         cfg.BinDir,
		PebbleHTTPPort: b.port,
		APIServerArgs:  []string{"--audit-policy-file=" + policy, "--audit-log-path=" + b.audit},
		DieWithParent:  true,
		Log:            cfg.Log,
	})
	if err != nil {
		return nil, err
	}
	defer func() {
		b.logf("stopping the environment")
		err = errors.Join(err, b.env.Stop())
	}()
	if b.client, err = fastClient(b.env.Kubeconfig); err != nil {
		return nil, err
	}
	b.k = &kubectl{bin: filepath.Join(cfg.BinDir, "kubectl"), env: b.childEnv()}

	ca, err := os.ReadFile(b.env.ACMECABundle)
	if err != nil {
		return nil, err
	}
	if b.proxy, err = startACMEProxy(b.env.ACMEServer, ca); err != nil {
		return nil, err
	}
	defer b.proxy.Close()
	proxyCA := filepath.Join(work, "proxy-ca.pem")
	if err := os.WriteFile(proxyCA, b.proxy.CAPEM, 0o644); err != nil {
		return nil, err
	}
	b.res.ACME = map[string]ACMECost{}
	b.res.CPU = map[string]CPUCost{}
	b.res.Failures = map[string]int{}

	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"baselines", b.baselines},
		{"status at scale", b.statusAtScale},
		{"idle", b.idle},
		{"floor", func(ctx context.Context) error { return b.floor(ctx, hold, ca) }},
		{"lego", func(ctx context.Context) error { return b.lego(ctx, legoBin, proxyCA) }},
		{"kubectl-acme", func(ctx context.Context) error { return b.plugin(ctx, proxyCA) }},
	}
	node := "solver pods ran on simnode's simulated node (TESTENV_NODE=sim)"
	if b.env.RealNode {
		node = "solver pods ran on the real node: kube-scheduler, kubelet, containerd, runc; pod start is theirs"
	}
	b.res.Notes = append(b.res.Notes, node, "load average before: "+loadavg())
	defer func() { b.res.Notes = append(b.res.Notes, "load average after: "+loadavg()) }()
	for _, s := range steps {
		begin := time.Now()
		b.logf("%s", s.name)
		if err := s.fn(ctx); err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		b.logf("%s done in %s", s.name, time.Since(begin).Round(100*time.Millisecond))
	}
	b.res.Notes = append(b.res.Notes,
		fmt.Sprintf("Pebble validates http-01 on 127.0.0.1:%d: the floor's and lego's own responders while they run, and a byte-for-byte TCP forwarder to the simulated ingress (%s) while kubectl-acme runs", b.port, b.env.IngressHTTP),
		"every client makes an RSA 2048 certificate key (kubectl-acme's and lego's default) and orders Pebble's \"default\" profile",
		"ACME requests are counted by a reverse proxy in front of Pebble in separate runs (not the timed ones); account registration is excluded",
	)
	b.res.Evaluate()
	return b.res, nil
}

// failed records a failed issuance of a series and fails the benchmark
// once a series has failed more than a third of its runs: an environment
// that broken measures nothing.
func (b *run) failed(series string, err error) error {
	b.logf("%s: %v", series, err)
	b.res.Failures[series]++
	if n := b.res.Failures[series]; n > max(2, b.cfg.Runs/3) {
		return fmt.Errorf("%s: %d failures, the last: %w", series, n, err)
	}
	return nil
}

// counted runs count (one pass of issuances through the counting proxy),
// again once if an issuance fails, and returns the requests per
// certificate.
func (b *run) counted(series string, count func() error) (ACMECost, error) {
	var err error
	for range 2 {
		b.proxy.Take()
		if err = count(); err == nil {
			return b.acmeCost(b.cfg.CountCerts), nil
		}
		if ferr := b.failed(series+" (counting)", err); ferr != nil {
			return ACMECost{}, ferr
		}
	}
	return ACMECost{}, err
}

func sum(xs []float64) float64 {
	t := 0.0
	for _, x := range xs {
		t += x
	}
	return t
}

// loadavg is /proc/loadavg's 1, 5 and 15 minute averages, to tell a
// quiet machine from a busy one when reading the results.
func loadavg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ") + fmt.Sprintf(" (%d CPUs)", runtime.NumCPU())
}

// childEnv is the environment for kubectl: the test environment's
// variables and bin/ first in PATH.
func (b *run) childEnv() []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "KUBECONFIG=") || strings.HasPrefix(kv, "PATH=")
	})
	env = append(env, b.env.Environ()...)
	return append(env, "PATH="+b.cfg.BinDir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

// idle measures the environment's CPU use with nothing to do.
func (b *run) idle(ctx context.Context) error {
	var m *cpuMeter
	for _, d := range []time.Duration{3 * time.Second, 10 * time.Second} {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
		if m == nil { // after letting the seeding's aftermath settle
			m = startCPU(b.env.Dir, nil)
		}
	}
	b.res.IdleCPU = m.rates()
	return nil
}

// baselines times process start and RSA key generation, for scale.
func (b *run) baselines(ctx context.Context) error {
	var startup []float64
	for i := range 6 {
		r, err := b.k.timed(ctx, "acme", "version")
		if err != nil {
			return err
		}
		if i > 0 { // the first one warms the page cache
			startup = append(startup, r.Wall.Seconds())
		}
	}
	b.res.Startup = Summarize(startup)
	keygen, err := rsaKeygen(10)
	if err != nil {
		return err
	}
	b.res.RSAKeygen = Summarize(keygen)
	return nil
}

// statusAtScale seeds Certificates and times `kubectl acme status -A`.
func (b *run) statusAtScale(ctx context.Context) error {
	cfg := b.cfg
	total := cfg.StatusNamespaces * cfg.StatusPerNamespace
	b.logf("seeding %d certificates in %d namespaces (not timed)", total, cfg.StatusNamespaces)
	if err := SeedCertificates(ctx, b.client, cfg.StatusNamespaces, cfg.StatusPerNamespace); err != nil {
		return err
	}
	st := &b.res.Status
	st.Certificates, st.Namespaces = total, cfg.StatusNamespaces
	var walls, rss []float64
	for i := range cfg.StatusRuns + 1 {
		r, err := b.k.timed(ctx, "acme", "status", "-A")
		if err != nil {
			return err
		}
		rows := strings.Count(string(r.Stdout), "\n") - 1 // the header
		if rows != total {
			return fmt.Errorf("status -A printed %d rows, want %d", rows, total)
		}
		st.Rows = rows
		if i == 0 {
			continue // warm-up
		}
		walls = append(walls, r.Wall.Seconds())
		rss = append(rss, float64(r.MaxRSSKB)/1024)
	}
	st.Wall, st.RSSMB = Summarize(walls), Summarize(rss)
	st.PeakRSSMB = st.RSSMB.Max
	return nil
}

// floor times the floor client, serving its challenges on l (Pebble's
// http-01 port), then counts its ACME requests through the proxy.
func (b *run) floor(ctx context.Context, l net.Listener, ca []byte) error {
	f, err := newFloor(ctx, b.env.ACMEServer, ca, "default")
	if err != nil {
		return err
	}
	counted, err := newFloor(ctx, b.proxy.URL, b.proxy.CAPEM, "default")
	if err != nil {
		return err
	}
	var mu sync.Mutex
	active := f
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		h := active
		mu.Unlock()
		h.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()

	var times, noWait []float64
	var phases []map[string]float64
	var cpuStart float64
	var meter *cpuMeter
	for i := range b.cfg.Warmup + b.cfg.Runs {
		if i == b.cfg.Warmup {
			cpuStart, meter = cpuSeconds(), startCPU(b.env.Dir, b.res.IdleCPU)
		}
		r, err := f.Issue(ctx, fmt.Sprintf("floor-%d.bench.test", i))
		if err != nil {
			if err := b.failed("floor", err); err != nil {
				return err
			}
			continue
		}
		if i < b.cfg.Warmup {
			continue
		}
		ph := r.phases()
		times = append(times, r.Total.Seconds())
		phases = append(phases, ph)
		if waited(ph, FloorValidation, FloorFinalize) {
			b.res.FloorWaits++
		} else {
			noWait = append(noWait, r.Total.Seconds())
		}
	}
	if len(times) == 0 {
		return errors.New("no floor issuance succeeded")
	}
	b.res.FloorCPU = (cpuSeconds() - cpuStart) / float64(len(times))
	b.res.CPU["floor"] = meter.per(len(times), b.res.FloorCPU, 1)
	b.res.Floor, b.res.FloorNoWait = Summarize(times), Summarize(noWait)
	b.res.FloorPhases = summarizeNamed(phases, FloorPhaseNames)

	mu.Lock()
	active = counted
	mu.Unlock()
	pass := 0
	b.res.ACME["floor"], err = b.counted("floor", func() error {
		pass++
		for i := range b.cfg.CountCerts {
			if _, err := counted.Issue(ctx, fmt.Sprintf("floor-counted-%d-%d.bench.test", pass, i)); err != nil {
				return err
			}
		}
		return nil
	})
	return err
}

func (b *run) acmeCost(n int) ACMECost {
	total, by := perCert(b.proxy.Take(), n)
	return ACMECost{Certificates: n, PerCert: total, ByEndpoint: by}
}

// lego times the peer, then counts its ACME requests through the proxy.
func (b *run) lego(ctx context.Context, bin, proxyCA string) error {
	meter := startCPU(b.env.Dir, b.res.IdleCPU)
	res, err := legoRun{bin: bin, dir: b.env.ACMEServer, caFile: b.env.ACMECABundle, prefix: "lego",
		port: b.port, n: b.cfg.Runs, warmup: b.cfg.Warmup}.run(ctx)
	if err != nil {
		return err
	}
	for range res.Failures {
		if err := b.failed("lego", errors.New("see lego-peer's error above")); err != nil {
			return err
		}
	}
	if len(res.PerCertSecs) == 0 {
		return errors.New("lego issued no certificate")
	}
	// The environment's share includes lego's registration and warm-up.
	b.res.CPU["lego"] = meter.per(b.cfg.Warmup+b.cfg.Runs, res.CPUSecs, len(res.PerCertSecs))
	b.res.Lego, b.res.LegoVersion = Summarize(res.PerCertSecs), res.Lego
	b.res.LegoCPU = res.CPUSecs / float64(len(res.PerCertSecs))
	pass := 0
	b.res.ACME["lego"], err = b.counted("lego", func() error {
		pass++
		// The peer registers first; the proxy counts from when it has.
		cres, err := legoRun{bin: bin, dir: b.proxy.URL, caFile: proxyCA, prefix: fmt.Sprintf("lego-counted-%d", pass),
			port: b.port, n: b.cfg.CountCerts, warmup: 0, registered: func() { b.proxy.Take() }}.run(ctx)
		if err == nil && cres.Failures > 0 {
			err = fmt.Errorf("%d failed", cres.Failures)
		}
		return err
	})
	return err
}

// createIssuer makes an Issuer for Pebble (directly or through the
// counting proxy) in a new namespace.
func (b *run) createIssuer(ctx context.Context, ns, server, caBundle string) error {
	if err := createNamespace(ctx, b.client, ns); err != nil {
		return err
	}
	_, err := b.k.run(ctx, "acme", "create", "issuer", "pebble", "-n", ns, "--server", server, "--ca-bundle", caBundle,
		"--email", "bench@example.com", "--ingress-class", b.env.IngressClass, "--profile", "default", "--agree-tos")
	return err
}

// plugin times kubectl-acme one certificate at a time and in batches,
// counts its ACME requests through the proxy and its Kubernetes API
// requests in the audit log.
func (b *run) plugin(ctx context.Context, proxyCA string) error {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(b.port))
	if err != nil {
		return fmt.Errorf("take Pebble's http-01 port back from lego: %w", err)
	}
	stop := forward(l, b.env.IngressHTTP)
	defer stop()

	// One at a time.
	const ns = "bench-one"
	if err := b.createIssuer(ctx, ns, b.env.ACMEServer, b.env.ACMECABundle); err != nil {
		return err
	}
	var walls, rss, cpu []float64
	var phases []map[string]float64
	var windows []Window
	var meter *cpuMeter
	for i := range b.cfg.Warmup + b.cfg.Runs {
		if i == b.cfg.Warmup {
			meter = startCPU(b.env.Dir, b.res.IdleCPU)
		}
		name := fmt.Sprintf("one-%d", i)
		r, err := b.k.timed(ctx, issueArgs(ns, "pebble", name, name+".bench.test", b.env.IngressHTTP)...)
		if err != nil {
			if err := b.failed("kubectl-acme one", err); err != nil {
				return err
			}
			continue
		}
		if i < b.cfg.Warmup {
			continue
		}
		ph, err := ParsePhases(r.Lines, r.Wall)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		walls = append(walls, r.Wall.Seconds())
		rss = append(rss, float64(r.MaxRSSKB)/1024)
		cpu = append(cpu, r.CPU.Seconds())
		phases = append(phases, ph)
		if waited(ph, PhaseValidation, PhaseFinalize) {
			b.res.OneWaits++
		}
		windows = append(windows, Window{r.Start, r.End})
	}
	if len(walls) == 0 {
		return errors.New("no kubectl acme issue succeeded")
	}
	b.res.One, b.res.OnePhases = Summarize(walls), SummarizePhases(phases)
	b.res.OneRSSMB = slices.Max(rss)
	b.res.OneCPU = Summarize(cpu)
	b.res.CPU["kubectl-acme one"] = meter.per(len(walls), sum(cpu), len(walls))

	// The same with an ECDSA certificate key, for the share of RSA key
	// generation in the client's CPU.
	var ecWalls, ecCPU []float64
	for i := range min(b.cfg.Runs, 6) {
		name := fmt.Sprintf("ec-%d", i)
		r, err := b.k.timed(ctx, append(issueArgs(ns, "pebble", name, name+".bench.test", b.env.IngressHTTP), "--key-algorithm", "ecdsa")...)
		if err != nil {
			if err := b.failed("kubectl-acme ecdsa", err); err != nil {
				return err
			}
			continue
		}
		ecWalls, ecCPU = append(ecWalls, r.Wall.Seconds()), append(ecCPU, r.CPU.Seconds())
	}
	b.res.OneECDSA, b.res.OneECDSACPU = Summarize(ecWalls), Summarize(ecCPU)
	if err := b.settle(ctx); err != nil {
		return err
	}

	// Batches: with `kubectl acme apply -f` when the plugin has it, and
	// with parallel `kubectl acme issue` processes, for comparison or
	// instead.
	apply := b.hasApply(ctx)
	if !apply {
		b.res.Notes = append(b.res.Notes, "`kubectl acme apply -f` with --concurrency and --connect-to is not available: batches ran as parallel `kubectl acme issue` processes")
	}
	var batchWindows [][]Window
	for _, n := range b.cfg.Batches {
		for _, useApply := range []bool{true, false} {
			if useApply && !apply {
				continue
			}
			bt, ws, err := b.batch(ctx, n, useApply)
			if err != nil {
				return err
			}
			b.res.Batches = append(b.res.Batches, bt)
			batchWindows = append(batchWindows, ws)
			if err := b.settle(ctx); err != nil {
				return err
			}
		}
	}

	// ACME requests, through the counting proxy.
	const cns = "bench-acme"
	if err := b.createIssuer(ctx, cns, b.proxy.URL, proxyCA); err != nil {
		return err
	}
	pass := 0
	if b.res.ACME["kubectl-acme"], err = b.counted("kubectl-acme", func() error {
		pass++
		for i := range b.cfg.CountCerts {
			name := fmt.Sprintf("counted-%d-%d", pass, i)
			if _, err := b.k.timed(ctx, issueArgs(cns, "pebble", name, name+".bench.test", b.env.IngressHTTP)...); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	if apply {
		if b.res.ACME["kubectl-acme apply"], err = b.counted("kubectl-acme apply", func() error {
			pass++
			file, err := b.writeManifests(cns, fmt.Sprintf("counted-apply-%d", pass), b.cfg.CountCerts)
			if err != nil {
				return err
			}
			_, err = b.k.timed(ctx, "acme", "apply", "-f", file, "-n", cns, "--concurrency", "1", "--connect-to", b.env.IngressHTTP, "-q")
			return err
		}); err != nil {
			return err
		}
	}

	// Kubernetes API requests, from the audit log.
	events, err := readAuditFile(b.audit)
	if err != nil {
		return err
	}
	b.res.API = CountAPI(events, windows, len(windows))
	for i := range b.res.Batches {
		bt := &b.res.Batches[i]
		bt.API = CountAPI(events, batchWindows[i], bt.N)
		// Concurrent issuances share the issuer's objects: the maximum
		// reads of one object says nothing per issuance here.
		bt.API.MaxReadsOneObject, bt.API.MostReadObject = 0, ""
	}
	return nil
}

// hasApply reports whether the plugin has `apply -f` with the flags
// batches need.
func (b *run) hasApply(ctx context.Context) bool {
	help, err := b.k.run(ctx, "acme", "apply", "--help")
	return err == nil && strings.Contains(help, "--concurrency") && strings.Contains(help, "--connect-to")
}

// batch issues n certificates at once: with one `kubectl acme apply -f`,
// or with parallel `kubectl acme issue` processes.
func (b *run) batch(ctx context.Context, n int, apply bool) (Batch, []Window, error) {
	mode := "processes"
	if apply {
		mode = "apply"
	}
	ns := fmt.Sprintf("bench-%s-%d", mode, n)
	if err := b.createIssuer(ctx, ns, b.env.ACMEServer, b.env.ACMECABundle); err != nil {
		return Batch{}, nil, err
	}
	bt := Batch{N: n, Concurrency: min(b.cfg.Concurrency, n)}
	if apply {
		return b.applyBatch(ctx, ns, bt)
	}
	bt.Mode = ModeProcesses
	var mu sync.Mutex
	var phases []map[string]float64
	var cpu []float64
	g := new(errgroup.Group)
	g.SetLimit(bt.Concurrency)
	meter := startCPU(b.env.Dir, b.res.IdleCPU)
	start := time.Now()
	for i := range n {
		g.Go(func() error {
			name := fmt.Sprintf("b%d-%d", n, i)
			r, err := b.k.timed(ctx, issueArgs(ns, "pebble", name, name+".bench.test", b.env.IngressHTTP)...)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				b.logf("%v", err)
				bt.Failures++
				return nil
			}
			cpu = append(cpu, r.CPU.Seconds())
			if ph, err := ParsePhases(r.Lines, r.Wall); err == nil {
				phases = append(phases, ph)
			}
			return nil
		})
	}
	_ = g.Wait()
	end := time.Now()
	bt.ClientCPU = sum(cpu) / float64(n)
	b.res.CPU[fmt.Sprintf("kubectl-acme %d, processes", n)] = meter.per(n, sum(cpu), n)
	b.finishBatch(&bt, end.Sub(start), phases)
	return bt, []Window{{start, end}}, nil
}

func (b *run) applyBatch(ctx context.Context, ns string, bt Batch) (Batch, []Window, error) {
	bt.Mode = ModeApply
	file, err := b.writeManifests(ns, fmt.Sprintf("a%d", bt.N), bt.N)
	if err != nil {
		return bt, nil, err
	}
	meter := startCPU(b.env.Dir, b.res.IdleCPU)
	r, err := b.k.timed(ctx, "acme", "apply", "-f", file, "-n", ns, "--concurrency", strconv.Itoa(bt.Concurrency), "--connect-to", b.env.IngressHTTP)
	if r == nil {
		return bt, nil, err
	}
	if err != nil {
		b.logf("%v", err)
	}
	issued, err := b.client.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{FieldSelector: "type=kubernetes.io/tls"})
	if err != nil {
		return bt, nil, err
	}
	bt.Failures = bt.N - len(issued.Items)
	bt.ClientCPU = r.CPU.Seconds() / float64(bt.N)
	b.res.CPU[fmt.Sprintf("kubectl-acme %d, apply -f", bt.N)] = meter.per(bt.N, r.CPU.Seconds(), bt.N)
	var phases []map[string]float64
	for _, lines := range SplitByCertificate(r.Lines) {
		if ph, err := ParseCertificatePhases(lines); err == nil {
			phases = append(phases, ph)
		}
	}
	b.finishBatch(&bt, r.Wall, phases)
	return bt, []Window{{r.Start, r.End}}, nil
}

// writeManifests writes n cert-manager Certificates PREFIX-I in ns, for
// the Issuer "pebble", to a file in the environment's directory.
func (b *run) writeManifests(ns, prefix string, n int) (string, error) {
	var m strings.Builder
	for i := range n {
		name := fmt.Sprintf("%s-%d", prefix, i)
		fmt.Fprintf(&m, "---\napiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata:\n  name: %s\n  namespace: %s\nspec:\n  secretName: %s\n  dnsNames: [%s.bench.test]\n  issuerRef:\n    name: pebble\n    kind: Issuer\n", name, ns, name, name)
	}
	file := filepath.Join(b.env.Dir, ns+"-"+prefix+".yaml")
	return file, os.WriteFile(file, []byte(m.String()), 0o644)
}

func (b *run) finishBatch(bt *Batch, wall time.Duration, phases []map[string]float64) {
	bt.Wall = wall.Seconds()
	bt.PerCert = bt.Wall / float64(bt.N)
	bt.RatioToNxFloor = ratio(bt.Wall, float64(bt.N)*b.res.Floor.Median)
	bt.Phases = SummarizePhases(phases)
	b.logf("%d by %s: %.1fs (%d failed)", bt.N, bt.Mode, bt.Wall, bt.Failures)
}

// settle waits until the solver pods of the last step are gone, so their
// teardown does not load the next measurement.
func (b *run) settle(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		pods, err := b.client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		if len(pods.Items) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d pods still there after a minute", len(pods.Items))
		case <-time.After(200 * time.Millisecond):
		}
	}
}
