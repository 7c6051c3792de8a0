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
	// Batches are the batch sizes; each runs BatchRuns rounds of the
	// floor, lego and one `kubectl acme apply -f`, interleaved.
	Batches   []int
	BatchRuns int
	// Concurrency is apply's --concurrency, and the floor's and lego's
	// orders in flight in a batch.
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
	def(&c.BatchRuns, 2)
	def(&c.Concurrency, 20)
	def(&c.StatusNamespaces, 100)
	def(&c.StatusPerNamespace, 500)
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

	// sb passes Pebble's http-01 connections to the client being timed.
	sb *switchboard
	// floorT is the timed floor, floorC the one through the counting
	// proxy; both answer on floorAddr.
	floorT, floorC *floor
	floorAddr      string
	legoT          *legoPeer
	// oneWindows and batchWindows are kubectl-acme's runs, for the audit
	// log: one per `issue`, and per batch size one per `apply`.
	oneWindows   []Window
	batchWindows [][]Window
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

	// Pebble's http-01 port, taken first so the environment cannot hand
	// it to anything else; the switchboard serves it.
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

	b.sb = newSwitchboard(hold)
	defer b.sb.stop()
	if b.floorT, err = newFloor(ctx, b.env.ACMEServer, ca, "default"); err != nil {
		return nil, err
	}
	if b.floorC, err = newFloor(ctx, b.proxy.URL, b.proxy.CAPEM, "default"); err != nil {
		return nil, err
	}
	var stopFloor func()
	if b.floorAddr, stopFloor, err = serveFloors(b.floorT, b.floorC); err != nil {
		return nil, err
	}
	defer stopFloor()
	if b.legoT, err = startLego(ctx, legoBin, b.env.ACMEServer, b.env.ACMECABundle); err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, b.legoT.close()) }()

	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"baselines", b.baselines},
		{"status at scale", b.statusAtScale},
		{"idle", b.idle},
		{"one certificate: floor, lego, kubectl-acme issue, interleaved", b.one},
		{"batches: floor, lego, kubectl-acme apply -f, interleaved", b.batches},
		{"request counts", func(ctx context.Context) error { return b.counts(ctx, legoBin, proxyCA) }},
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
		fmt.Sprintf("Pebble validates http-01 on 127.0.0.1:%d, a byte-for-byte TCP switchboard to the responder of the client running: the floor's, lego's, or the cluster's ingress (%s) for kubectl-acme", b.port, b.env.IngressHTTP),
		fmt.Sprintf("one certificate: %d rounds of floor, lego, kubectl-acme after %d warm-up; batches: %d rounds per size of floor, lego, kubectl-acme apply, each at concurrency %d", b.cfg.Runs, b.cfg.Warmup, b.cfg.BatchRuns, b.cfg.Concurrency),
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
	b.logf("seeding %d certificates in %d namespaces", total, cfg.StatusNamespaces)
	seed := time.Now()
	if err := SeedCertificates(ctx, b.client, cfg.StatusNamespaces, cfg.StatusPerNamespace); err != nil {
		return err
	}
	st := &b.res.Status
	st.SeedSeconds = time.Since(seed).Seconds()
	b.logf("seeded in %.0fs", st.SeedSeconds)
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

