package cni

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// newTestNetNS makes a network namespace with lo up, kept alive by a
// locked thread until the test ends, and returns its path.
func newTestNetNS(t *testing.T) string {
	t.Helper()
	pathc, done := make(chan string, 1), make(chan struct{})
	go func() {
		runtime.LockOSThread() // never unlocked: the thread goes with the goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			pathc <- ""
			return
		}
		pathc <- fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid())
		<-done
	}()
	path := <-pathc
	if path == "" {
		t.Skip("cannot create a network namespace (needs root)")
	}
	t.Cleanup(func() { close(done) })
	if err := inNetNS(path, "ip", "link", "set", "lo", "up"); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestProxy: in a pod's namespace, the ClusterIP reaches its endpoint on
// the host, a published host port reaches the host's, and either refuses
// connections while nothing listens on the host.
func TestProxy(t *testing.T) {
	netns := newTestNetNS(t)
	echo := func(t *testing.T) net.Listener {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go func() { _, _ = io.Copy(c, c); c.Close() }()
			}
		}()
		return l
	}
	api, ca := echo(t), echo(t)
	defer api.Close()

	dir := t.TempDir()
	const id = "c1"
	rec, _ := json.Marshal(Record{IP: "127.200.0.1", ContainerID: id, NetNS: netns})
	if err := os.WriteFile(filepath.Join(dir, "127.200.0.1"), rec, 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := NewProxy([]Forward{{Listen: "10.0.0.1:443", Target: api.Addr().String()}}, dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	sock := filepath.Join(dir, "proxy.sock")
	go func() { _ = p.Serve(ctx, sock) }()
	call := func(req ProxyRequest) {
		t.Helper()
		var err error
		for range 50 { // until Serve listens
			if err = CallProxy(sock, req); err == nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatal(err)
	}
	call(ProxyRequest{Op: "add", ContainerID: id, NetNS: netns})

	ns, err := os.Open(netns)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	// talk dials addr from the pod's namespace and reports whether what
	// it sends comes back.
	talk := func(addr string) error {
		var c net.Conn
		if err := p.inNet(ns, func() error {
			var err error
			c, err = net.DialTimeout("tcp", addr, 2*time.Second)
			return err
		}); err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("ping")); err != nil {
			return err
		}
		b := make([]byte, 4)
		if _, err := io.ReadFull(c, b); err != nil || string(b) != "ping" {
			return fmt.Errorf("read %q: %v", b, err)
		}
		return nil
	}
	if err := talk("10.0.0.1:443"); err != nil {
		t.Errorf("the ClusterIP from the pod: %v", err)
	}
	if err := talk(ca.Addr().String()); err == nil {
		t.Error("an unpublished host port is reachable from the pod")
	}
	call(ProxyRequest{Op: "publish", Addr: ca.Addr().String()})
	if err := talk(ca.Addr().String()); err != nil {
		t.Errorf("a published host port from the pod: %v", err)
	}
	// The host's port closed, the pod's refuses within a sync.
	ca.Close()
	time.Sleep(500 * time.Millisecond)
	if err := talk(ca.Addr().String()); !errors.Is(err, unix.ECONNREFUSED) {
		t.Errorf("a published port nothing listens on: %v, want connection refused", err)
	}
	call(ProxyRequest{Op: "del", ContainerID: id})
	if err := talk("10.0.0.1:443"); err == nil {
		t.Error("the ClusterIP still answers after DEL")
	}
}
