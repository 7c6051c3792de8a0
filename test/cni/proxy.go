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
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Proxy is the real node's kube-proxy, for what pods here need of one: a
// pod reaching the API server through the kubernetes Service, as
// in-cluster clients do (client-go rest.InClusterConfig dials
// KUBERNETES_SERVICE_HOST:KUBERNETES_SERVICE_PORT, which the kubelet sets
// from the default/kubernetes Service). There is no kube-proxy and no
// routed pod network on this machine, so the Service's ClusterIP (10.0.0.1,
// from --service-cluster-ip-range) leads nowhere by itself.
//
// kube-proxy makes a ClusterIP answer on every node
// (https://kubernetes.io/docs/reference/networking/virtual-ips/): in IPVS
// mode it binds each ClusterIP to a dummy interface, kube-ipvs0, so the
// kernel accepts connections to it (kubernetes pkg/proxy/ipvs/proxier.go,
// defaultDummyDevice), and its former userspace mode accepted them in the
// proxy process and relayed each to one of the Service's endpoints
// (pkg/proxy/userspace/proxier.go, removed in v1.26). Proxy does both,
// inside each pod's network namespace, where connections start here: at
// the CNI ADD of a pod (before its containers start) it puts the ClusterIP
// on the pod's lo and listens on ClusterIP:port there, on a thread
// switched into the pod's namespace; each connection is relayed from the
// host's namespace to the endpoint, which for the kubernetes Service is
// the API server's --advertise-address and --secure-port (the Service's
// targetPort), as the API server's endpoint reconciler would publish them.
//
// It also publishes host ports to pods, which a real cluster has no need
// of: the ACME servers (Pebble, step-ca, a test's proxy in front of them)
// listen on the host's 127.0.0.1, which for a cluster would be an outside
// address its pods reach through the node, while inside a pod 127.0.0.1 is
// the pod itself. For each published port, 127.0.0.1:PORT in every pod is
// relayed to 127.0.0.1:PORT on the host, so a pod reaches the CA at the
// directory URL its Issuer records. Only those ports: nothing else of the
// host is reachable from a pod, and nothing but loopback and the pods'
// own namespaces is used.
//
// The CNI plugin talks to Proxy over a unix socket (Config.ProxySocket),
// one JSON ProxyRequest and one reply per connection.
type Proxy struct {
	services []Forward
	dataDir  string
	log      *slog.Logger
	host     *os.File // the host's network namespace, to switch back to

	mu        sync.Mutex
	published []string
	pods      map[string]*podProxy // by container ID
}

// Forward relays connections to Listen, inside a pod, to Target on the host.
type Forward struct {
	Listen, Target string
}

// ProxyRequest is one call of the CNI plugin or the environment.
type ProxyRequest struct {
	// Op is add (a pod's network namespace is ready), del (it goes),
	// publish or unpublish (a host port, to every pod).
	Op          string `json:"op"`
	ContainerID string `json:"containerID,omitempty"`
	NetNS       string `json:"netns,omitempty"`
	Addr        string `json:"addr,omitempty"`
}

type proxyReply struct {
	Error string `json:"error,omitempty"`
}

type podProxy struct {
	netns     *os.File
	listeners map[string]net.Listener // by listen address
}

// NewProxy relays services (the kubernetes Service's ClusterIP:port to the
// API server) into every pod whose CNI record is in dataDir.
func NewProxy(services []Forward, dataDir string, log *slog.Logger) (*Proxy, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	host, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		return nil, fmt.Errorf("open host netns: %w", err)
	}
	return &Proxy{services: services, dataDir: dataDir, log: log, host: host, pods: map[string]*podProxy{}}, nil
}

// Serve answers requests on the unix socket until ctx ends, then closes
// every pod's listeners.
func (p *Proxy) Serve(ctx context.Context, socket string) error {
	_ = os.Remove(socket)
	l, err := net.Listen("unix", socket)
	if err != nil {
		return fmt.Errorf("pod proxy: %w", err)
	}
	defer os.Remove(socket)
	go func() {
		<-ctx.Done()
		l.Close()
	}()
	go p.reap(ctx)
	for {
		c, err := l.Accept()
		if err != nil {
			p.closeAll()
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("pod proxy: %w", err)
		}
		go p.answer(c)
	}
}

func (p *Proxy) answer(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	var req ProxyRequest
	err := json.NewDecoder(c).Decode(&req)
	if errors.Is(err, io.EOF) {
		return // a readiness probe: connected and closed
	}
	if err == nil {
		err = p.handle(req)
	}
	var rep proxyReply
	if err != nil {
		rep.Error = err.Error()
		p.log.Error("pod proxy", "op", req.Op, "container", req.ContainerID, "addr", req.Addr, "err", err)
	}
	_ = json.NewEncoder(c).Encode(rep)
}

