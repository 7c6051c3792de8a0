// Package cni is the real node's CNI plugin (test/env's TESTENV_NODE=real).
// containerd runs it, as it runs any plugin, by the name in the network
// configuration's "type" ("testenv-cni") or as "loopback" for the sandbox's
// lo: command testenv turns into it when called by either name.
//
// Each pod gets an address from the configuration's loopback "subnet" (a
// /22 of 127.0.0.0/8 per environment, so two environments on one machine
// never share pod IPs) on eth0, one end of a veth pair whose two ends both
// stay in the pod's network namespace: this machine routes nothing but
// loopback, and containerd's CRI takes the pod IP from the eth0 interface
// the plugin reports (containerd pkg/cri/server/sandbox_run.go,
// selectPodIPs). Traffic from the host reaches the pod through simnode's
// forwarder (test/simnode podnet.go), which looks the pod's network
// namespace up in the records this plugin keeps: one file per address in
// the configuration's "dataDir". Traffic from the pod to the kubernetes
// Service and to the ACME servers on the host goes through Proxy
// (proxy.go), which ADD sets up before the pod's containers start.
//
// The protocol is the CNI specification's (github.com/containernetworking/
// cni SPEC.md): the command in CNI_COMMAND, the configuration on stdin, the
// result or an error object on stdout.
package cni

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// Type is the "type" of the pod network in the configuration.
const Type = "testenv-cni"

// PodInterface is the pod's interface; CRI looks for eth0.
const PodInterface = "eth0"

const specVersion = "0.4.0"

