package bench

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Results is what `make bench` prints and writes to bench/results.json.
// Times are in seconds, sizes in MB (2^20 bytes).
type Results struct {
	Generated time.Time `json:"generated"`
	GoVersion string    `json:"go"`
	CPUs      int       `json:"cpus"`
	Notes     []string  `json:"notes"`

	// Commit is the tree measured: `git describe --always --dirty`.
	Commit string `json:"commit,omitempty"`

	// Floor is golang.org/x/crypto/acme with an in-process responder.
	Floor       Summary            `json:"floorPerCert"`
	FloorPhases map[string]Summary `json:"floorPhases"`
	// FloorWaits counts runs that slept on the CA's Retry-After while
	// polling (a polling phase over half a second); FloorNoWait
	// summarizes the others: the CA's round trips alone.
	FloorWaits  int     `json:"floorRunsThatWaited"`
	FloorNoWait Summary `json:"floorPerCertWithoutWait"`
	// CPU per certificate (user + system seconds): the floor's and lego's
	// in their own process; kubectl-acme's whole `kubectl acme issue`
	// process. Unlike wall times, these hardly depend on the machine's load.
	FloorCPU float64 `json:"floorCPUPerCert"`
	LegoCPU  float64 `json:"legoCPUPerCert"`
	OneCPU   Summary `json:"kubectlAcmeOneCPU"`

	// CPU is CPU seconds per certificate by program for each series:
	// "client" is the floor's process, lego's, or the kubectl acme
	// processes; the rest are the environment's programs (pebble,
	// kube-apiserver, etcd, simnode with its pods, ...).
	CPU map[string]CPUCost `json:"cpuPerCertByProgram"`
	// IdleCPU is each environment program's CPU seconds per second when
	// nothing runs; CPU has it subtracted.
	IdleCPU map[string]float64 `json:"idleCPUPerSecond"`

	// Lego is the lego library with its own HTTP-01 server.
	Lego        Summary `json:"legoPerCert"`
	LegoVersion string  `json:"legoVersion"`
	// One is `kubectl acme issue` for one name, one after the other.
	One       Summary            `json:"kubectlAcmeOne"`
	OnePhases map[string]Summary `json:"kubectlAcmeOnePhases"`
	OneRSSMB  float64            `json:"kubectlAcmeOnePeakRSSMB"`
	OneWaits  int                `json:"kubectlAcmeOneRunsThatWaited"`
	// OneECDSA is the same with --key-algorithm ecdsa (fewer runs).
	OneECDSA    Summary `json:"kubectlAcmeOneECDSA"`
	OneECDSACPU Summary `json:"kubectlAcmeOneECDSACPU"`
	// Startup is `kubectl acme version`: exec, Go runtime and client
	// libraries' init, for scale.
	Startup Summary `json:"kubectlAcmeStartup"`
	// RSAKeygen is one RSA 2048 key, which every issuance here makes.
	RSAKeygen Summary `json:"rsa2048Keygen"`

	Batches []Batch `json:"kubectlAcmeBatches"`

	// API is the Kubernetes API requests of the one-at-a-time series.
	API APICost `json:"apiCostOne"`
	// ACME is CA requests per certificate, by client.
	ACME map[string]ACMECost `json:"acmeRequestsPerCert"`

	Status StatusResult `json:"statusAtScale"`

	// Failures counts failed issuances by series; failed runs are left
	// out of the timings (and retried for the request counts).
	Failures map[string]int `json:"failures"`

	Ratios  map[string]float64 `json:"ratios"`
	Targets []Target           `json:"targets"`
}

// ModeApply is how kubectl-acme issues a batch: one `kubectl acme apply
// -f` of N Certificates in one namespace.
const ModeApply = "apply -f"