func (p *Proxy) handle(req ProxyRequest) error {
	switch req.Op {
	case "add":
		return p.add(req.ContainerID, req.NetNS)
	case "del":
		p.del(req.ContainerID)
		return nil
	case "publish":
		return p.publish(req.Addr)
	case "unpublish":
		p.unpublish(req.Addr)
		return nil
	}
	return fmt.Errorf("unknown op %q", req.Op)
}

// forwards are every pod's: the services, then the published ports.
func (p *Proxy) forwards() []Forward {
	out := slices.Clone(p.services)
	for _, a := range p.published {
		out = append(out, Forward{Listen: a, Target: a})
	}
	return out
}

func (p *Proxy) add(id, netnsPath string) error {
	if id == "" || netnsPath == "" {
		return errors.New("add needs containerID and netns")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.pods[id]; ok {
		return nil // a repeated ADD
	}
	ns, err := os.Open(netnsPath)
	if err != nil {
		return fmt.Errorf("open pod netns: %w", err)
	}
	pod := &podProxy{netns: ns, listeners: map[string]net.Listener{}}
	for _, s := range p.services {
		host, _, err := net.SplitHostPort(s.Listen)
		if err != nil {
			ns.Close()
			return err
		}
		// The ClusterIP on the pod's lo, as kube-proxy's IPVS mode binds
		// it to kube-ipvs0: the kernel then accepts connections to it.
		if ip := net.ParseIP(host); ip != nil && !ip.IsLoopback() {
			if err := inNetNS(netnsPath, "ip", "addr", "replace", host+"/32", "dev", "lo"); err != nil {
				ns.Close()
				return err
			}
		}
	}
	p.pods[id] = pod
	if err := p.syncPod(pod, p.forwards(), p.hostListening()); err != nil {
		delete(p.pods, id)
		pod.close()
		return err
	}
	return nil
}

func (p *Proxy) del(id string) {
	p.mu.Lock()
	pod := p.pods[id]
	delete(p.pods, id)
	p.mu.Unlock()
	if pod != nil {
		pod.close()
	}
}

func (p *Proxy) publish(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host != "127.0.0.1" {
		return fmt.Errorf("publish %q: want 127.0.0.1:PORT", addr)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if slices.Contains(p.published, addr) {
		return nil
	}
	p.published = append(p.published, addr)
	up := p.hostListening()
	var errs []error
	for _, pod := range p.pods {
		errs = append(errs, p.syncPod(pod, []Forward{{Listen: addr, Target: addr}}, up))
	}
	return errors.Join(errs...)
}

// syncPod opens the pod's listener of each forward whose target listens
// on the host, and closes those whose target no longer does: a pod's
// connection to a ClusterIP whose endpoint is down is refused, as
// kube-proxy's iptables rules REJECT it for a Service without endpoints
// (pkg/proxy/iptables/proxier.go), and one to a stopped CA is refused as
// it would be on the host. Called with p.mu held.
func (p *Proxy) syncPod(pod *podProxy, fwd []Forward, up map[string]bool) error {
	var errs []error
	for _, f := range fwd {
		l, open := pod.listeners[f.Listen]
		switch {
		case up[f.Target] && !open:
			errs = append(errs, p.listen(pod, f))
		case !up[f.Target] && open:
			l.Close()
			delete(pod.listeners, f.Listen)
		}
	}
	return errors.Join(errs...)
}

// hostListening is the set of 127.0.0.1:PORT something listens on in the
// host's namespace (bound to 127.0.0.1 or any address), from
// /proc/thread-self/net/tcp read on a thread in that namespace.
func (p *Proxy) hostListening() map[string]bool {
	up := map[string]bool{}
	_ = p.inNet(p.host, func() error {
		data, err := os.ReadFile("/proc/thread-self/net/tcp")
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) < 4 || f[3] != "0A" { // TCP_LISTEN
				continue
			}
			ip, portHex, ok := strings.Cut(f[1], ":")
			// The address is a little-endian word: 0100007F is 127.0.0.1.
			if !ok || (ip != "0100007F" && ip != "00000000") {
				continue
			}
			if port, err := strconv.ParseUint(portHex, 16, 16); err == nil {
				up["127.0.0.1:"+strconv.Itoa(int(port))] = true
			}
		}
		return nil
	})
	return up
}