// Config is the network configuration's part the plugin reads.
type Config struct {
	CNIVersion string `json:"cniVersion"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	// Subnet is an IPv4 CIDR inside 127.0.0.0/8 to take pod IPs from.
	Subnet string `json:"subnet,omitempty"`
	// DataDir holds the address records.
	DataDir string `json:"dataDir,omitempty"`
	// ProxySocket, when set, is the unix socket of the node's Proxy
	// (proxy.go): ADD returns once it serves the pod's namespace, before
	// the pod's containers start, and DEL tells it the namespace goes.
	ProxySocket string `json:"proxySocket,omitempty"`
}

// Record is what the plugin keeps of one pod's address.
type Record struct {
	IP          string `json:"ip"`
	ContainerID string `json:"containerID"`
	NetNS       string `json:"netns"`
}

// Main runs one plugin invocation and returns the process's exit code.
func Main(stdin io.Reader, stdout io.Writer) int {
	res, err := run(os.Getenv("CNI_COMMAND"), stdin)
	if err != nil {
		// The specification's error object; code 999 is "other".
		_ = json.NewEncoder(stdout).Encode(map[string]any{"cniVersion": specVersion, "code": 999, "msg": err.Error()})
		return 1
	}
	if res != nil {
		if err := json.NewEncoder(stdout).Encode(res); err != nil {
			return 1
		}
	}
	return 0
}

func run(command string, stdin io.Reader) (any, error) {
	if command == "VERSION" {
		return map[string]any{"cniVersion": specVersion, "supportedVersions": []string{"0.3.0", "0.3.1", "0.4.0"}}, nil
	}
	data, err := io.ReadAll(stdin)
	if err != nil {
		return nil, fmt.Errorf("read network configuration: %w", err)
	}
	var cfg Config
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("parse network configuration: %w", err)
	}
	if cfg.CNIVersion == "" {
		cfg.CNIVersion = specVersion
	}
	id, netns := os.Getenv("CNI_CONTAINERID"), os.Getenv("CNI_NETNS")
	switch command {
	case "ADD":
		if cfg.Type == "loopback" {
			return addLoopback(cfg, netns)
		}
		return add(cfg, id, netns)
	case "DEL":
		if cfg.Type == "loopback" {
			return nil, nil // lo goes with the namespace
		}
		if cfg.ProxySocket != "" {
			// Best effort: DEL must succeed however often it is repeated,
			// and the proxy also drops pods whose record is gone.
			_ = CallProxy(cfg.ProxySocket, ProxyRequest{Op: "del", ContainerID: id})
		}
		return nil, release(cfg, id)
	case "CHECK":
		return nil, nil
	}
	return nil, fmt.Errorf("unknown CNI_COMMAND %q", command)
}

// addLoopback is what the reference loopback plugin does
// (containernetworking/plugins plugins/main/loopback): lo up.
func addLoopback(cfg Config, netns string) (any, error) {
	if err := inNetNS(netns, "ip", "link", "set", "lo", "up"); err != nil {
		return nil, err
	}
	return map[string]any{
		"cniVersion": cfg.CNIVersion,
		"interfaces": []map[string]string{{"name": "lo", "sandbox": netns}},
		"ips":        []map[string]any{{"version": "4", "address": "127.0.0.1/8", "interface": 0}},
	}, nil
}

func add(cfg Config, id, netns string) (_ any, err error) {
	if id == "" || netns == "" {
		return nil, errors.New("CNI_CONTAINERID and CNI_NETNS are required")
	}
	ip, err := allocate(cfg, id, netns)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, release(cfg, id))
		}
	}()
	// Both ends in the pod's namespace: see the package comment.
	steps := [][]string{
		{"ip", "link", "set", "lo", "up"},
		{"ip", "link", "add", PodInterface, "type", "veth", "peer", "name", "veth0"},
		{"ip", "addr", "add", ip + "/32", "dev", PodInterface},
		{"ip", "link", "set", "veth0", "up"},
		{"ip", "link", "set", PodInterface, "up"},
	}
	for _, s := range steps {
		if err := inNetNS(netns, s...); err != nil {
			return nil, err
		}
	}
	if cfg.ProxySocket != "" {
		if err := CallProxy(cfg.ProxySocket, ProxyRequest{Op: "add", ContainerID: id, NetNS: netns}); err != nil {
			return nil, err
		}
	}
	return map[string]any{
		"cniVersion": cfg.CNIVersion,
		"interfaces": []map[string]string{{"name": PodInterface, "sandbox": netns}},
		"ips":        []map[string]any{{"version": "4", "address": ip + "/32", "interface": 0}},
	}, nil
}

// inNetNS runs a command in the network namespace bound at netns.
func inNetNS(netns string, argv ...string) error {
	cmd := exec.Command("nsenter", append([]string{"--net=" + netns}, argv...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s in %s: %w: %s", strings.Join(argv, " "), netns, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// allocate takes the lowest free address of the subnet, under a lock of
// the data directory, and records it.
func allocate(cfg Config, id, netns string) (string, error) {
	_, subnet, err := net.ParseCIDR(cfg.Subnet)
	if err != nil || subnet.IP.To4() == nil || subnet.IP.To4()[0] != 127 {
		return "", fmt.Errorf("subnet %q: want an IPv4 CIDR inside 127.0.0.0/8", cfg.Subnet)
	}
	unlock, err := lock(cfg.DataDir)
	if err != nil {
		return "", err
	}
	defer unlock()
	recs, err := Records(cfg.DataDir)
	if err != nil {
		return "", err
	}
	used := map[string]bool{}
	for _, r := range recs {
		if r.ContainerID == id {
			return r.IP, nil // a repeated ADD
		}
		used[r.IP] = true
	}
	base := binary.BigEndian.Uint32(subnet.IP.To4())
	ones, bits := subnet.Mask.Size()
	size := uint32(1) << (bits - ones)
	// Skip the network and broadcast addresses, as host-local IPAM does.
	for i := uint32(1); i+1 < size; i++ {
		ip := make(net.IP, 4)
		binary.BigEndian.PutUint32(ip, base+i)
		if used[ip.String()] {
			continue
		}
		data, err := json.Marshal(Record{IP: ip.String(), ContainerID: id, NetNS: netns})
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(cfg.DataDir, ip.String()), data, 0o644); err != nil {
			return "", fmt.Errorf("record pod IP: %w", err)
		}
		return ip.String(), nil
	}
	return "", fmt.Errorf("no free address in %s", cfg.Subnet)
}

// release forgets the container's address; releasing twice is no error, as
// the specification asks of DEL.
func release(cfg Config, id string) error {
	unlock, err := lock(cfg.DataDir)
	if err != nil {
		return err
	}
	defer unlock()
	recs, err := Records(cfg.DataDir)
	if err != nil {
		return err
	}
	for _, r := range recs {
		if r.ContainerID == id {
			if err := os.Remove(filepath.Join(cfg.DataDir, r.IP)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("release pod IP: %w", err)
			}
		}
	}
	return nil
}

func lock(dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create CNI data dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock CNI data dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock CNI data dir: %w", err)
	}
	return func() { f.Close() }, nil
}

// Records lists the addresses in use, as recorded in dataDir.
func Records(dataDir string) ([]Record, error) {
	entries, err := os.ReadDir(dataDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read CNI data dir: %w", err)
	}
	var recs []Record
	for _, e := range entries {
		if net.ParseIP(e.Name()) == nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dataDir, e.Name()))
		if errors.Is(err, os.ErrNotExist) {
			continue // released meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("read CNI record: %w", err)
		}
		var r Record
		if err := json.Unmarshal(data, &r); err != nil {
			return nil, fmt.Errorf("parse CNI record %s: %w", e.Name(), err)
		}
		recs = append(recs, r)
	}
	return recs, nil
}

// Lookup returns the record of a pod IP.
func Lookup(dataDir, ip string) (Record, error) {
	data, err := os.ReadFile(filepath.Join(dataDir, ip))
	if err != nil {
		return Record{}, fmt.Errorf("pod IP %s: %w", ip, err)
	}
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return Record{}, fmt.Errorf("parse CNI record %s: %w", ip, err)
	}
	return r, nil
}
