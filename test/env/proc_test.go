package testenv

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestStopStopsWholeGroup(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, logsDir), 0o755); err != nil {
		t.Fatal(err)
	}
	// The shell's background child stands for simnode's pods: it must go
	// with its group. TERM is ignored, so the SIGKILL fallback runs too.
	p, err := startProc(procOptions{
		dir:  dir,
		name: "group",
		bin:  "/bin/sh",
		args: []string{"-c", "trap '' TERM; sleep 60 & sleep 60"},
	})
	if err != nil {
		t.Fatal(err)
	}
	e := &Env{Dir: dir}
	if err := e.addProc(p); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { m, _ := groupMembers(p.pid); return len(m) == 3 })

	// Stop as `testenv down` does: from the pids file, not as the parent.
	procs, err := readPids(dir, filepath.Join(dir, pidsFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := (&Env{Dir: dir, procs: procs, stopGrace: 100 * time.Millisecond}).Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if m, _ := groupMembers(p.pid); len(m) != 0 {
		t.Errorf("after Stop, group %d still has %v", p.pid, m)
	}
	if err := StopDir(dir); err != nil {
		t.Errorf("second StopDir: %v", err)
	}
	if err := e.Stop(); err != nil {
		t.Errorf("Stop after StopDir: %v", err)
	}
}

func TestStopIgnoresReusedPid(t *testing.T) {
	// A pids file naming our own process with another start time: the pid
	// was reused, and Stop must not signal it.
	st, err := readStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{name: "stale", pid: os.Getpid(), started: st.started + 1}
	if p.running() {
		t.Error("running() = true for a reused pid")
	}
	if err := p.stop(time.Second); err != nil {
		t.Error(err)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/tmp/te":    `'/tmp/te'`,
		"it's":       `'it'\''s'`,
		"$HOME x":    `'$HOME x'`,
		"":           `''`,
		`a"b\c`:      `'a"b\c'`,
		"semi;colon": `'semi;colon'`,
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