func (p *Proxy) unpublish(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.published = slices.DeleteFunc(p.published, func(a string) bool { return a == addr })
	for _, pod := range p.pods {
		if l := pod.listeners[addr]; l != nil {
			l.Close()
			delete(pod.listeners, addr)
		}
	}
}

// listen opens f's listener in the pod's namespace and relays what it
// accepts.
func (p *Proxy) listen(pod *podProxy, f Forward) error {
	var l net.Listener
	err := p.inNet(pod.netns, func() error {
		var err error
		l, err = net.Listen("tcp", f.Listen)
		return err
	})
	if err != nil {
		return fmt.Errorf("listen on %s in the pod: %w", f.Listen, err)
	}
	pod.listeners[f.Listen] = l
	go relayAll(l, f.Target)
	return nil
}

// inNet runs fn on a locked OS thread switched into ns: the sockets it
// makes belong to ns. A thread that cannot be switched back stays locked,
// so the Go runtime discards it.
func (p *Proxy) inNet(ns *os.File, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns into pod netns: %w", err)
			return
		}
		err := fn()
		if rerr := unix.Setns(int(p.host.Fd()), unix.CLONE_NEWNET); rerr != nil {
			errc <- errors.Join(err, fmt.Errorf("setns back to host netns: %w", rerr))
			return
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	return <-errc
}

// relayAll relays each connection l accepts to target, dialed from the
// host's namespace (every goroutine but inNet's runs there), until l is
// closed. A target that refuses closes the pod's connection, as a Service
// without a ready endpoint does.
func relayAll(l net.Listener, target string) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			d := net.Dialer{Timeout: 5 * time.Second}
			up, err := d.Dial("tcp", target)
			if err != nil {
				return
			}
			defer up.Close()
			done := make(chan struct{}, 2)
			relay := func(dst, src net.Conn) {
				_, _ = io.Copy(dst, src)
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
				}
				done <- struct{}{}
			}
			go relay(up, c)
			go relay(c, up)
			<-done
			<-done
		}()
	}
}

// reap closes, every 5 s, the listeners of pods whose address the CNI
// plugin no longer records (a DEL that never reached us): they would keep
// the pod's network namespace alive.
//
// Between, a few times a second, it keeps the pods' listeners in step with
// the host's (syncPod).
func (p *Proxy) reap(ctx context.Context) {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		up := p.hostListening()
		p.mu.Lock()
		fwd := p.forwards()
		for _, pod := range p.pods {
			if err := p.syncPod(pod, fwd, up); err != nil {
				p.log.Error("pod proxy", "err", err)
			}
		}
		p.mu.Unlock()
		if n%25 != 0 {
			continue
		}
		recs, err := Records(p.dataDir)
		if err != nil {
			continue
		}
		live := map[string]bool{}
		for _, r := range recs {
			live[r.ContainerID] = true
		}
		p.mu.Lock()
		var gone []string
		for id := range p.pods {
			if !live[id] {
				gone = append(gone, id)
			}
		}
		p.mu.Unlock()
		for _, id := range gone {
			p.del(id)
		}
	}
}

func (p *Proxy) closeAll() {
	p.mu.Lock()
	pods := p.pods
	p.pods = map[string]*podProxy{}
	p.mu.Unlock()
	for _, pod := range pods {
		pod.close()
	}
}

func (pod *podProxy) close() {
	for _, l := range pod.listeners {
		l.Close()
	}
	pod.netns.Close()
}

// CallProxy sends one request to the proxy at socket and waits for its
// answer.
func CallProxy(socket string, req ProxyRequest) error {
	c, err := net.DialTimeout("unix", socket, 5*time.Second)
	if err != nil {
		return fmt.Errorf("pod proxy: %w", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return fmt.Errorf("pod proxy: %w", err)
	}
	var rep proxyReply
	if err := json.NewDecoder(c).Decode(&rep); err != nil {
		return fmt.Errorf("pod proxy: %w", err)
	}
	if rep.Error != "" {
		return fmt.Errorf("pod proxy: %s %s%s: %s", req.Op, req.ContainerID, req.Addr, rep.Error)
	}
	return nil
}

// ParseForward reads LISTEN=TARGET, as `testenv podproxy --service` takes it.
func ParseForward(s string) (Forward, error) {
	l, t, ok := strings.Cut(s, "=")
	if !ok {
		return Forward{}, fmt.Errorf("%q: want LISTEN=TARGET (host:port each)", s)
	}
	for _, a := range []string{l, t} {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return Forward{}, fmt.Errorf("%q: %w", s, err)
		}
	}
	return Forward{Listen: l, Target: t}, nil
}
