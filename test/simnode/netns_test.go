package simnode

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestSandboxIsolation runs two busybox httpd "pods" on the same port, each
// in its own root and namespaces, and checks that each is reachable only
// from inside its own namespace, and serves its own files.
func TestSandboxIsolation(t *testing.T) {
	const busybox = "/bin/busybox"
	if os.Geteuid() != 0 {
		t.Skip("needs root for namespaces and chroot")
	}
	if _, err := os.Stat(busybox); err != nil {
		t.Skip("needs a static busybox at " + busybox)
	}
	out, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	applets := strings.Fields(string(out))
	nss, err := newNSSwitcher()
	if err != nil {
		t.Fatal(err)
	}
	defer nss.Close()

	type pod struct {
		root string
		ns   *netNS
		ip   string
		cmd  *exec.Cmd
	}
	var pods []*pod
	for i, name := range []string{"one", "two"} {
		p := &pod{root: filepath.Join(t.TempDir(), "root"), ip: fmt.Sprintf("127.1.0.%d", i+1)}
		meta := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}}
		if err := populateRoot(p.root, busybox, applets, meta); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p.root, "var/www/index.html"), []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
		if p.ns, err = nss.newNetNS(name); err != nil {
			t.Fatal(err)
		}
		defer p.ns.Close()
		// As nobody: the port is below 1024, which containerd allows.
		p.cmd, err = nss.start(p.root, p.ns, procSpec{
			path: "/bin/httpd", argv: []string{"httpd", "-f", "-p", "80", "-h", "/var/www"},
			id: identity{uid: 65534, gid: 65534}, out: io.Discard,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}()
		pods = append(pods, p)
	}

	get := func(p *pod) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var conn net.Conn
		var err error
		for ctx.Err() == nil {
			// httpd may not listen yet right after the start.
			if conn, err = nss.dial(ctx, p.ns, net.JoinHostPort(p.ip, "80")); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			return "", err
		}
		defer conn.Close()
		fmt.Fprint(conn, "GET /index.html HTTP/1.0\r\n\r\n")
		b, err := io.ReadAll(conn)
		return string(b), err
	}
	for i, p := range pods {
		resp, err := get(p)
		if err != nil {
			t.Fatalf("pod %d: %v", i, err)
		}
		want := []string{"one", "two"}[i]
		if !strings.HasSuffix(resp, "\r\n\r\n"+want) {
			t.Errorf("pod %d answered %q, want body %q", i, resp, want)
		}
	}
	// Nothing listens on the host's side of that port.
	if conn, err := net.DialTimeout("tcp", "127.1.0.1:80", time.Second); err == nil {
		conn.Close()
		t.Error("a pod's port is reachable from the host namespace")
	}
	// PID 1 of the pod ignores SIGTERM it has no handler for, as in a
	// container; SIGKILL ends it.
	_ = pods[0].cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- pods[0].cmd.Wait() }()
	select {
	case <-done:
		t.Error("httpd as PID 1 exited on SIGTERM; containers ignore it")
	case <-time.After(300 * time.Millisecond):
	}
	_ = pods[0].cmd.Process.Kill()
	if code, _ := exitInfo(<-done); code != 137 {
		t.Errorf("exit code after SIGKILL = %d, want 137", code)
	}
}
