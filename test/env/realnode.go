package testenv

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-acme/kubectl-acme/test/cni"
)

// The real node (Options.Node NodeReal, the default): kube-scheduler and the kubelet from the
// pinned Kubernetes module, Debian's containerd and runc, the CNI plugin of
// test/cni and its Proxy (`testenv podproxy`), which stands in for
// kube-proxy for the kubernetes Service and lets pods reach the ACME
// servers on the host's loopback. Everything it writes lives in Dir/realnode, except what these
// programs put where they cannot be told otherwise: the pods' network
// namespaces in /run/netns, containerd's shim sockets in /run/containerd/s,
// the CNI library's result cache in /var/lib/cni, the kubelet's device
// plugin socket in /var/lib/kubelet/device-plugins and log links in
// /var/log/containers, the cgroups under CgroupRoot and the sysctls the
// kubelet sets. cleanupRealNode undoes all of
// it, and TestRealNode (test/harness) checks.

const realNodeDir = "realnode"

// Programs the real node runs from Debian packages (hack/tools.sh).
const (
	containerdBin = "/usr/bin/containerd"
	ctrBin        = "/usr/bin/ctr"
	runcBin       = "/usr/sbin/runc"
)

// kubeletSysctls are what the kubelet's container manager sets at start
// (kubernetes pkg/kubelet/cm/container_manager_linux.go, setupKernelTunables).
var kubeletSysctls = []string{
	"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
}

// sysctlRegistry remembers the machine's values before the first real node
// of any environment started, and which environments run one: the last to
// stop puts the values back. Environments overlap (a test's own environment
// inside the suite's), and each kubelet sets the same values.
const sysctlRegistry = "/run/testenv-realnode"

// realNode names what one environment's node uses; all of it follows from
// the environment's directory, so `testenv down` finds it again.
type realNode struct {
	dir        string // Dir/realnode
	id         string // short hash of Dir
	cgroupRoot string // the kubelet's cgroupRoot, /testenv-ID
	subnet     string // pod IPs
}

func newRealNode(envDir string) realNode {
	sum := sha256.Sum256([]byte(envDir))
	id := hex.EncodeToString(sum[:4])
	// A /22 of 127.0.0.0/8 per environment, away from 127.0.0.0/16 that
	// the other programs and simnode's pod IPs (127.1.0.0/16) use.
	subnet := fmt.Sprintf("127.%d.%d.0/22", 100+int(sum[4])%100, int(sum[5])%64*4)
	return realNode{dir: filepath.Join(envDir, realNodeDir), id: id, cgroupRoot: "/testenv-" + id, subnet: subnet}
}

func (n realNode) path(elem ...string) string {
	return filepath.Join(append([]string{n.dir}, elem...)...)
}
func (n realNode) containerdSock() string { return n.path("containerd", "containerd.sock") }
func (n realNode) cniDataDir() string     { return n.path("cni", "ips") }
func (n realNode) proxySocket() string    { return n.path("podproxy.sock") }

// PodNetworkDir is where the real node's CNI plugin records pod addresses;
// simnode's forwarder reads it. Empty for a simulated node.
func (e *Env) PodNetworkDir() string {
	if !e.RealNode {
		return ""
	}
	return newRealNode(e.Dir).cniDataDir()
}

// startRealNode runs kube-scheduler, containerd (with the images imported)
// and the kubelet, and returns once the node is Ready.
func (e *Env) startRealNode(ctx context.Context, o Options) error {
	n := newRealNode(e.Dir)
	begin := time.Now()
	for _, d := range []string{"containerd", "runc", "cni/bin", "cni/conf", "cni/ips", "kubelet", "pod-logs", "images", "opt"} {
		if err := os.MkdirAll(n.path(d), 0o755); err != nil {
			return fmt.Errorf("testenv: %w", err)
		}
	}
	if err := e.startScheduler(ctx, o); err != nil {
		return err
	}
	if err := e.startPodProxy(ctx, o, n); err != nil {
		return err
	}
	if err := e.startContainerd(ctx, o, n); err != nil {
		return err
	}
	if err := e.startKubelet(ctx, o, n); err != nil {
		return err
	}
	e.logf("real node %s ready in %s (cgroups %s, pod IPs %s)", e.NodeName, time.Since(begin).Round(100*time.Millisecond), n.cgroupRoot, n.subnet)
	return nil
}

