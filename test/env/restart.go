package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// apiServerStopGrace bounds kube-apiserver's graceful shutdown on SIGTERM
// in RestartAPIServer; then SIGKILL. It stops listening at once on
// SIGTERM, but drains open connections (watches) for about ten seconds
// before it exits; a restart test needs the port closed and the process
// gone, not the drain.
const apiServerStopGrace = 2 * time.Second

// RestartAPIServer stops kube-apiserver as a real restart does (SIGTERM,
// SIGKILL after a bound), keeps it down for down, and starts it again with
// the same program, flags and environment, so it listens on the same port
// with the same certificates and tokens; etcd keeps the cluster's state. It
// returns once /readyz answers. The other programs (controller manager,
// simnode) reconnect by themselves, as they would in a real cluster.
//
// It works in an environment started by Start or attached by Load: the
// command line comes from /proc, and the pids file is updated for Stop and
// `testenv down`.
func (e *Env) RestartAPIServer(ctx context.Context, down time.Duration) error {
	old := e.findProc("kube-apiserver")
	if old == nil || !old.running() {
		return errors.New("testenv: restart kube-apiserver: it is not running")
	}
	argv, environ, err := commandLine(old.pid)
	if err != nil {
		return fmt.Errorf("testenv: restart kube-apiserver: %w", err)
	}
	begin := time.Now()
	if err := old.stop(apiServerStopGrace); err != nil {
		return fmt.Errorf("testenv: stop kube-apiserver: %w", err)
	}
	how := "SIGTERM"
	if time.Since(begin) >= apiServerStopGrace {
		how = "SIGKILL after SIGTERM"
	}
	e.logf("kube-apiserver stopped by %s in %s", how, time.Since(begin).Round(10*time.Millisecond))
	select {
	case <-ctx.Done():
		return fmt.Errorf("testenv: restart kube-apiserver: %w", ctx.Err())
	case <-time.After(down):
	}
	client, err := e.Client()
	if err != nil {
		return err
	}
	ready := func(ctx context.Context) error {
		_, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err
	}
	begin = time.Now()
	p, err := startProc(procOptions{dir: e.Dir, name: old.name, bin: argv[0], args: argv[1:], env: environ, spawner: e.spawner})
	if err != nil {
		return fmt.Errorf("testenv: %w", err)
	}
	if err := e.replaceProc(old, p); err != nil {
		return errors.Join(err, p.stop(time.Second))
	}
	if err := waitReady(ctx, p, 90*time.Second, ready); err != nil {
		return fmt.Errorf("testenv: restart kube-apiserver: %w", err)
	}
	e.logf("kube-apiserver ready again in %s (pid %d)", time.Since(begin).Round(10*time.Millisecond), p.pid)
	return nil
}

func (e *Env) findProc(name string) *proc {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range e.procs {
		if p.name == name {
			return p
		}
	}
	return nil
}

// replaceProc puts p in old's place, keeping the start order.
func (e *Env) replaceProc(old, p *proc) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, q := range e.procs {
		if q == old {
			e.procs[i] = p
		}
	}
	return writePids(filepath.Join(e.Dir, pidsFile), e.procs)
}

// commandLine reads a running process's argv and environment.
func commandLine(pid int) (argv, environ []string, err error) {
	dir := filepath.Join("/proc", strconv.Itoa(pid))
	split := func(b []byte) []string {
		var out []string
		for _, f := range bytes.Split(bytes.TrimSuffix(b, []byte{0}), []byte{0}) {
			out = append(out, string(f))
		}
		return out
	}
	cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline"))
	if err != nil {
		return nil, nil, err
	}
	env, err := os.ReadFile(filepath.Join(dir, "environ"))
	if err != nil {
		return nil, nil, err
	}
	argv = split(cmdline)
	if len(argv) == 0 || argv[0] == "" {
		return nil, nil, fmt.Errorf("pid %d: empty command line", pid)
	}
	// argv[0] is what was exec'd: an absolute path (launch passes one).
	if !filepath.IsAbs(argv[0]) {
		if argv[0], err = os.Readlink(filepath.Join(dir, "exe")); err != nil {
			return nil, nil, err
		}
	}
	if len(env) == 0 {
		return argv, nil, nil
	}
	return argv, split(env), nil
}