// one times one certificate at a time, interleaved: each round issues
// one with the floor, one with lego and one with `kubectl acme issue`, so
// a change in the machine's load touches all three alike.
func (b *run) one(ctx context.Context) error {
	const ns = "bench-one"
	if err := b.createIssuer(ctx, ns, b.env.ACMEServer, b.env.ACMECABundle); err != nil {
		return err
	}
	fcpu, lcpu, kcpu := b.cpuSeries(), b.cpuSeries(), b.cpuSeries()
	var floorTimes, noWait, legoTimes, walls, rss, cpu []float64
	var floorPhases, phases []map[string]float64
	var floorClient, legoClient float64
	for i := range b.cfg.Warmup + b.cfg.Runs {
		timed := i >= b.cfg.Warmup

		b.sb.set(b.floorAddr)
		c0 := cpuSeconds()
		fcpu.begin()
		r, err := b.floorT.Issue(ctx, fmt.Sprintf("floor-%d.bench.test", i))
		fcpu.end()
		switch {
		case err != nil:
			if err := b.failed("floor", err); err != nil {
				return err
			}
		case timed:
			floorClient += cpuSeconds() - c0
			ph := r.phases()
			floorTimes, floorPhases = append(floorTimes, r.Total.Seconds()), append(floorPhases, ph)
			if waited(ph, FloorValidation, FloorFinalize) {
				b.res.FloorWaits++
			} else {
				noWait = append(noWait, r.Total.Seconds())
			}
		}

		b.sb.set(b.legoT.addr)
		lcpu.begin()
		lr, err := b.legoT.obtain(1, 1, fmt.Sprintf("lego-%d", i))
		lcpu.end()
		if err != nil {
			return err
		}
		b.res.LegoVersion = lr.Lego
		switch {
		case lr.Failures > 0:
			if err := b.failed("lego", errors.New("see lego-peer's error above")); err != nil {
				return err
			}
		case timed:
			legoTimes = append(legoTimes, lr.PerCertSecs...)
			legoClient += lr.CPUSecs
		}

		b.sb.set(b.env.IngressHTTP)
		name := fmt.Sprintf("one-%d", i)
		kcpu.begin()
		kr, err := b.k.timed(ctx, issueArgs(ns, "pebble", name, name+".bench.test", b.env.IngressHTTP)...)
		kcpu.end()
		if err != nil {
			if err := b.failed("kubectl-acme one", err); err != nil {
				return err
			}
			continue
		}
		if !timed {
			continue
		}
		ph, err := ParsePhases(kr.Lines, kr.Wall)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		walls = append(walls, kr.Wall.Seconds())
		rss = append(rss, float64(kr.MaxRSSKB)/1024)
		cpu = append(cpu, kr.CPU.Seconds())
		phases = append(phases, ph)
		if waited(ph, PhaseValidation, PhaseFinalize) {
			b.res.OneWaits++
		}
		b.oneWindows = append(b.oneWindows, Window{kr.Start, kr.End})
	}
	if len(floorTimes) == 0 || len(legoTimes) == 0 || len(walls) == 0 {
		return fmt.Errorf("a series issued nothing: floor %d, lego %d, kubectl-acme %d", len(floorTimes), len(legoTimes), len(walls))
	}
	b.res.Floor, b.res.FloorNoWait = Summarize(floorTimes), Summarize(noWait)
	b.res.FloorPhases = summarizeNamed(floorPhases, FloorPhaseNames)
	b.res.FloorCPU = floorClient / float64(len(floorTimes))
	b.res.CPU["floor"] = fcpu.per(len(floorTimes), floorClient, len(floorTimes))
	b.res.Lego = Summarize(legoTimes)
	b.res.LegoCPU = legoClient / float64(len(legoTimes))
	b.res.CPU["lego"] = lcpu.per(len(legoTimes), legoClient, len(legoTimes))
	b.res.One, b.res.OnePhases = Summarize(walls), SummarizePhases(phases)
	b.res.OneRSSMB = slices.Max(rss)
	b.res.OneCPU = Summarize(cpu)
	b.res.CPU["kubectl-acme one"] = kcpu.per(len(walls), sum(cpu), len(walls))

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
	return b.settle(ctx)
}

func (b *run) cpuSeries() *cpuSeries { return newCPUSeries(b.env.Dir, b.res.IdleCPU) }

