package simnode

import (
	"bufio"
	"context"
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
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubectl-acme/kubectl-acme/test/cni"
)

// podNetwork is the real node's pod network seen from the host. Kubernetes
// wants every pod reachable at its IP from the node (the network model,
// https://kubernetes.io/docs/concepts/services-networking/#the-kubernetes-network-model):
// the kubelet probes pod IPs, and ingress-nginx proxies to them. This
// machine routes nothing but loopback, so the CNI plugin (test/cni) keeps
// each pod's eth0 and its address inside the pod's namespace, and
// podNetwork forwards: for each TCP port a pod's containers declare, while
// something in the pod listens on it, the host listens on podIP:port and
// relays each connection into the pod's namespace. A port nothing listens
// on in the pod refuses connections on the host too, as on a real cluster,
// so a tcpSocket probe of the wrong port fails.
//
// Only declared ports are forwarded, which a real pod network does not
// need: an undeclared port is unreachable here but would be reachable on a
// cluster. Kubernetes documents containerPort as informational
// (core/v1 Container.ports), so a solver that relies on that would pass
// on a cluster and fail here, never the reverse.
type podNetwork struct {
	dataDir string
	nss     *nsSwitcher
	log     *slog.Logger

	mu   sync.Mutex
	pods map[types.UID]*podForward
}

type podForward struct {
	ip    string
	ports []int
	stop  context.CancelFunc
	done  chan struct{}
}

func newPodNetwork(dataDir string, nss *nsSwitcher, log *slog.Logger) *podNetwork {
	return &podNetwork{dataDir: dataDir, nss: nss, log: log, pods: map[types.UID]*podForward{}}
}

func declaredTCPPorts(pod *corev1.Pod) []int {
	var ports []int
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.Protocol == "" || p.Protocol == corev1.ProtocolTCP {
				ports = append(ports, int(p.ContainerPort))
			}
		}
	}
	slices.Sort(ports)
	return slices.Compact(ports)
}

// podUpdated starts, changes or stops the forwarding of one pod.
func (pn *podNetwork) podUpdated(pod *corev1.Pod) {
	ip := pod.Status.PodIP
	ports := declaredTCPPorts(pod)
	done := pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
	if _, err := cni.Lookup(pn.dataDir, ip); ip == "" || err != nil || done || len(ports) == 0 {
		pn.podDeleted(pod)
		return
	}
	pn.mu.Lock()
	defer pn.mu.Unlock()
	if f := pn.pods[pod.UID]; f != nil {
		if f.ip == ip && slices.Equal(f.ports, ports) {
			return
		}
		f.stop()
		<-f.done
	}
	ctx, stop := context.WithCancel(context.Background())
	f := &podForward{ip: ip, ports: ports, stop: stop, done: make(chan struct{})}
	pn.pods[pod.UID] = f
	log := pn.log.With("pod", pod.Namespace+"/"+pod.Name, "ip", ip)
	go func() {
		defer close(f.done)
		pn.forward(ctx, f, log)
	}()
}

func (pn *podNetwork) podDeleted(pod *corev1.Pod) {
	pn.mu.Lock()
	f := pn.pods[pod.UID]
	delete(pn.pods, pod.UID)
	pn.mu.Unlock()
	if f != nil {
		f.stop()
		<-f.done
	}
}

// run stops every forwarding when ctx ends.
func (pn *podNetwork) run(ctx context.Context) {
	<-ctx.Done()
	pn.mu.Lock()
	pods := pn.pods
	pn.pods = map[types.UID]*podForward{}
	pn.mu.Unlock()
	for _, f := range pods {
		f.stop()
		<-f.done
	}
}