// startPodProxy runs the node's kube-proxy stand-in (test/cni Proxy) for
// the kubernetes Service: its ClusterIP and port as the API server
// created it, relayed to the API server's advertise address and secure
// port (the Service's targetPort), which the endpoint reconciler would
// have published had --endpoint-reconciler-type not been none. The ACME
// servers' ports are published to the pods once they run (publishCAs).
func (e *Env) startPodProxy(ctx context.Context, o Options, n realNode) error {
	client, err := e.Client()
	if err != nil {
		return err
	}
	var svc *corev1.Service
	// The API server's bootstrap controller creates the Service shortly
	// after it serves.
	for {
		svc, err = client.CoreV1().Services(corev1.NamespaceDefault).Get(ctx, "kubernetes", metav1.GetOptions{})
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("testenv: the kubernetes Service: %w", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	args := []string{"podproxy", "--socket=" + n.proxySocket(), "--data-dir=" + n.cniDataDir()}
	for _, p := range svc.Spec.Ports {
		args = append(args, fmt.Sprintf("--service=%s:%d=127.0.0.1:%d", svc.Spec.ClusterIP, p.Port, p.TargetPort.IntValue()))
	}
	return e.launchBinary(ctx, o, "podproxy", o.TestenvBinary, args, nil, 15*time.Second, func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "unix", n.proxySocket())
		if err != nil {
			return err
		}
		return c.Close()
	})
}

// publishCAs lets the real node's pods reach the ACME servers at the
// directory URLs Issuers record (test/cni Proxy): a scheduled renewal runs
// in a pod.
func (e *Env) publishCAs() error {
	for _, dir := range []string{e.ACMEServer, e.StepCAServer} {
		if dir == "" {
			continue
		}
		u, err := url.Parse(dir)
		if err != nil {
			return fmt.Errorf("testenv: %w", err)
		}
		if err := e.PublishToPods(u.Host); err != nil {
			return err
		}
	}
	return nil
}

// ImportImage imports an OCI image layout archive into the real node's
// containerd, as Start does for busybox and pause: under the names its
// index.json gives that start with name (REGISTRY/REPO), and as
// name@DIGEST for each image of the archive (ctr's --digests), which is
// what a pod's image pinned by digest resolves to, so the kubelet finds it
// without pulling. An error for a simulated node, which runs no images.
func (e *Env) ImportImage(ctx context.Context, file, name string) error {
	if !e.RealNode {
		return errors.New("testenv: import image: the simulated node runs no images")
	}
	n := newRealNode(e.Dir)
	cmd := exec.CommandContext(ctx, ctrBin, "--address", n.containerdSock(), "--namespace", "k8s.io",
		"images", "import", "--base-name", name, "--digests", file)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("testenv: import %s: %w: %s", file, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// PodLog returns what a container of the real node's pod wrote, from the
// kubelet's log files (CRI format, podLogsDir/NS_POD_UID/CONTAINER/N.log):
// kubectl logs goes through the kubelet's address, which does not resolve
// here.
func (e *Env) PodLog(ns, pod, uid, container string) (string, error) {
	files, err := filepath.Glob(newRealNode(e.Dir).path("pod-logs", ns+"_"+pod+"_"+uid, container, "*.log"))
	if err != nil || len(files) == 0 {
		return "", fmt.Errorf("testenv: no log of %s/%s container %s", ns, pod, container)
	}
	sort.Strings(files)
	var b strings.Builder
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("testenv: %w", err)
		}
		for _, line := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
			// TIMESTAMP STREAM P|F MESSAGE; P is a partial line.
			f := strings.SplitN(line, " ", 4)
			if len(f) < 4 {
				continue
			}
			b.WriteString(f[3])
			if f[2] != "P" {
				b.WriteByte('\n')
			}
		}
	}
	return b.String(), nil
}

