package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
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

// legoResult is what bench/lego prints for one command.
type legoResult struct {
	Lego        string    `json:"lego"`
	PerCertSecs []float64 `json:"perCertSeconds"`
	WallSecs    float64   `json:"wallSeconds"`
	CPUSecs     float64   `json:"cpuSeconds"`
	Failures    int       `json:"failures"`
}

// legoPeer is a running bench/lego: registered with the CA, answering
// http-01 on its own address, obtaining certificates on command.
type legoPeer struct {
	// addr is where it answers http-01 (127.0.0.1:PORT).
	addr   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *bufio.Reader
	errOut *strings.Builder
}

// startLego starts the peer against the directory dir (trusting caFile)
// and returns once its account is registered.
func startLego(ctx context.Context, bin, dir, caFile string) (*legoPeer, error) {
	cmd := exec.CommandContext(ctx, bin, "-dir", dir)
	cmd.Env = append(os.Environ(), "LEGO_CA_CERTIFICATES="+caFile)
	p := &legoPeer{cmd: cmd, errOut: &strings.Builder{}}
	cmd.Stderr = p.errOut
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p.out = bufio.NewReader(stdout)
	line, err := p.out.ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "registered ")
	if err != nil || !ok {
		p.stdin.Close()
		_ = cmd.Wait()
		return nil, fmt.Errorf("lego peer: %q, %v: %s", line, err, p.errOut.String())
	}
	p.addr = addr
	return p, nil
}

// obtain has the peer get n certificates PREFIX-I, conc at a time.
func (p *legoPeer) obtain(n, conc int, prefix string) (*legoResult, error) {
	if _, err := fmt.Fprintf(p.stdin, "%d %d %s\n", n, conc, prefix); err != nil {
		return nil, fmt.Errorf("lego peer: %w: %s", err, p.errOut.String())
	}
	line, err := p.out.ReadBytes('\n')
	if err != nil {
		return nil, fmt.Errorf("lego peer: %w: %s", err, p.errOut.String())
	}
	var res legoResult
	if err := json.Unmarshal(line, &res); err != nil {
		return nil, fmt.Errorf("lego peer output: %w", err)
	}
	return &res, nil
}

// close ends the peer: stdin's end is its signal to exit.
func (p *legoPeer) close() error {
	p.stdin.Close()
	if err := p.cmd.Wait(); err != nil {
		return fmt.Errorf("lego peer: %w: %s", err, p.errOut.String())
	}
	return nil
}