// dial connects to a pod IP the way the node does, through the host's
// forwarding; it refuses addresses that are no pod's, so nothing else on
// the host is ever dialed.
func (pn *podNetwork) dial(ctx context.Context, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	if _, err := cni.Lookup(pn.dataDir, host); err != nil {
		return nil, fmt.Errorf("dial %s: no pod has IP %s on this node", addr, host)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// forward keeps the host's listeners of one pod in step with the pod's own,
// checking five times a second (a hundred while it starts), until ctx ends.
func (pn *podNetwork) forward(ctx context.Context, f *podForward, log *slog.Logger) {
	rec, err := cni.Lookup(pn.dataDir, f.ip)
	if err != nil {
		log.Error("pod network", "err", err)
		return
	}
	ns, err := os.Open(rec.NetNS)
	if err != nil {
		log.Error("open pod netns", "err", err)
		return
	}
	defer ns.Close()
	listeners := map[int]net.Listener{}
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	start := time.Now()
	for {
		listening, err := pn.listeningPorts(ns, f.ip)
		if err != nil {
			log.Error("read pod's listening ports", "err", err)
		}
		// A real pod network routes to a port the moment something
		// listens on it; this poll stands in for that, so while a young
		// pod's ports are not all open it looks every 10 ms, which keeps
		// the lag out of what a client of the pod measures.
		interval := 200 * time.Millisecond
		for _, port := range f.ports {
			if !listening[port] && time.Since(start) < 10*time.Second {
				interval = 10 * time.Millisecond
			}
		}
		for _, port := range f.ports {
			l, open := listeners[port]
			switch {
			case listening[port] && !open:
				l, err := net.Listen("tcp", net.JoinHostPort(f.ip, strconv.Itoa(port)))
				if err != nil {
					log.Error("listen for pod port", "port", port, "err", err)
					continue
				}
				listeners[port] = l
				go pn.accept(l, ns, net.JoinHostPort(f.ip, strconv.Itoa(port)))
			case !listening[port] && open:
				l.Close()
				delete(listeners, port)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

func (pn *podNetwork) accept(l net.Listener, ns *os.File, addr string) {
	for {
		c, err := l.Accept()
		if err != nil {
			return // closed
		}
		go func() {
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			var inner net.Conn
			err := pn.inNet(ns, func() error {
				var d net.Dialer
				var err error
				inner, err = d.DialContext(ctx, "tcp", addr)
				return err
			})
			cancel()
			if err != nil {
				return // the client sees the connection closed, as after a reset
			}
			defer inner.Close()
			done := make(chan struct{}, 2)
			relay := func(dst, src net.Conn) {
				_, _ = io.Copy(dst, src)
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
				}
				done <- struct{}{}
			}
			go relay(inner, c)
			go relay(c, inner)
			<-done
			<-done
		}()
	}
}

// inNet runs fn on a locked thread in the network namespace ns; sockets it
// makes stay there.
func (pn *podNetwork) inNet(ns *os.File, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns into pod netns: %w", err)
			return
		}
		err := fn()
		if rerr := pn.nss.leave(); rerr != nil {
			errc <- errors.Join(err, rerr) // the thread stays locked and is discarded
			return
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	return <-errc
}

// listeningPorts reads the pod's TCP listeners from /proc/net/tcp and tcp6
// as seen from its namespace, counting those bound to any address or to
// the pod IP.
func (pn *podNetwork) listeningPorts(ns *os.File, ip string) (map[int]bool, error) {
	ports := map[int]bool{}
	podHex := ""
	if v4 := net.ParseIP(ip).To4(); v4 != nil {
		// /proc/net/tcp prints the address as a little-endian word.
		podHex = fmt.Sprintf("%02X%02X%02X%02X", v4[3], v4[2], v4[1], v4[0])
	}
	err := pn.inNet(ns, func() error {
		for _, file := range []string{"/proc/thread-self/net/tcp", "/proc/thread-self/net/tcp6"} {
			f, err := os.Open(file)
			if err != nil {
				if errors.Is(err, os.ErrNotExist) {
					continue
				}
				return err
			}
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				fields := strings.Fields(sc.Text())
				if len(fields) < 4 || fields[3] != "0A" { // TCP_LISTEN
					continue
				}
				addr, portHex, ok := strings.Cut(fields[1], ":")
				if !ok {
					continue
				}
				if strings.Trim(addr, "0") != "" && addr != podHex {
					continue
				}
				if port, err := strconv.ParseUint(portHex, 16, 16); err == nil {
					ports[int(port)] = true
				}
			}
			f.Close()
			if err := sc.Err(); err != nil {
				return err
			}
		}
		return nil
	})
	return ports, err
}