// PublishToPods makes 127.0.0.1:PORT on the host reachable from every pod
// of the real node at the same address, as it is for the ACME servers:
// for a test's own server in front of a CA, whose address an Issuer
// records. A no-op for a simulated node, which has no such proxy (its pods
// run busybox for the solvers only).
func (e *Env) PublishToPods(addr string) error {
	if !e.RealNode {
		return nil
	}
	if err := cni.CallProxy(newRealNode(e.Dir).proxySocket(), cni.ProxyRequest{Op: "publish", Addr: addr}); err != nil {
		return fmt.Errorf("testenv: publish %s to pods: %w", addr, err)
	}
	return nil
}

// UnpublishFromPods undoes PublishToPods.
func (e *Env) UnpublishFromPods(addr string) error {
	if !e.RealNode {
		return nil
	}
	if err := cni.CallProxy(newRealNode(e.Dir).proxySocket(), cni.ProxyRequest{Op: "unpublish", Addr: addr}); err != nil {
		return fmt.Errorf("testenv: unpublish %s: %w", addr, err)
	}
	return nil
}

func (e *Env) startScheduler(ctx context.Context, o Options) error {
	port, err := e.freePort()
	if err != nil {
		return err
	}
	args := []string{
		"--kubeconfig=" + e.Kubeconfig,
		"--authentication-kubeconfig=" + e.Kubeconfig,
		"--authorization-kubeconfig=" + e.Kubeconfig,
		"--leader-elect=false",
		"--bind-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", port),
		"--cert-dir=" + newRealNode(e.Dir).path("kube-scheduler"),
	}
	// Its serving certificate is self-signed; only the answer matters.
	httpc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	return e.retryOnce(ctx, "kube-scheduler", func() error {
		return e.launch(ctx, o, "kube-scheduler", args, nil, 60*time.Second, func(ctx context.Context) error {
			_, err := get(ctx, httpc, fmt.Sprintf("https://127.0.0.1:%d/healthz", port), "")
			return err
		})
	})
}

// containerdConfig is containerd 1.6's version 2 configuration with every
// path in the node's directory. restrict_oom_score_adj: root here lacks
// CAP_SYS_RESOURCE, so runc could not lower the sandbox's oom_score_adj;
// disable_apparmor: the machine has no AppArmor.
func containerdConfig(n realNode) string {
	q := strconv.Quote
	return `version = 2
root = ` + q(n.path("containerd", "root")) + `
state = ` + q(n.path("containerd", "state")) + `
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = ` + q(n.containerdSock()) + `

[ttrpc]
  address = ` + q(n.path("containerd", "containerd.sock.ttrpc")) + `

[plugins."io.containerd.internal.v1.opt"]
  path = ` + q(n.path("opt")) + `

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = ` + q(PauseImage) + `
  restrict_oom_score_adj = true
  disable_apparmor = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = ` + q(runcBin) + `
        SystemdCgroup = false
        Root = ` + q(n.path("runc")) + `
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = ` + q(n.path("cni", "bin")) + `
    conf_dir = ` + q(n.path("cni", "conf")) + `
    max_conf_num = 1
`
}

