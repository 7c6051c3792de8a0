package simnode

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// netNS is a network namespace kept alive by an open handle, the way a pod
// sandbox's pause container keeps one alive for the pod's containers.
type netNS struct {
	fd *os.File
}

// nsSwitcher runs functions on an OS thread switched into another network
// namespace. host is the namespace to switch back to.
type nsSwitcher struct {
	host *os.File
}

func newNSSwitcher() (*nsSwitcher, error) {
	// Open our own namespace from a locked thread so it is the thread's, not
	// whatever an earlier Setns left on some other thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	f, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		return nil, fmt.Errorf("open host netns: %w", err)
	}
	return &nsSwitcher{host: f}, nil
}

func (s *nsSwitcher) Close() error { return s.host.Close() }

// in runs fn on a locked OS thread switched into ns. Sockets created and
// processes forked by fn belong to ns. If the thread cannot be switched back
// it is left locked, so the Go runtime discards it instead of reusing it.
func (s *nsSwitcher) in(ns *netNS, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(int(ns.fd.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns into pod netns: %w", err)
			return
		}
		err := fn()
		if rerr := unix.Setns(int(s.host.Fd()), unix.CLONE_NEWNET); rerr != nil {
			errc <- errors.Join(err, fmt.Errorf("setns back to host netns: %w", rerr))
			return
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	return <-errc
}

// newNetNS creates a network namespace with lo up, and lets unprivileged
// processes bind low ports in it, as containerd does for pod sandboxes.
func (s *nsSwitcher) newNetNS() (*netNS, error) {
	type result struct {
		ns  *netNS
		err error
	}
	resc := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			resc <- result{err: fmt.Errorf("unshare netns: %w", err)}
			return
		}
		ns, err := setupNetNS()
		if rerr := unix.Setns(int(s.host.Fd()), unix.CLONE_NEWNET); rerr != nil {
			if ns != nil {
				ns.fd.Close()
			}
			resc <- result{err: errors.Join(err, fmt.Errorf("setns back to host netns: %w", rerr))}
			return
		}
		runtime.UnlockOSThread()
		resc <- result{ns: ns, err: err}
	}()
	r := <-resc
	return r.ns, r.err
}

// setupNetNS configures the namespace the calling (locked) thread is in.
func setupNetNS() (*netNS, error) {
	f, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		return nil, fmt.Errorf("open new netns: %w", err)
	}
	if err := linkUp("lo"); err != nil {
		f.Close()
		return nil, err
	}
	// /proc/sys/net follows the opening thread's netns.
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_unprivileged_port_start", []byte("0"), 0o644); err != nil {
		f.Close()
		return nil, fmt.Errorf("allow unprivileged ports: %w", err)
	}
	return &netNS{fd: f}, nil
}

func linkUp(name string) error {
	sock, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket for ioctl: %w", err)
	}
	defer unix.Close(sock)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return fmt.Errorf("ifreq %s: %w", name, err)
	}
	if err := unix.IoctlIfreq(sock, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("get %s flags: %w", name, err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(sock, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("set %s up: %w", name, err)
	}
	return nil
}

func (ns *netNS) Close() error { return ns.fd.Close() }

// dial connects to addr from inside ns. The connection stays in ns after the
// thread switches back, as sockets keep the namespace they were made in.
func (s *nsSwitcher) dial(ctx context.Context, ns *netNS, addr string) (net.Conn, error) {
	var conn net.Conn
	err := s.in(ns, func() error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		conn = c
		return err
	})
	return conn, err
}