// batches times N certificates at once, BatchRuns rounds per size, each
// round interleaved: the floor ordering N with Concurrency at a time, lego
// the same, and one `kubectl acme apply -f` of N Certificates in one
// namespace with --concurrency.
func (b *run) batches(ctx context.Context) error {
	if !b.hasApply(ctx) {
		return errors.New("`kubectl acme apply -f` with --concurrency and --connect-to is not available")
	}
	for _, n := range b.cfg.Batches {
		bt := Batch{N: n, Mode: ModeApply, Concurrency: min(b.cfg.Concurrency, n), Runs: b.cfg.BatchRuns}
		fcpu, lcpu, kcpu := b.cpuSeries(), b.cpuSeries(), b.cpuSeries()
		var walls, floorWalls, legoWalls, floorCPU, legoCPU, clientCPU []float64
		var phases []map[string]float64
		var windows []Window
		for round := range b.cfg.BatchRuns {
			b.sb.set(b.floorAddr)
			c0 := cpuSeconds()
			fcpu.begin()
			wall, failed := b.floorBatch(ctx, n, bt.Concurrency, fmt.Sprintf("floor-b%d-%d", n, round))
			fcpu.end()
			floorCPU = append(floorCPU, cpuSeconds()-c0)
			bt.FloorFailures += failed
			floorWalls = append(floorWalls, wall.Seconds())

			b.sb.set(b.legoT.addr)
			lcpu.begin()
			lr, err := b.legoT.obtain(n, bt.Concurrency, fmt.Sprintf("lego-b%d-%d", n, round))
			lcpu.end()
			if err != nil {
				return err
			}
			bt.LegoFailures += lr.Failures
			legoWalls, legoCPU = append(legoWalls, lr.WallSecs), append(legoCPU, lr.CPUSecs)

			b.sb.set(b.env.IngressHTTP)
			ns := fmt.Sprintf("bench-apply-%d-%d", n, round)
			if err := b.createIssuer(ctx, ns, b.env.ACMEServer, b.env.ACMECABundle); err != nil {
				return err
			}
			kcpu.begin()
			r, ph, failed, err := b.apply(ctx, ns, n, bt.Concurrency)
			kcpu.end()
			if err != nil {
				return err
			}
			bt.Failures += failed
			walls, clientCPU = append(walls, r.Wall.Seconds()), append(clientCPU, r.CPU.Seconds())
			phases = append(phases, ph...)
			windows = append(windows, Window{r.Start, r.End})
			b.logf("%d certificates, round %d: floor %.1fs, lego %.1fs, kubectl-acme apply %.1fs (%d, %d, %d failed)",
				n, round+1, wall.Seconds(), lr.WallSecs, r.Wall.Seconds(), failed, lr.Failures, bt.Failures)
			if err := b.settle(ctx); err != nil {
				return err
			}
		}
		certs := n * b.cfg.BatchRuns
		bt.WallRuns, bt.Floor, bt.Lego = Summarize(walls), Summarize(floorWalls), Summarize(legoWalls)
		bt.Wall = bt.WallRuns.Median
		bt.PerCert = bt.Wall / float64(n)
		bt.RatioToFloor = ratio(bt.Wall, bt.Floor.Median)
		bt.LegoRatioToFloor = ratio(bt.Lego.Median, bt.Floor.Median)
		bt.RatioToNxFloor = ratio(bt.Wall, float64(n)*b.res.Floor.Median)
		bt.ClientCPU = sum(clientCPU) / float64(certs)
		bt.FloorCPU, bt.LegoCPU = sum(floorCPU)/float64(certs), sum(legoCPU)/float64(certs)
		bt.Phases = SummarizePhases(phases)
		b.res.CPU[fmt.Sprintf("kubectl-acme %d, apply -f", n)] = kcpu.per(certs, sum(clientCPU), certs)
		b.res.CPU[fmt.Sprintf("floor %d", n)] = fcpu.per(certs, sum(floorCPU), certs)
		b.res.CPU[fmt.Sprintf("lego %d", n)] = lcpu.per(certs, sum(legoCPU), certs)
		b.res.Batches = append(b.res.Batches, bt)
		b.batchWindows = append(b.batchWindows, windows)
	}
	return nil
}

