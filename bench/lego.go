package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// buildLego builds the peer in bench/lego, its own module, into dir.
func buildLego(ctx context.Context, repo, dir string) (string, error) {
	bin := filepath.Join(dir, "lego-peer")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	cmd.Dir = filepath.Join(repo, "bench", "lego")
	cmd.Env = append(os.Environ(), "GOFLAGS="+strings.TrimSpace(os.Getenv("GOFLAGS")+" -mod=mod"))
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build bench/lego: %w\n%s", err, out)
	}
	return bin, nil
}

// legoResult is what bench/lego prints.
type legoResult struct {
	Lego         string    `json:"lego"`
	RegisterSecs float64   `json:"registerSeconds"`
	PerCertSecs  []float64 `json:"perCertSeconds"`
	CPUSecs      float64   `json:"cpuSeconds"`
	Failures     int       `json:"failures"`
}

// legoRun says how to run the peer.
type legoRun struct {
	bin, dir, caFile, prefix string
	port, n, warmup          int
	// registered, if set, runs once the account exists and before the
	// first certificate.
	registered func()
}

func (r legoRun) run(ctx context.Context) (*legoResult, error) {
	cmd := exec.CommandContext(ctx, r.bin, "-dir", r.dir, "-port", strconv.Itoa(r.port),
		"-n", strconv.Itoa(r.n), "-warmup", strconv.Itoa(r.warmup), "-prefix", r.prefix, "-wait")
	cmd.Env = append(os.Environ(), "LEGO_CA_CERTIFICATES="+r.caFile)
	var errOut strings.Builder
	cmd.Stderr = &errOut
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	out := bufio.NewReader(stdout)
	line, err := out.ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "registered" {
		_ = cmd.Wait()
		return nil, fmt.Errorf("lego peer: %q, %v: %s", line, err, errOut.String())
	}
	if r.registered != nil {
		r.registered()
	}
	if _, err := stdin.Write([]byte("\n")); err != nil {
		return nil, err
	}
	var res legoResult
	decErr := json.NewDecoder(out).Decode(&res)
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("lego peer: %w: %s", err, errOut.String())
	}
	if decErr != nil {
		return nil, fmt.Errorf("lego peer output: %w", decErr)
	}
	return &res, nil
}
