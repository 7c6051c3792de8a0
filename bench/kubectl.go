package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// kubectl runs bin/kubectl (and through it the kubectl-acme plugin in
// bin/) against the environment.
type kubectl struct {
	bin string   // path of kubectl
	env []string // KUBECONFIG=..., PATH with bin/ first
}

// run runs kubectl and returns its stdout; stderr goes into the error.
func (k *kubectl) run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, k.bin, args...)
	cmd.Env = k.env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errOut.String()))
	}
	return out.String(), nil
}

// timedRun is one process: its wall time, peak RSS and stderr lines.
type timedRun struct {
	Start, End time.Time
	Wall       time.Duration
	MaxRSSKB   int64
	CPU        time.Duration // user + system
	Lines      []Line
	Stdout     []byte
}

// timed runs kubectl, stamping each stderr line as it arrives. kubectl
// execs the plugin in its own process (syscall.Exec), so the wall time
// and the peak RSS are those of the whole `kubectl acme ...` command.
func (k *kubectl) timed(ctx context.Context, args ...string) (*timedRun, error) {
	cmd := exec.CommandContext(ctx, k.bin, args...)
	cmd.Env = k.env
	var out bytes.Buffer
	cmd.Stdout = &out
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	r := &timedRun{Start: time.Now()}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(stderr)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		r.Lines = append(r.Lines, Line{At: time.Since(r.Start), Text: sc.Text()})
	}
	_, _ = io.Copy(io.Discard, stderr)
	err = cmd.Wait()
	r.End = time.Now()
	r.Wall = r.End.Sub(r.Start)
	r.Stdout = out.Bytes()
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.MaxRSSKB = ru.Maxrss // kilobytes on Linux
	}
	r.CPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	if err != nil {
		var msg []string
		for _, l := range r.Lines {
			msg = append(msg, l.Text)
		}
		return r, fmt.Errorf("kubectl %s: %w\n%s", strings.Join(args, " "), err, tail(msg, 15))
	}
	return r, nil
}

func tail(lines []string, n int) string {
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// issueArgs is `kubectl acme issue` for one name, as the issue's typical
// use: progress on (stderr is a pipe, so plain lines), the self-check sent
// to the simulated ingress, Pebble's default profile.
func issueArgs(ns, issuer, name, domain, connectTo string) []string {
	return []string{"acme", "issue", name, "-n", ns, "--issuer", issuer, "--domain", domain, "--connect-to", connectTo, "--profile", "default"}
}