func (e *Env) startContainerd(ctx context.Context, o Options, n realNode) error {
	// The plugin is command testenv under the two names containerd runs.
	for _, name := range []string{cni.Type, "loopback"} {
		if err := os.Symlink(o.TestenvBinary, n.path("cni", "bin", name)); err != nil {
			return fmt.Errorf("testenv: install CNI plugin: %w", err)
		}
	}
	conf, err := json.Marshal(map[string]any{
		"cniVersion": "0.4.0",
		"name":       "testenv",
		"plugins":    []cni.Config{{Type: cni.Type, Subnet: n.subnet, DataDir: n.cniDataDir(), ProxySocket: n.proxySocket()}},
	})
	if err != nil {
		return err
	}
	if err := os.WriteFile(n.path("cni", "conf", "10-testenv.conflist"), conf, 0o644); err != nil {
		return fmt.Errorf("testenv: %w", err)
	}
	cfgFile := n.path("containerd", "config.toml")
	if err := os.WriteFile(cfgFile, []byte(containerdConfig(n)), 0o644); err != nil {
		return fmt.Errorf("testenv: %w", err)
	}
	ctr := func(ctx context.Context, args ...string) error {
		cmd := exec.CommandContext(ctx, ctrBin, append([]string{"--address", n.containerdSock(), "--namespace", "k8s.io"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	err = e.launchBinary(ctx, o, "containerd", containerdBin, []string{"--config", cfgFile, "--log-level", "warn"}, nil, 30*time.Second, func(ctx context.Context) error {
		return ctr(ctx, "version")
	})
	if err != nil {
		return err
	}
	images := []struct {
		file  string
		names []string
		build func(string) ([]imageFile, imageConfig, error)
		from  string
	}{
		{n.path("images", "busybox.tar"), BusyboxImages, busyboxImage, o.Busybox},
		{n.path("images", "pause.tar"), []string{PauseImage}, pauseImage, o.PauseBinary},
	}
	for _, img := range images {
		files, cfg, err := img.build(img.from)
		if err != nil {
			return fmt.Errorf("testenv: %w", err)
		}
		if err := writeImage(img.file, img.names, files, cfg); err != nil {
			return fmt.Errorf("testenv: %w", err)
		}
		if err := ctr(ctx, "images", "import", img.file); err != nil {
			return fmt.Errorf("testenv: import %s: %w", img.file, err)
		}
	}
	return nil
}

// kubeletConfig is the kubelet's configuration for this machine: cgroup v1
// only (failCgroupV1: false), swap on, no iptables, loopback ports only,
// and eviction thresholds low enough that a busy disk does not taint the
// node. podLogsDir and the root dir keep its files in the node directory.
// syncFrequency is 5 s instead of 1 min: a changed ConfigMap reaches a
// pod's volume only at the next periodic sync (the ConfigMap concept
// page's "Mounted ConfigMaps are updated automatically"), and tests wait
// for that.
func kubeletConfig(n realNode, port, healthz int) string {
	q := strconv.Quote
	return `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: ` + strconv.Itoa(port) + `
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: ` + strconv.Itoa(healthz) + `
authentication:
  anonymous:
    enabled: true
  webhook:
    enabled: false
authorization:
  mode: AlwaysAllow
containerRuntimeEndpoint: ` + q("unix://"+n.containerdSock()) + `
cgroupDriver: cgroupfs
cgroupRoot: ` + q(n.cgroupRoot) + `
failCgroupV1: false
failSwapOn: false
makeIPTablesUtilChains: false
podLogsDir: ` + q(n.path("pod-logs")) + `
resolvConf: ""
serializeImagePulls: false
syncFrequency: 5s
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 1Mi
  nodefs.available: "1%"
  nodefs.inodesFree: "1%"
  imagefs.available: "1%"
  imagefs.inodesFree: "1%"
`
}

func (e *Env) startKubelet(ctx context.Context, o Options, n realNode) error {
	if err := registerSysctls(n); err != nil {
		return err
	}
	if err := createCgroupRoot(n.cgroupRoot); err != nil {
		return err
	}
	port, err := e.freePort()
	if err != nil {
		return err
	}
	healthz, err := e.freePort()
	if err != nil {
		return err
	}
	cfgFile := n.path("kubelet.yaml")
	if err := os.WriteFile(cfgFile, []byte(kubeletConfig(n, port, healthz)), 0o644); err != nil {
		return fmt.Errorf("testenv: %w", err)
	}
	args := []string{
		"--config=" + cfgFile,
		"--kubeconfig=" + e.Kubeconfig,
		"--root-dir=" + n.path("kubelet"),
		// Its default is /var/lib/kubelet/pki, whatever the root dir.
		"--cert-dir=" + n.path("kubelet", "pki"),
		"--hostname-override=" + e.NodeName,
		"--v=1",
	}
	client, err := e.Client()
	if err != nil {
		return err
	}
	return e.launch(ctx, o, "kubelet", args, nil, 90*time.Second, func(ctx context.Context) error {
		node, err := client.CoreV1().Nodes().Get(ctx, e.NodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		// Pods are scheduled once the node lifecycle controller has
		// lifted the taint the kubelet registered the node with.
		for _, t := range node.Spec.Taints {
			if t.Key == corev1.TaintNodeNotReady {
				return fmt.Errorf("node %s has taint %s", e.NodeName, t.Key)
			}
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return nil
			}
		}
		return fmt.Errorf("node %s not Ready", e.NodeName)
	})
}

// cgroupHierarchies lists the mounted cgroup v1 hierarchies.
func cgroupHierarchies() ([]string, error) {
	entries, err := os.ReadDir("/sys/fs/cgroup")
	if err != nil {
		return nil, fmt.Errorf("list cgroup hierarchies: %w", err)
	}
	var dirs []string
	for _, en := range entries {
		d := filepath.Join("/sys/fs/cgroup", en.Name())
		if fi, err := os.Lstat(d); err == nil && fi.IsDir() {
			dirs = append(dirs, d)
		}
	}
	return dirs, nil
}

// createCgroupRoot makes the kubelet's cgroupRoot in every hierarchy, which
// the kubelet wants to exist. A new cpuset cgroup has no CPUs or memory
// nodes until given its parent's.
func createCgroupRoot(root string) error {
	dirs, err := cgroupHierarchies()
	if err != nil {
		return err
	}
	for _, h := range dirs {
		d := filepath.Join(h, root)
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("testenv: create cgroup %s: %w", d, err)
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			v, err := os.ReadFile(filepath.Join(h, f))
			if err != nil {
				continue // not the cpuset hierarchy
			}
			if err := os.WriteFile(filepath.Join(d, f), v, 0o644); err != nil {
				return fmt.Errorf("testenv: set %s: %w", filepath.Join(d, f), err)
			}
		}
	}
	return nil
}

func readSysctls() (map[string]string, error) {
	vals := map[string]string{}
	for _, k := range kubeletSysctls {
		v, err := os.ReadFile(filepath.Join("/proc/sys", k))
		if err != nil {
			return nil, fmt.Errorf("read sysctl %s: %w", k, err)
		}
		vals[k] = strings.TrimSpace(string(v))
	}
	return vals, nil
}

func lockSysctlRegistry() (func(), error) {
	if err := os.MkdirAll(filepath.Join(sysctlRegistry, "users"), 0o755); err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(sysctlRegistry, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("testenv: lock %s: %w", sysctlRegistry, err)
	}
	return func() { f.Close() }, nil
}

// registerSysctls records the machine's values if no real node runs yet,
// and this environment as one that does.
func registerSysctls(n realNode) error {
	unlock, err := lockSysctlRegistry()
	if err != nil {
		return err
	}
	defer unlock()
	orig := filepath.Join(sysctlRegistry, "sysctls.json")
	if _, err := os.Stat(orig); errors.Is(err, os.ErrNotExist) {
		vals, err := readSysctls()
		if err != nil {
			return fmt.Errorf("testenv: %w", err)
		}
		data, err := json.Marshal(vals)
		if err != nil {
			return err
		}
		if err := writeFileAtomic(orig, data, 0o644); err != nil {
			return fmt.Errorf("testenv: %w", err)
		}
	}
	return os.WriteFile(filepath.Join(sysctlRegistry, "users", n.id), []byte(filepath.Dir(n.dir)), 0o644)
}

// unregisterSysctls drops this environment, and environments whose
// directory is gone, and restores the values when none is left.
func unregisterSysctls(n realNode) error {
	if _, err := os.Stat(sysctlRegistry); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	unlock, err := lockSysctlRegistry()
	if err != nil {
		return err
	}
	defer unlock()
	users := filepath.Join(sysctlRegistry, "users")
	_ = os.Remove(filepath.Join(users, n.id))
	entries, err := os.ReadDir(users)
	if err != nil {
		return fmt.Errorf("testenv: %w", err)
	}
	left := 0
	for _, en := range entries {
		dir, err := os.ReadFile(filepath.Join(users, en.Name()))
		if err == nil {
			if _, err := os.Stat(filepath.Join(string(dir), realNodeDir, "kubelet.yaml")); err == nil {
				left++
				continue
			}
		}
		_ = os.Remove(filepath.Join(users, en.Name()))
	}
	if left > 0 {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(sysctlRegistry, "sysctls.json"))
	if err == nil {
		var vals map[string]string
		if err := json.Unmarshal(data, &vals); err != nil {
			return fmt.Errorf("testenv: parse saved sysctls: %w", err)
		}
		for k, v := range vals {
			if err := os.WriteFile(filepath.Join("/proc/sys", k), []byte(v), 0o644); err != nil {
				return fmt.Errorf("testenv: restore sysctl %s: %w", k, err)
			}
		}
	}
	// The lock file goes with the directory; a waiter locks a fresh one.
	return os.RemoveAll(sysctlRegistry)
}

// cleanupRealNode undoes what a real node leaves once its programs are
// stopped: containers and shims still running, mounts, network namespaces,
// cgroups, containerd's sockets in /run, the kubelet's log links, the
// sysctls. It is safe to call for an environment without a real node.
func cleanupRealNode(envDir string) error {
	n := newRealNode(envDir)
	if _, err := os.Stat(n.path("kubelet.yaml")); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	var errs []error
	// Containers, in the node's cgroups, and their shims, whose command
	// line names the node's containerd socket.
	for range 3 {
		pids := cgroupProcs(n.cgroupRoot)
		pids = append(pids, procsMentioning(n.dir)...)
		if len(pids) == 0 {
			break
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(200 * time.Millisecond)
	}
	recs, err := cni.Records(n.cniDataDir())
	if err != nil {
		errs = append(errs, err)
	}
	var netns []string
	for _, r := range recs {
		// containerd says /var/run/netns, a link to /run/netns here,
		// and mountinfo has the resolved path.
		ns := r.NetNS
		if dir, err := filepath.EvalSymlinks(filepath.Dir(ns)); err == nil {
			ns = filepath.Join(dir, filepath.Base(ns))
		}
		netns = append(netns, ns)
	}
	errs = append(errs, unmountUnder(n.dir, netns))
	for _, ns := range netns {
		if err := os.Remove(ns); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove netns %s: %w", ns, err))
		}
	}
	errs = append(errs, removeCgroupRoot(n.cgroupRoot))
	removeStaleShimSockets()
	removeCNICache(n)
	removeDevicePluginSocket()
	removeLogLinks(n.dir)
	// Left empty by mount(8), which the kubelet runs for tmpfs volumes
	// (util-linux libmount keeps its utab lock there), and by containerd
	// (pkg/netns) for network namespaces; rmdir fails if not empty.
	_ = os.Remove("/run/mount")
	_ = os.Remove("/run/netns")
	errs = append(errs, unregisterSysctls(n))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("testenv: clean up the real node: %w", err)
	}
	return nil
}

// cgroupProcs lists the processes in root's subtree of the pids hierarchy.
func cgroupProcs(root string) []int {
	var pids []int
	_ = filepath.WalkDir(filepath.Join("/sys/fs/cgroup/pids", root), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
			return nil
		}
		data, _ := os.ReadFile(p)
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids
}

// procsMentioning lists processes whose command line contains dir.
func procsMentioning(dir string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	self := os.Getpid()
	for _, en := range entries {
		pid, err := strconv.Atoi(en.Name())
		if err != nil || pid == self {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", en.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmdline), dir+"/") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// MountsUnder lists the mount points under dir and those in extra, from
// /proc/self/mountinfo, deepest first.
func mountsUnder(dir string, extra []string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var mounts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		// Octal escapes (\040 for a space) do not occur in our paths.
		mp := fields[4]
		if strings.HasPrefix(mp, dir+"/") || slices.Contains(extra, mp) {
			mounts = append(mounts, mp)
		}
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i]) > len(mounts[j]) })
	return mounts, sc.Err()
}

func unmountUnder(dir string, extra []string) error {
	mounts, err := mountsUnder(dir, extra)
	if err != nil {
		return fmt.Errorf("list mounts: %w", err)
	}
	var errs []error
	for _, mp := range mounts {
		if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", mp, err))
		}
	}
	return errors.Join(errs...)
}

