// Command bench measures kubectl-acme's speed and cost against the floor
// and against lego on a fresh local environment, prints a table and writes
// the results as JSON. `make bench` runs it; see bench/README.md.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/kubectl-acme/kubectl-acme/bench"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	var cfg bench.Config
	var out, batches string
	flag.StringVar(&out, "out", "bench/results.json", "write the results here as JSON (empty: do not write)")
	flag.StringVar(&cfg.BinDir, "bin-dir", "bin", "directory with kubectl, kubectl-acme, testenv and the environment's programs")
	flag.StringVar(&cfg.Repo, "repo", ".", "repository root (bench/lego is built from it)")
	flag.StringVar(&cfg.Dir, "dir", "", "environment directory, kept for its logs (default: a temporary one, removed)")
	flag.IntVar(&cfg.Runs, "runs", 12, "timed certificates for the floor, lego and kubectl-acme one at a time")
	flag.IntVar(&cfg.Warmup, "warmup", 1, "untimed certificates before each timed series")
	flag.StringVar(&batches, "batches", "20,100", "batch sizes, comma-separated")
	flag.IntVar(&cfg.BatchRuns, "batch-runs", 2, "rounds of floor, lego and kubectl-acme apply per batch size")
	flag.IntVar(&cfg.Concurrency, "concurrency", 20, "apply's --concurrency in batches, and the floor's and lego's orders in flight")
	flag.IntVar(&cfg.StatusNamespaces, "status-namespaces", 100, "namespaces for status -A")
	flag.IntVar(&cfg.StatusPerNamespace, "status-per-namespace", 500, "certificates per namespace for status -A")
	flag.IntVar(&cfg.StatusRuns, "status-runs", 5, "timed status -A runs")
	flag.IntVar(&cfg.CountCerts, "count-certs", 3, "certificates per client through the counting ACME proxy")
	flag.Parse()
	for _, s := range strings.Split(batches, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return fmt.Errorf("-batches: bad size %q", s)
		}
		cfg.Batches = append(cfg.Batches, n)
	}
	if cfg.Batches == nil {
		cfg.Batches = []int{}
	}
	for _, p := range []*string{&cfg.BinDir, &cfg.Repo} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		*p = abs
	}
	cfg.Log = os.Stderr

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	res.Commit = describe(cfg.Repo)
	if err := res.WriteTable(os.Stdout); err != nil {
		return err
	}
	if out == "" {
		return nil
	}
	data, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(out, append(data, '\n'), 0o644)
}

// describe names the measured tree; uncommitted changes show as -dirty.
func describe(repo string) string {
	out, err := exec.Command("git", "-C", repo, "describe", "--always", "--dirty").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
