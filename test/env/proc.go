package testenv

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one program of the environment. Each runs as the leader of its own
// process group, so that `testenv up` can exit and leave it running, Ctrl-C in
// a terminal does not reach it, and Stop can signal it together with anything
// it started itself (simnode's pods).
type proc struct {
	name    string
	pid     int
	started uint64 // start time from /proc/PID/stat; tells our process from a reused pid
	logFile string
	// done is closed once the process is reaped; nil for a proc read back by
	// Load, which is not our child.
	done chan struct{}
}

type procOptions struct {
	dir  string // environment directory; logs go to dir/logs
	name string
	bin  string
	args []string
	env  []string
	// spawner, when set, forks the process with Pdeathsig set.
	spawner *spawner
	// extraFiles are inherited as descriptors 3, 4, ...
	extraFiles []*os.File
}

func startProc(o procOptions) (*proc, error) {
	logFile := filepath.Join(o.dir, "logs", o.name+".log")
	// Append, so a retried start keeps the log of the failed attempt.
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log of %s: %w", o.name, err)
	}
	defer f.Close() // the child holds its own descriptor
	fmt.Fprintf(f, "=== %s %s %s\n", time.Now().Format(time.RFC3339), o.bin, strings.Join(o.args, " "))

	cmd := exec.Command(o.bin, o.args...)
	cmd.Dir = o.dir
	cmd.Env = o.env
	cmd.Stdout = f
	cmd.Stderr = f
	cmd.ExtraFiles = o.extraFiles
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := cmd.Start
	if o.spawner != nil {
		// SIGTERM rather than SIGKILL so simnode still stops its pods.
		cmd.SysProcAttr.Pdeathsig = syscall.SIGTERM
		start = func() error { return o.spawner.do(cmd.Start) }
	}
	if err := start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", o.name, err)
	}
	p := &proc{name: o.name, pid: cmd.Process.Pid, logFile: logFile, done: make(chan struct{})}
	if st, err := readStat(p.pid); err == nil {
		p.started = st.started
	}
	go func() {
		_ = cmd.Wait() // the exit status is in the log; we only need the reaping
		close(p.done)
	}()
	return p, nil
}

// spawner forks processes from one OS thread that outlives them. The kernel
// sends Pdeathsig when the forking thread exits, not the process, and the Go
// runtime does end threads (one whose locked goroutine returns).
type spawner struct {
	reqs chan func()
	once sync.Once
}

func newSpawner() *spawner {
	s := &spawner{reqs: make(chan func())}
	go func() {
		runtime.LockOSThread()
		// Unlocked before returning, so the thread goes back to the
		// runtime instead of exiting.
		defer runtime.UnlockOSThread()
		for f := range s.reqs {
			f()
		}
	}()
	return s
}

func (s *spawner) do(f func() error) error {
	errc := make(chan error, 1)
	s.reqs <- func() { errc <- f() }
	return <-errc
}

// close ends the thread's goroutine; call it only once the processes it
// forked have exited.
func (s *spawner) close() {
	s.once.Do(func() { close(s.reqs) })
}

// exited reports whether our child has already exited.
func (p *proc) exited() bool {
	if p.done == nil {
		return !p.running()
	}
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// running reports whether any live process is left in p's process group.
func (p *proc) running() bool {
	if !p.ours() {
		return false
	}
	members, err := groupMembers(p.pid)
	return err != nil || len(members) > 0
}

// ours reports whether the pid still names our process group: either our
// leader is alive (same start time), or it is gone and the kernel does not
// reuse a pid while a process group of that id exists.
func (p *proc) ours() bool {
	st, err := readStat(p.pid)
	if err != nil {
		return true
	}
	return p.started == 0 || st.started == p.started || st.state == 'Z'
}

func (p *proc) signal(sig syscall.Signal) error {
	if !p.ours() {
		return nil
	}
	if err := syscall.Kill(-p.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %s (pgid %d): %w", p.name, p.pid, err)
	}
	return nil
}

// stop sends SIGTERM to the group, and SIGKILL to whatever is left after grace.
func (p *proc) stop(grace time.Duration) error {
	if !p.running() {
		return nil
	}
	if err := p.signal(syscall.SIGTERM); err != nil {
		return err
	}
	if p.waitGone(grace) {
		return nil
	}
	if err := p.signal(syscall.SIGKILL); err != nil {
		return err
	}
	if p.waitGone(5 * time.Second) {
		return nil
	}
	members, _ := groupMembers(p.pid)
	return fmt.Errorf("%s (pgid %d) still running after SIGKILL: pids %v", p.name, p.pid, members)
}

// reaped reports whether the leader is gone from the process table. Once
// `testenv up` has exited, init reaps the leaders; some inits do it lazily.
func (p *proc) reaped() bool {
	if p.done != nil {
		select {
		case <-p.done:
			return true
		default:
			return false
		}
	}
	st, err := readStat(p.pid)
	return err != nil || st.started != p.started
}

func (p *proc) waitGone(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if !p.running() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// logTail returns the last lines of p's log, for error messages.
func (p *proc) logTail(lines int) string {
	data, err := os.ReadFile(p.logFile)
	if err != nil {
		return ""
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

type procStat struct {
	state   byte
	pgrp    int
	started uint64
}

// readStat parses /proc/PID/stat. The command name may contain spaces and
// parentheses, so fields are counted from the last ')'.
func readStat(pid int) (procStat, error) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return procStat{}, err
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("malformed stat of pid %d", pid)
	}
	// Fields after the name: state(3) ppid(4) pgrp(5) ... starttime(22).
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 20 {
		return procStat{}, fmt.Errorf("malformed stat of pid %d", pid)
	}
	pgrp, err := strconv.Atoi(fields[2])
	if err != nil {
		return procStat{}, fmt.Errorf("parse pgrp of pid %d: %w", pid, err)
	}
	started, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("parse start time of pid %d: %w", pid, err)
	}
	return procStat{state: fields[0][0], pgrp: pgrp, started: started}, nil
}

// groupMembers lists the live (non-zombie) processes of process group pgid.
// Zombies do not count: once the environment's starter has exited, nobody
// may reap them, and they hold no ports or files.
func groupMembers(pgid int) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readStat(pid)
		if err != nil || st.pgrp != pgid || st.state == 'Z' {
			continue
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// writePids records the processes so `testenv down` from another process can
// stop them: one "NAME PID STARTTIME" line each, in start order.
func writePids(file string, procs []*proc) error {
	var b strings.Builder
	for _, p := range procs {
		fmt.Fprintf(&b, "%s %d %d\n", p.name, p.pid, p.started)
	}
	return writeFileAtomic(file, []byte(b.String()), 0o644)
}

func readPids(dir, file string) ([]*proc, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var procs []*proc
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var p proc
		if _, err := fmt.Sscanf(sc.Text(), "%s %d %d", &p.name, &p.pid, &p.started); err != nil {
			return nil, fmt.Errorf("parse %s: %w", file, err)
		}
		p.logFile = filepath.Join(dir, "logs", p.name+".log")
		procs = append(procs, &p)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	return procs, nil
}

// writeFileAtomic keeps readers (Load in another process) from seeing a
// half-written file.
func writeFileAtomic(file string, data []byte, perm os.FileMode) error {
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, data, perm); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, file); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}