// floorBatch has the floor order n certificates, conc at a time, and
// returns the wall time and the number that failed.
func (b *run) floorBatch(ctx context.Context, n, conc int, prefix string) (time.Duration, int) {
	var mu sync.Mutex
	failed := 0
	g := new(errgroup.Group)
	g.SetLimit(conc)
	start := time.Now()
	for i := range n {
		g.Go(func() error {
			if _, err := b.floorT.Issue(ctx, fmt.Sprintf("%s-%d.bench.test", prefix, i)); err != nil {
				mu.Lock()
				defer mu.Unlock()
				b.logf("floor: %v", err)
				failed++
			}
			return nil
		})
	}
	_ = g.Wait()
	return time.Since(start), failed
}

// apply runs one `kubectl acme apply -f` of n Certificates in ns and
// returns the process, the phases of each certificate and how many got
// no Secret.
func (b *run) apply(ctx context.Context, ns string, n, conc int) (*timedRun, []map[string]float64, int, error) {
	file, err := b.writeManifests(ns, "a", n)
	if err != nil {
		return nil, nil, 0, err
	}
	r, err := b.k.timed(ctx, "acme", "apply", "-f", file, "-n", ns, "--concurrency", strconv.Itoa(conc), "--connect-to", b.env.IngressHTTP)
	if r == nil {
		return nil, nil, 0, err
	}
	if err != nil {
		b.logf("%v", err)
	}
	issued, err := b.client.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{FieldSelector: "type=kubernetes.io/tls"})
	if err != nil {
		return nil, nil, 0, err
	}
	var phases []map[string]float64
	for _, lines := range SplitByCertificate(r.Lines) {
		if ph, err := ParseCertificatePhases(lines); err == nil {
			phases = append(phases, ph)
		}
	}
	return r, phases, n - len(issued.Items), nil
}

// counts sends a few certificates of each client through the counting
// proxy, for ACME requests per certificate, and counts kubectl-acme's
// Kubernetes API requests and solver objects in the audit log.
func (b *run) counts(ctx context.Context, legoBin, proxyCA string) error {
	var err error
	b.sb.set(b.floorAddr)
	pass := 0
	if b.res.ACME["floor"], err = b.counted("floor", func() error {
		pass++
		for i := range b.cfg.CountCerts {
			if _, err := b.floorC.Issue(ctx, fmt.Sprintf("floor-counted-%d-%d.bench.test", pass, i)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}

	lc, err := startLego(ctx, legoBin, b.proxy.URL, proxyCA)
	if err != nil {
		return err
	}
	defer lc.close()
	b.sb.set(lc.addr)
	if b.res.ACME["lego"], err = b.counted("lego", func() error {
		pass++
		r, err := lc.obtain(b.cfg.CountCerts, 1, fmt.Sprintf("lego-counted-%d", pass))
		if err == nil && r.Failures > 0 {
			err = fmt.Errorf("%d failed", r.Failures)
		}
		return err
	}); err != nil {
		return err
	}

	b.sb.set(b.env.IngressHTTP)
	const cns = "bench-acme"
	if err := b.createIssuer(ctx, cns, b.proxy.URL, proxyCA); err != nil {
		return err
	}
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

	// Kubernetes API requests and solver objects, from the audit log.
	events, err := readAuditFile(b.audit)
	if err != nil {
		return err
	}
	b.res.API = CountAPI(events, b.oneWindows, len(b.oneWindows))
	for i := range b.res.Batches {
		bt := &b.res.Batches[i]
		bt.API = CountAPI(events, b.batchWindows[i], bt.N*len(b.batchWindows[i]))
		// Concurrent issuances share the issuer's objects: the maximum
		// reads of one object says nothing per issuance here.
		bt.API.MaxReadsOneObject, bt.API.MostReadObject = 0, ""
	}
	return b.settle(ctx)
}

// hasApply reports whether the plugin has `apply -f` with the flags
// batches need.
func (b *run) hasApply(ctx context.Context) bool {
	help, err := b.k.run(ctx, "acme", "apply", "--help")
	return err == nil && strings.Contains(help, "--concurrency") && strings.Contains(help, "--connect-to")
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

func (b *run) acmeCost(n int) ACMECost {
	total, by := perCert(b.proxy.Take(), n)
	return ACMECost{Certificates: n, PerCert: total, ByEndpoint: by}
}
