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

// netNS is a pod's network and UTS (hostname) namespaces, kept alive by
// open handles, the way a pod sandbox's pause container keeps them alive
// for the pod's containers.
type netNS struct {
	fd, uts *os.File
}

// nsSwitcher runs functions on an OS thread switched into a pod's
// namespaces. host and hostUTS are the namespaces to switch back to.
type nsSwitcher struct {
	host, hostUTS *os.File
}

func newNSSwitcher() (*nsSwitcher, error) {
	// Open our own namespaces from a locked thread so they are the thread's,
	// not whatever an earlier Setns left on some other thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := unix.Gettid()
	f, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", tid))
	if err != nil {
		return nil, fmt.Errorf("open host netns: %w", err)
	}
	u, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/uts", tid))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open host utsns: %w", err)
	}
	return &nsSwitcher{host: f, hostUTS: u}, nil
}

func (s *nsSwitcher) Close() error { return errors.Join(s.host.Close(), s.hostUTS.Close()) }

// enter switches the calling locked thread into ns.
func (ns *netNS) enter() error {
	if err := unix.Setns(int(ns.fd.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("setns into pod netns: %w", err)
	}
	if err := unix.Setns(int(ns.uts.Fd()), unix.CLONE_NEWUTS); err != nil {
		return fmt.Errorf("setns into pod utsns: %w", err)
	}
	return nil
}

// leave switches the calling locked thread back to the host's namespaces.
func (s *nsSwitcher) leave() error {
	if err := unix.Setns(int(s.host.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("setns back to host netns: %w", err)
	}
	if err := unix.Setns(int(s.hostUTS.Fd()), unix.CLONE_NEWUTS); err != nil {
		return fmt.Errorf("setns back to host utsns: %w", err)
	}
	return nil
}

// in runs fn on a locked OS thread switched into ns. Sockets created and
// processes forked by fn belong to ns. If the thread cannot be switched back
// it is left locked, so the Go runtime discards it instead of reusing it.
func (s *nsSwitcher) in(ns *netNS, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := ns.enter(); err != nil {
			if rerr := s.leave(); rerr != nil {
				errc <- errors.Join(err, rerr)
				return // the thread stays locked and is discarded
			}
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		err := fn()
		if rerr := s.leave(); rerr != nil {
			errc <- errors.Join(err, rerr)
			return
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	return <-errc
}

// newNetNS creates a network namespace with lo up, in which unprivileged
// processes may bind low ports as containerd allows, and a UTS namespace
// with the pod's hostname.
func (s *nsSwitcher) newNetNS(hostname string) (*netNS, error) {
	type result struct {
		ns  *netNS
		err error
	}
	resc := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET | unix.CLONE_NEWUTS); err != nil {
			runtime.UnlockOSThread()
			resc <- result{err: fmt.Errorf("unshare pod namespaces: %w", err)}
			return
		}
		ns, err := setupNetNS(hostname)
		if rerr := s.leave(); rerr != nil {
			if ns != nil {
				ns.Close()
			}
			resc <- result{err: errors.Join(err, rerr)}
			return
		}
		runtime.UnlockOSThread()
		resc <- result{ns: ns, err: err}
	}()
	r := <-resc
	return r.ns, r.err
}

// setupNetNS configures the namespaces the calling (locked) thread is in.
func setupNetNS(hostname string) (_ *netNS, err error) {
	tid := unix.Gettid()
	f, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", tid))
	if err != nil {
		return nil, fmt.Errorf("open new netns: %w", err)
	}
	u, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/uts", tid))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open new utsns: %w", err)
	}
	ns := &netNS{fd: f, uts: u}
	defer func() {
		if err != nil {
			ns.Close()
		}
	}()
	if err := unix.Sethostname([]byte(hostname)); err != nil {
		return nil, fmt.Errorf("set hostname: %w", err)
	}
	if err := linkUp("lo"); err != nil {
		return nil, err
	}
	// /proc/sys/net follows the opening thread's netns.
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_unprivileged_port_start", []byte("0"), 0o644); err != nil {
		return nil, fmt.Errorf("allow unprivileged ports: %w", err)
	}
	return ns, nil
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

func (ns *netNS) Close() error { return errors.Join(ns.fd.Close(), ns.uts.Close()) }

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