// removeCgroupRoot removes root's subtree in every hierarchy, children
// first; a cgroup whose last process was just killed may take a moment.
func removeCgroupRoot(root string) error {
	dirs, err := cgroupHierarchies()
	if err != nil {
		return err
	}
	var errs []error
	for _, h := range dirs {
		top := filepath.Join(h, root)
		var all []string
		_ = filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				all = append(all, p)
			}
			return nil
		})
		sort.Slice(all, func(i, j int) bool { return len(all[i]) > len(all[j]) })
		for _, d := range all {
			var err error
			for range 20 {
				if err = syscall.Rmdir(d); err == nil || errors.Is(err, syscall.ENOENT) {
					err = nil
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("remove cgroup %s: %w", d, err))
			}
		}
	}
	return errors.Join(errs...)
}

// removeStaleShimSockets removes the sockets in /run/containerd/s (where
// containerd 1.6 puts shim sockets, whatever its state dir) that no shim
// listens on any more, and the directories once empty.
func removeStaleShimSockets() {
	dir := "/run/containerd/s"
	entries, _ := os.ReadDir(dir)
	for _, en := range entries {
		p := filepath.Join(dir, en.Name())
		if !socketListening(p) {
			_ = os.Remove(p)
		}
	}
	_ = os.Remove(dir)
	_ = os.Remove("/run/containerd")
}

