package bench

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on Linux.
const clockTicks = 100

// procCPU is the CPU time (user + system) of a process and of its reaped
// children (simnode's pods), in seconds.
func procCPU(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name is in parentheses and may hold spaces.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime, stime, cutime, cstime are 14-17.
	if len(f) < 15 {
		return 0, fmt.Errorf("/proc/%d/stat: too short", pid)
	}
	total := 0.0
	for _, v := range f[11:15] {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		total += n
	}
	return total / clockTicks, nil
}

// envCPU reads the CPU time of each of the environment's programs, from
// the "pids" file test/env keeps in its directory (NAME PID START lines).
func envCPU(dir string) (map[string]float64, error) {
	f, err := os.Open(filepath.Join(dir, "pids"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var name string
		var pid int
		if _, err := fmt.Sscanf(sc.Text(), "%s %d", &name, &pid); err != nil {
			return nil, fmt.Errorf("parse pids: %w", err)
		}
		cpu, err := procCPU(pid)
		if err != nil {
			return nil, err
		}
		out[name] += cpu
	}
	return out, sc.Err()
}

// CPUCost is CPU seconds per certificate by program.
type CPUCost map[string]float64

// Total is the sum over programs.
func (c CPUCost) Total() float64 {
	t := 0.0
	for _, v := range c {
		t += v
	}
	return t
}

// cpuMeter measures the environment's CPU over a series.
type cpuMeter struct {
	dir    string
	start  time.Time
	before map[string]float64
	// idle is each program's CPU seconds per second with nothing to do
	// (informers, leases, controllers), subtracted from what a series used.
	idle map[string]float64
}

func startCPU(dir string, idle map[string]float64) *cpuMeter {
	m := &cpuMeter{dir: dir, idle: idle, start: time.Now()}
	m.before, _ = envCPU(dir)
	return m
}

// rates is CPU seconds per second since start, by program: the idle rates
// when nothing ran.
func (m *cpuMeter) rates() map[string]float64 {
	after, err := envCPU(m.dir)
	if err != nil || m.before == nil {
		return nil
	}
	secs := time.Since(m.start).Seconds()
	out := map[string]float64{}
	for k, v := range after {
		out[k] = (v - m.before[k]) / secs
	}
	return out
}

// per returns the environment's CPU since start, less its idle use over
// the same time, divided by n; plus the client's own CPU divided by
// clientN, as "client".
func (m *cpuMeter) per(n int, client float64, clientN int) CPUCost {
	c := CPUCost{}
	if after, err := envCPU(m.dir); err == nil && m.before != nil {
		secs := time.Since(m.start).Seconds()
		for k, v := range after {
			c[k] = max(0, v-m.before[k]-m.idle[k]*secs) / float64(n)
		}
	}
	c["client"] = client / float64(clientN)
	return c
}

// cpuSeries adds up the environment's CPU over the windows of one series
// when series are interleaved: begin and end bracket each of its runs.
type cpuSeries struct {
	dir  string
	idle map[string]float64
	sum  map[string]float64
	cur  map[string]float64
	at   time.Time
}

func newCPUSeries(dir string, idle map[string]float64) *cpuSeries {
	return &cpuSeries{dir: dir, idle: idle, sum: map[string]float64{}}
}

func (s *cpuSeries) begin() {
	s.cur, _ = envCPU(s.dir)
	s.at = time.Now()
}

func (s *cpuSeries) end() {
	after, err := envCPU(s.dir)
	if err != nil || s.cur == nil {
		return
	}
	secs := time.Since(s.at).Seconds()
	for k, v := range after {
		s.sum[k] += max(0, v-s.cur[k]-s.idle[k]*secs)
	}
	s.cur = nil
}

// per is the environment's CPU over the windows divided by n, plus the
// client's own CPU divided by clientN as "client".
func (s *cpuSeries) per(n int, client float64, clientN int) CPUCost {
	c := CPUCost{}
	for k, v := range s.sum {
		c[k] = v / float64(max(1, n))
	}
	c["client"] = client / float64(max(1, clientN))
	return c
}