// Batch is N certificates issued together, Runs rounds of the floor, lego
// and kubectl-acme interleaved, each at Concurrency.
type Batch struct {
	N int `json:"n"`
	// Mode is ModeApply.
	Mode        string `json:"mode"`
	Concurrency int    `json:"concurrency"`
	Runs        int    `json:"runs"`
	// Wall is kubectl-acme's median over the rounds, WallRuns all of them.
	Wall     float64 `json:"wallSeconds"`
	WallRuns Summary `json:"wallSecondsRuns"`
	PerCert  float64 `json:"perCertSeconds"`
	// Floor and Lego are their wall times for the same N at the same
	// concurrency, in the same rounds.
	Floor Summary `json:"floorWallSeconds"`
	Lego  Summary `json:"legoWallSeconds"`
	// RatioToFloor is Wall / Floor.Median (the target's measure);
	// LegoRatioToFloor the same for lego.
	RatioToFloor     float64 `json:"ratioToFloor"`
	LegoRatioToFloor float64 `json:"legoRatioToFloor"`
	// RatioToNxFloor is Wall / (N x the floor's one-certificate median).
	RatioToNxFloor float64 `json:"ratioToNxFloor"`
	Failures       int     `json:"failures"`
	FloorFailures  int     `json:"floorFailures"`
	LegoFailures   int     `json:"legoFailures"`
	// ClientCPU is the kubectl acme process's CPU seconds per certificate;
	// FloorCPU and LegoCPU theirs.
	ClientCPU float64            `json:"clientCPUPerCert"`
	FloorCPU  float64            `json:"floorCPUPerCert"`
	LegoCPU   float64            `json:"legoCPUPerCert"`
	Phases    map[string]Summary `json:"phases,omitempty"`
	API       APICost            `json:"apiCost"`
}

// ACMECost is a client's CA requests per certificate, account
// registration excluded.
type ACMECost struct {
	Certificates int                `json:"certificates"`
	PerCert      float64            `json:"perCert"`
	ByEndpoint   map[string]float64 `json:"byEndpointPerCert"`
}

// StatusResult is `kubectl acme status -A` over many certificates.
type StatusResult struct {
	Certificates int     `json:"certificates"`
	Namespaces   int     `json:"namespaces"`
	Rows         int     `json:"rows"`
	Wall         Summary `json:"wallSeconds"`
	PeakRSSMB    float64 `json:"peakRSSMB"`
	RSSMB        Summary `json:"rssMB"`
	// SeedSeconds is the setup: creating the Certificates through the API
	// (SeedCertificates), not part of the timing.
	SeedSeconds float64 `json:"seedSeconds"`
}