// cniCache is where containerd's CNI library (libcni, CacheDir's default)
// keeps each attachment's configuration and result until DEL.
const cniCache = "/var/lib/cni/results"

// cniCacheFiles lists the cached attachments (NETWORK-CONTAINERID-IFNAME)
// of the node's pods that were never deleted: those whose address the
// node's CNI plugin still records.
func cniCacheFiles(n realNode) []string {
	recs, _ := cni.Records(n.cniDataDir())
	entries, _ := os.ReadDir(cniCache)
	var files []string
	for _, en := range entries {
		for _, r := range recs {
			if r.ContainerID != "" && strings.Contains(en.Name(), "-"+r.ContainerID+"-") {
				files = append(files, filepath.Join(cniCache, en.Name()))
			}
		}
	}
	return files
}

func removeCNICache(n realNode) {
	for _, f := range cniCacheFiles(n) {
		_ = os.Remove(f)
	}
	_ = os.Remove(cniCache)
	_ = os.Remove(filepath.Dir(cniCache))
}

// devicePluginSocket is the kubelet's device plugin registration socket,
// a fixed path whatever its root dir (kubernetes
// staging/src/k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1 KubeletSocket).
const devicePluginSocket = "/var/lib/kubelet/device-plugins/kubelet.sock"

// removeDevicePluginSocket removes the socket once no kubelet listens on
// it, and its directories once empty.
func removeDevicePluginSocket() {
	if _, err := os.Lstat(devicePluginSocket); err == nil && !socketListening(devicePluginSocket) {
		_ = os.Remove(devicePluginSocket)
	}
	_ = os.Remove(filepath.Dir(devicePluginSocket))
	_ = os.Remove(filepath.Dir(filepath.Dir(devicePluginSocket)))
}

