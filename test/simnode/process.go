package simnode

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// procSpec is a resolved container process.
type procSpec struct {
	path string
	argv []string
	env  []string
	dir  string
	id   identity
	out  io.Writer
}

// runtimeEnv merges image env, runtime-set variables and the container's
// env into the process environment, container values winning.
func runtimeEnv(img imageConfig, hostname string, id identity, env map[string]string, order []string) []string {
	merged := map[string]string{}
	var keys []string
	add := func(k, v string) {
		if _, ok := merged[k]; !ok {
			keys = append(keys, k)
		}
		merged[k] = v
	}
	for _, kv := range img.Env {
		k, v, _ := strings.Cut(kv, "=")
		add(k, v)
	}
	add("HOSTNAME", hostname)
	for _, k := range order {
		add(k, env[k])
	}
	if _, ok := merged["HOME"]; !ok {
		home := "/"
		for _, u := range busyboxUsers() {
			if u.uid == id.uid {
				home = u.home
			}
		}
		add("HOME", home)
	}
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k+"="+merged[k])
	}
	return out
}

// start forks spec's process inside the sandbox: chrooted to its root, in
// its network namespace, in a new PID namespace (so, as in a container, it
// is PID 1 and ignores SIGTERM unless it handles it), with the container's
// user and groups. Pdeathsig kills it if simnode dies.
func (s *nsSwitcher) start(root string, ns *netNS, spec procSpec) (*exec.Cmd, error) {
	dir := spec.dir
	if dir == "" {
		dir = "/"
	}
	if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
		return nil, fmt.Errorf("create working dir %s: %w", dir, err)
	}
	cmd := &exec.Cmd{
		Path:   spec.path,
		Args:   spec.argv,
		Env:    spec.env,
		Dir:    dir,
		Stdout: spec.out,
		Stderr: spec.out,
		SysProcAttr: &syscall.SysProcAttr{
			Chroot:     root,
			Cloneflags: syscall.CLONE_NEWPID | syscall.CLONE_NEWIPC,
			Pdeathsig:  syscall.SIGKILL,
			Credential: &syscall.Credential{
				Uid:    spec.id.uid,
				Gid:    spec.id.gid,
				Groups: spec.id.groups,
			},
		},
	}
	if err := s.in(ns, cmd.Start); err != nil {
		return nil, err
	}
	return cmd, nil
}

// exitInfo turns a finished process's wait error into a container's
// termination state, with signals as 128+n like container runtimes report.
func exitInfo(err error) (code int32, reason string) {
	if err == nil {
		return 0, "Completed"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int32(ws.Signal()), "Error"
		}
		return int32(ee.ExitCode()), "Error"
	}
	return 128, "Error"
}

// probeResult is the outcome of one probe, with the kubelet's message.
type probeResult struct {
	ok  bool
	msg string
}

// prober runs a container's probes; dial reaches the pod's network
// namespace, exec runs a command in the container.
type prober struct {
	dial func(ctx context.Context, addr string) (net.Conn, error)
	exec func(ctx context.Context, argv []string) (int, string, error)
	ip   string
	c    *corev1.Container
}

func (p *prober) probe(ctx context.Context, pr *corev1.Probe) probeResult {
	timeout := time.Duration(pr.TimeoutSeconds) * time.Second
	if timeout <= 0 {
		timeout = time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch {
	case pr.HTTPGet != nil:
		return p.httpGet(ctx, pr.HTTPGet)
	case pr.TCPSocket != nil:
		port, err := resolvePort(pr.TCPSocket.Port, p.c)
		if err != nil {
			return probeResult{msg: err.Error()}
		}
		conn, err := p.dial(ctx, net.JoinHostPort(p.ip, strconv.Itoa(port)))
		if err != nil {
			return probeResult{msg: fmt.Sprintf("dial tcp %s:%d: %v", p.ip, port, unwrapOp(err))}
		}
		conn.Close()
		return probeResult{ok: true}
	case pr.Exec != nil:
		code, out, err := p.exec(ctx, pr.Exec.Command)
		if err != nil {
			return probeResult{msg: err.Error()}
		}
		if code != 0 {
			return probeResult{msg: fmt.Sprintf("command %q exited with %d: %s", strings.Join(pr.Exec.Command, " "), code, out)}
		}
		return probeResult{ok: true}
	case pr.GRPC != nil:
		return probeResult{msg: "simnode does not support gRPC probes"}
	}
	return probeResult{msg: "probe has no handler"}
}

func (p *prober) httpGet(ctx context.Context, g *corev1.HTTPGetAction) probeResult {
	port, err := resolvePort(g.Port, p.c)
	if err != nil {
		return probeResult{msg: err.Error()}
	}
	host := p.ip
	if g.Host != "" && g.Host != p.ip {
		// The kubelet would dial that host from the node; simnode reaches
		// only pods.
		return probeResult{msg: fmt.Sprintf("simnode cannot probe host %q", g.Host)}
	}
	scheme := strings.ToLower(string(g.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	pth := g.Path
	if !strings.HasPrefix(pth, "/") {
		pth = "/" + pth
	}
	url := fmt.Sprintf("%s://%s%s", scheme, net.JoinHostPort(host, strconv.Itoa(port)), pth)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return probeResult{msg: err.Error()}
	}
	req.Header.Set("User-Agent", "kube-probe/1.37")
	req.Header.Set("Accept", "*/*")
	for _, h := range g.HTTPHeaders {
		if strings.EqualFold(h.Name, "Host") {
			req.Host = h.Value
			continue
		}
		req.Header.Set(h.Name, h.Value)
	}
	client := &http.Client{
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
				return p.dial(ctx, addr)
			},
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
			DisableKeepAlives: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		return probeResult{msg: fmt.Sprintf("Get %q: %v", url, unwrapOp(err))}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 10*1024))
	if resp.StatusCode >= 200 && resp.StatusCode < 400 {
		return probeResult{ok: true}
	}
	return probeResult{msg: fmt.Sprintf("HTTP probe failed with statuscode: %d %s", resp.StatusCode, strings.TrimSpace(string(body)))}
}

// unwrapOp drops Go's "dial tcp ..." wrapping, since the kubelet's
// messages name the address themselves.
func unwrapOp(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}

// resolvePort resolves a probe's numeric or named port against the
// container's ports, as the kubelet does.
func resolvePort(p intstr.IntOrString, c *corev1.Container) (int, error) {
	if p.Type == intstr.Int {
		if p.IntVal <= 0 || p.IntVal > 65535 {
			return 0, fmt.Errorf("invalid port number: %d", p.IntVal)
		}
		return int(p.IntVal), nil
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	if n, err := strconv.Atoi(p.StrVal); err == nil {
		return n, nil
	}
	return 0, fmt.Errorf("couldn't find port: %s in container %s", p.StrVal, c.Name)
}

// sortedKeys returns m's keys in order, for stable output.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