// Target is one of the goals.
type Target struct {
	Name     string `json:"name"`
	Goal     string `json:"goal"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
}

// Issue 15's targets.
const (
	TargetOneRatio      = 1.3 // kubectl-acme issue / floor, one certificate
	TargetBatchRatio    = 1.5 // kubectl-acme apply / floor, 20 and 100 certificates
	TargetSolverObjects = 3   // solver objects created for 100 certificates in one namespace
	TargetAPIPerCert    = 5   // Kubernetes API requests per certificate in that run
	TargetStatusSeconds = 2.0 // status -A over 50,000 certificates
	TargetStatusMB      = 300
)

// Evaluate fills Ratios and Targets from the measurements.
func (r *Results) Evaluate() {
	r.Ratios = map[string]float64{
		"oneToFloor":  ratio(r.One.Median, r.Floor.Median),
		"oneToLego":   ratio(r.One.Median, r.Lego.Median),
		"legoToFloor": ratio(r.Lego.Median, r.Floor.Median),
	}
	for _, b := range r.Batches {
		r.Ratios[fmt.Sprintf("apply%dToFloor", b.N)] = b.RatioToFloor
		r.Ratios[fmt.Sprintf("lego%dToFloor", b.N)] = b.LegoRatioToFloor
	}
	r.Targets = []Target{{
		Name:     "1 certificate",
		Goal:     fmt.Sprintf("issue / floor <= %.1f", TargetOneRatio),
		Measured: fmt.Sprintf("%.2f (%.2fs / %.2fs, medians of %d)", r.Ratios["oneToFloor"], r.One.Median, r.Floor.Median, r.One.N),
		Met:      r.One.N > 0 && r.Floor.N > 0 && r.Ratios["oneToFloor"] <= TargetOneRatio,
	}}
	for _, n := range []int{20, 100} {
		t := Target{Name: fmt.Sprintf("%d certificates", n), Goal: fmt.Sprintf("apply -f / floor <= %.1f", TargetBatchRatio), Measured: "not run"}
		if b := r.batch(n); b != nil {
			t.Measured = fmt.Sprintf("%.2f (%.1fs / %.1fs, medians of %d, concurrency %d%s)", b.RatioToFloor, b.Wall, b.Floor.Median, b.Runs, b.Concurrency, failures(b.Failures))
			t.Met = b.Failures == 0 && b.Floor.N > 0 && b.RatioToFloor <= TargetBatchRatio
		}
		r.Targets = append(r.Targets, t)
	}
	objects := Target{Name: "solver objects", Goal: fmt.Sprintf("100 certificates in one namespace: <= %d objects", TargetSolverObjects), Measured: "not run"}
	api := Target{Name: "Kubernetes API requests", Goal: fmt.Sprintf("<= %d per certificate in that run", TargetAPIPerCert), Measured: "not run"}
	if b := r.batch(100); b != nil && b.API.Certificates > 0 {
		objects.Measured = fmt.Sprintf("%.0f per run (%s)", b.API.SolverObjectsPerRun, perVerb(b.API.SolverObjects))
		objects.Met = b.API.SolverObjectsPerRun <= TargetSolverObjects
		api.Measured = fmt.Sprintf("%.1f per certificate (%s)", b.API.PerCert, perVerb(b.API.ByVerb))
		api.Met = b.API.PerCert <= TargetAPIPerCert
	}
	st := r.Status
	r.Targets = append(r.Targets, objects, api, Target{
		Name:     "status -A",
		Goal:     fmt.Sprintf("50,000 certificates: < %.0fs and < %d MB peak RSS", TargetStatusSeconds, TargetStatusMB),
		Measured: fmt.Sprintf("%.2fs median, %.0f MB peak, over %d certificates", st.Wall.Median, st.PeakRSSMB, st.Certificates),
		Met:      st.Wall.N > 0 && st.Certificates >= 50000 && st.Wall.Median < TargetStatusSeconds && st.PeakRSSMB < TargetStatusMB,
	})
}

// batch is the batch of n certificates, nil if none ran.
func (r *Results) batch(n int) *Batch {
	for i := range r.Batches {
		if r.Batches[i].N == n {
			return &r.Batches[i]
		}
	}
	return nil
}

// WriteTable prints the results for people, one table per section.
func (r *Results) WriteTable(w io.Writer) error {
	var err error
	section := func(header string, rows [][]string) {
		if err != nil {
			return
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, header)
		for _, row := range rows {
			fmt.Fprintln(tw, strings.Join(row, "\t"))
		}
		fmt.Fprintln(tw)
		err = tw.Flush()
	}
	sum := func(s Summary) []string {
		if s.N == 0 {
			return []string{"-", "-", "0"}
		}
		return []string{fmt.Sprintf("%.2fs", s.Median), fmt.Sprintf("%.2f-%.2f", s.P10, s.P90), fmt.Sprint(s.N)}
	}
	row := func(name string, s Summary, rest ...string) []string {
		return append(append([]string{name}, sum(s)...), rest...)
	}

	// What users feel, against the floor in the same run, next to issue
	// 15's targets.
	targetOf := func(name string) string {
		for _, t := range r.Targets {
			if t.Name == name {
				met := "FAIL"
				if t.Met {
					met = "pass"
				}
				return met + " (" + t.Goal + ")"
			}
		}
		return "-"
	}
	objects := func(a APICost) string {
		if a.Certificates == 0 {
			return "-"
		}
		return fmt.Sprintf("%.0f (%s)", a.SolverObjectsPerRun, perVerb(a.SolverObjects))
	}
	summary := [][]string{{"1 certificate, issue", fmt.Sprintf("%.2fs", r.One.Median), fmt.Sprintf("%.2fs", r.Floor.Median),
		ratioString(r.One.Median, r.Floor.Median), targetOf("1 certificate"), fmt.Sprintf("%.2fs", r.Lego.Median),
		ratioString(r.Lego.Median, r.Floor.Median), objects(r.API), fmt.Sprintf("%.1f", r.API.PerCert)}}
	for _, b := range r.Batches {
		summary = append(summary, []string{fmt.Sprintf("%d certificates, apply -f --concurrency %d", b.N, b.Concurrency),
			fmt.Sprintf("%.2fs", b.Wall), fmt.Sprintf("%.2fs", b.Floor.Median), ratioString(b.Wall, b.Floor.Median),
			targetOf(fmt.Sprintf("%d certificates", b.N)), fmt.Sprintf("%.2fs", b.Lego.Median), ratioString(b.Lego.Median, b.Floor.Median),
			objects(b.API), fmt.Sprintf("%.1f", b.API.PerCert)})
	}
	section("WORKLOAD\tKUBECTL-ACME\tFLOOR\tRATIO\tTARGET\tLEGO\tLEGO / FLOOR\tSOLVER OBJECTS / RUN\tAPI REQUESTS / CERT", summary)

	one := [][]string{
		row("floor: x/crypto/acme, in-process responder", r.Floor, "1.00", fmt.Sprintf("CPU %.2fs; %d of %d runs waited on a Retry-After", r.FloorCPU, r.FloorWaits, r.Floor.N)),
		row("  floor runs without a Retry-After wait", r.FloorNoWait, ratioString(r.FloorNoWait.Median, r.Floor.Median), ""),
	}
	for _, name := range FloorPhaseNames {
		if s, ok := r.FloorPhases[name]; ok {
			one = append(one, row("  "+name, s, "", ""))
		}
	}
	one = append(one,
		row("lego "+strings.TrimPrefix(r.LegoVersion, "github.com/go-acme/lego/v5 ")+", in-process responder", r.Lego, fmt.Sprintf("%.2f", r.Ratios["legoToFloor"]), fmt.Sprintf("CPU %.2fs", r.LegoCPU)),
		row("kubectl acme issue, one name (whole process)", r.One, fmt.Sprintf("%.2f", r.Ratios["oneToFloor"]), fmt.Sprintf("%.2f x lego; CPU %.2fs; %d of %d runs waited; peak RSS %.0f MB", r.Ratios["oneToLego"], r.OneCPU.Median, r.OneWaits, r.One.N, r.OneRSSMB)),
	)
	for _, name := range PhaseNames {
		if s, ok := r.OnePhases[name]; ok {
			one = append(one, row("  "+name, s, "", ""))
		}
	}
	one = append(one,
		row("kubectl acme issue --key-algorithm ecdsa", r.OneECDSA, fmt.Sprintf("%.2f", ratio(r.OneECDSA.Median, r.Floor.Median)), fmt.Sprintf("CPU %.2fs", r.OneECDSACPU.Median)),
		row("kubectl acme version (process start)", r.Startup, "", ""),
		row("RSA 2048 key generation", r.RSAKeygen, "", ""),
	)
	section("ONE CERTIFICATE\tMEDIAN\tP10-P90\tRUNS\tX FLOOR\tNOTE", one)

	var batches [][]string
	for _, b := range r.Batches {
		pod := "-"
		if s, ok := b.Phases[PhasePodStart]; ok {
			pod = fmt.Sprintf("%.2fs / %.2fs", s.Median, s.Max)
		}
		walls := func(s Summary) string {
			if s.N == 0 {
				return "-"
			}
			return fmt.Sprintf("%.1f-%.1fs", s.Min, s.Max)
		}
		batches = append(batches, []string{fmt.Sprint(b.N), fmt.Sprint(b.Runs), walls(b.WallRuns), walls(b.Floor), walls(b.Lego), pod,
			fmt.Sprintf("%.3fs / %.3fs / %.3fs", b.ClientCPU, b.FloorCPU, b.LegoCPU),
			fmt.Sprintf("%s, concurrency %d%s%s%s", b.Mode, b.Concurrency, failures(b.Failures), named(" floor", b.FloorFailures), named(" lego", b.LegoFailures))})
	}
	section("BATCH\tROUNDS\tKUBECTL-ACME MIN-MAX\tFLOOR MIN-MAX\tLEGO MIN-MAX\tPOD START MEDIAN / MAX\tCLIENT CPU / CERT (KUBECTL-ACME / FLOOR / LEGO)\tHOW", batches)

	api := [][]string{{"one at a time", fmt.Sprintf("%.1f", r.API.PerCert), perVerb(r.API.ByVerb), objects(r.API)}}
	for _, b := range r.Batches {
		api = append(api, []string{fmt.Sprintf("%d by %s", b.N, b.Mode), fmt.Sprintf("%.1f", b.API.PerCert), perVerb(b.API.ByVerb), objects(b.API)})
	}
	section("KUBERNETES API\tPER CERT\tBY VERB\tSOLVER OBJECTS CREATED / RUN", api)
	section("KUBERNETES API, ONE AT A TIME\tPER CERT", perResourceRows(r.API.ByVerbResource))

	var acme [][]string
	for _, name := range []string{"floor", "lego", "kubectl-acme", "kubectl-acme apply"} {
		if c, ok := r.ACME[name]; ok {
			acme = append(acme, []string{name, fmt.Sprintf("%.1f", c.PerCert), perVerb(c.ByEndpoint)})
		}
	}
	section("ACME REQUESTS\tPER CERT\tBY ENDPOINT", acme)

	var cpu [][]string
	for _, name := range sortedSeries(r.CPU) {
		c := r.CPU[name]
		cpu = append(cpu, []string{name, fmt.Sprintf("%.3f", c.Total()), perProgram(c)})
	}
	cpu = append(cpu, []string{"(environment idle, per second)", fmt.Sprintf("%.3f", CPUCost(r.IdleCPU).Total()), perProgram(r.IdleCPU)})
	section("CPU SECONDS / CERT, NET OF IDLE\tTOTAL\tBY PROGRAM", cpu)

	st := r.Status
	section("STATUS -A\tMEDIAN\tP10-P90\tRUNS\tPEAK RSS\tROWS\tSETUP", [][]string{
		row(fmt.Sprintf("%d certificates in %d namespaces", st.Certificates, st.Namespaces), st.Wall, fmt.Sprintf("%.0f MB", st.PeakRSSMB), fmt.Sprint(st.Rows),
			fmt.Sprintf("%.0fs to create them", st.SeedSeconds)),
	})

	var targets [][]string
	for _, t := range r.Targets {
		met := "FAIL"
		if t.Met {
			met = "pass"
		}
		targets = append(targets, []string{t.Name, t.Goal, t.Measured, met})
	}
	section("TARGET (ISSUE 15)\tGOAL\tMEASURED\tRESULT", targets)
	if err != nil {
		return err
	}
	for _, k := range slices.Sorted(maps.Keys(r.Failures)) {
		if _, err := fmt.Fprintf(w, "FAILED: %d issuance(s) in %s (left out of the timings)\n", r.Failures[k], k); err != nil {
			return err
		}
	}
	for _, n := range r.Notes {
		if _, err := fmt.Fprintln(w, "note:", n); err != nil {
			return err
		}
	}
	return nil
}

func ratioString(a, b float64) string {
	if a == 0 || b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", a/b)
}

func perResourceRows(m map[string]float64) [][]string {
	var rows [][]string
	for _, k := range sortedKeys(m) {
		rows = append(rows, []string{"  " + k, trimFloat(m[k])})
	}
	return rows
}

func trimFloat(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// sortedSeries orders the CPU table: the floor, lego, then kubectl-acme's.
func sortedSeries(m map[string]CPUCost) []string {
	var out []string
	for _, k := range []string{"floor", "lego", "kubectl-acme one"} {
		if _, ok := m[k]; ok {
			out = append(out, k)
		}
	}
	var rest []string
	for k := range m {
		if !slices.Contains(out, k) {
			rest = append(rest, k)
		}
	}
	slices.Sort(rest)
	return append(out, rest...)
}

func perProgram(c CPUCost) string {
	var parts []string
	for _, k := range sortedKeys(c) {
		if c[k] >= 0.0005 {
			parts = append(parts, fmt.Sprintf("%s %.3f", k, c[k]))
		}
	}
	return strings.Join(parts, ", ")
}

func named(what string, n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(",%s %d FAILED", what, n)
}

func failures(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(", %d FAILED", n)
}

// perVerb renders a per-certificate breakdown, largest first.
func perVerb(m map[string]float64) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, k+" "+trimFloat(m[k]))
	}
	return strings.Join(parts, ", ")
}