func socketListening(path string) bool {
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return true
	}
	defer syscall.Close(fd)
	return syscall.Connect(fd, &syscall.SockaddrUnix{Name: path}) == nil
}

// removeLogLinks removes the kubelet's links in /var/log/containers
// (kubernetes pkg/kubelet/kuberuntime ContainerLogsDir) into dir, and the
// directory once empty.
func removeLogLinks(dir string) {
	const logs = "/var/log/containers"
	entries, _ := os.ReadDir(logs)
	for _, en := range entries {
		p := filepath.Join(logs, en.Name())
		if t, err := os.Readlink(p); err == nil && strings.HasPrefix(t, dir+"/") {
			_ = os.Remove(p)
		}
	}
	_ = os.Remove(logs)
}

// KubeletSysctls returns the current values of the sysctls the kubelet
// sets, for a test to compare before and after an environment.
func KubeletSysctls() (map[string]string, error) { return readSysctls() }

// Leftovers lists what a stopped environment's real node left behind:
// processes that mention its directory or run in its cgroups, mounts under
// it, its pods' network namespaces, its cgroups, containerd shim sockets
// nobody listens on, the kubelet's log links into it, its registration as
// a user of the kubelet's sysctls. Empty after Stop. The sysctls are back
// to the machine's when SysctlsShared says no other real node runs.
func SysctlsShared() bool {
	_, err := os.Stat(sysctlRegistry)
	return err == nil
}

// Leftovers is SysctlsShared's companion; see above.
func Leftovers(envDir string) ([]string, error) {
	n := newRealNode(envDir)
	var left []string
	for _, pid := range append(cgroupProcs(n.cgroupRoot), procsMentioning(n.dir)...) {
		cmdline, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		left = append(left, fmt.Sprintf("process %d: %s", pid, strings.ReplaceAll(string(cmdline), "\x00", " ")))
	}
	recs, err := cni.Records(n.cniDataDir())
	if err != nil {
		return nil, err
	}
	var netns []string
	for _, r := range recs {
		if dir, err := filepath.EvalSymlinks(filepath.Dir(r.NetNS)); err == nil {
			netns = append(netns, filepath.Join(dir, filepath.Base(r.NetNS)))
		}
		if _, err := os.Lstat(r.NetNS); err == nil {
			left = append(left, "network namespace "+r.NetNS)
		}
	}
	mounts, err := mountsUnder(n.dir, netns)
	if err != nil {
		return nil, err
	}
	for _, m := range mounts {
		left = append(left, "mount "+m)
	}
	dirs, err := cgroupHierarchies()
	if err != nil {
		return nil, err
	}
	for _, h := range dirs {
		if _, err := os.Stat(filepath.Join(h, n.cgroupRoot)); err == nil {
			left = append(left, "cgroup "+filepath.Join(h, n.cgroupRoot))
		}
	}
	entries, _ := os.ReadDir("/run/containerd/s")
	for _, en := range entries {
		if p := filepath.Join("/run/containerd/s", en.Name()); !socketListening(p) {
			left = append(left, "stale shim socket "+p)
		}
	}
	for _, f := range cniCacheFiles(n) {
		left = append(left, "CNI cache "+f)
	}
	if _, err := os.Lstat(devicePluginSocket); err == nil && !socketListening(devicePluginSocket) {
		left = append(left, "stale kubelet socket "+devicePluginSocket)
	}
	if _, err := os.Stat(filepath.Join(sysctlRegistry, "users", n.id)); err == nil {
		left = append(left, "sysctl registration "+filepath.Join(sysctlRegistry, "users", n.id))
	}
	links, _ := os.ReadDir("/var/log/containers")
	for _, en := range links {
		p := filepath.Join("/var/log/containers", en.Name())
		if t, err := os.Readlink(p); err == nil && strings.HasPrefix(t, n.dir+"/") {
			left = append(left, "log link "+p)
		}
	}
	return left, nil
}

// NodeRunsPod reports whether the real node still has the pod's cgroup
// (the kubelet's cgroupfs naming, pod<UID>, under its QoS class): it goes
// once the pod's containers have stopped, which, for a pod deleted with
// grace period 0, is after the API object is gone.
func (e *Env) NodeRunsPod(uid string) bool {
	found := false
	root := filepath.Join("/sys/fs/cgroup/pids", newRealNode(e.Dir).cgroupRoot)
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if d.Name() == "pod"+uid {
			found = true
			return filepath.SkipAll
		}
		return nil
	})
	return found
}
