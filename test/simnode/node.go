package simnode

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

const (
	leaseDuration = 40 * time.Second
	leaseRenew    = 10 * time.Second
	// statusReport is how often the Ready condition's heartbeat is
	// refreshed; the lease is what keeps the node alive.
	statusReport = time.Minute
)

func nodeCapacity() corev1.ResourceList {
	return corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("8"),
		corev1.ResourceMemory:           resource.MustParse("32Gi"),
		corev1.ResourcePods:             resource.MustParse("110"),
		corev1.ResourceEphemeralStorage: resource.MustParse("100Gi"),
	}
}

// nodeStatus is a kubelet-like status: Ready, no pressure, loopback address.
// No Hostname address is published: the API server would try to resolve
// the node name through DNS to reach the kubelet port.
func nodeStatus(name, hostIP string, kubeletPort int, prev *corev1.NodeStatus) corev1.NodeStatus {
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	kernel := strings.TrimRight(string(uts.Release[:]), "\x00")
	cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		c := corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now}
		if prev != nil {
			for _, p := range prev.Conditions {
				if p.Type == t && p.Status == s {
					c.LastTransitionTime = p.LastTransitionTime
				}
			}
		}
		return c
	}
	return corev1.NodeStatus{
		Capacity:    nodeCapacity(),
		Allocatable: nodeCapacity(),
		Phase:       corev1.NodeRunning,
		Conditions: []corev1.NodeCondition{
			cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
			cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
			cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
			cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status"),
		},
		Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: hostIP}},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{
			KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(kubeletPort)},
		},
		NodeInfo: corev1.NodeSystemInfo{
			MachineID:               "simnode-" + name,
			SystemUUID:              "simnode-" + name,
			BootID:                  "simnode-" + name,
			KernelVersion:           kernel,
			OSImage:                 "simnode (busybox processes)",
			ContainerRuntimeVersion: "simnode://0.1.0",
			KubeletVersion:          "v1.37.2",
			OperatingSystem:         "linux",
			Architecture:            runtime.GOARCH,
		},
	}
}

func nodeLabels(name string) map[string]string {
	return map[string]string{
		"kubernetes.io/hostname":  name,
		"kubernetes.io/os":        "linux",
		"kubernetes.io/arch":      runtime.GOARCH,
		"beta.kubernetes.io/os":   "linux",
		"beta.kubernetes.io/arch": runtime.GOARCH,
	}
}

// registerNode creates the Node, or takes over an existing one, and marks
// it Ready.
func registerNode(ctx context.Context, cs kubernetes.Interface, name, hostIP string, kubeletPort int) (*corev1.Node, error) {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:   name,
			Labels: nodeLabels(name),
			Annotations: map[string]string{
				"node.alpha.kubernetes.io/ttl":                           "0",
				"volumes.kubernetes.io/controller-managed-attach-detach": "true",
			},
		},
	}
	created, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	switch {
	case apierrors.IsAlreadyExists(err):
		created, err = cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("get existing node: %w", err)
		}
	case err != nil:
		return nil, fmt.Errorf("create node: %w", err)
	}
	created.Status = nodeStatus(name, hostIP, kubeletPort, &created.Status)
	updated, err := cs.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("set node status: %w", err)
	}
	// The TaintNodesByCondition admission plugin gives new nodes the
	// not-ready taint; the node lifecycle controller removes it once the
	// node is Ready. Do that here for our own node, as that controller may
	// not run.
	var taints []corev1.Taint
	for _, t := range updated.Spec.Taints {
		if t.Key != corev1.TaintNodeNotReady || t.Effect != corev1.TaintEffectNoSchedule {
			taints = append(taints, t)
		}
	}
	if len(taints) != len(updated.Spec.Taints) {
		updated.Spec.Taints = taints
		if updated, err = cs.CoreV1().Nodes().Update(ctx, updated, metav1.UpdateOptions{}); err != nil {
			return nil, fmt.Errorf("remove not-ready taint: %w", err)
		}
	}
	return updated, nil
}

// heartbeat renews the node lease like the kubelet (every 10s, 40s
// duration) so the node lifecycle controller keeps the node Ready, and
// refreshes the status now and then. A deleted node is registered again.
func heartbeat(ctx context.Context, cs kubernetes.Interface, name, hostIP string, kubeletPort int, log *slog.Logger) {
	renew := time.NewTicker(leaseRenew)
	defer renew.Stop()
	lastStatus := time.Now()
	for {
		if err := renewLease(ctx, cs, name); err != nil && ctx.Err() == nil {
			log.Error("renew node lease", "err", err)
		}
		if time.Since(lastStatus) >= statusReport {
			lastStatus = time.Now()
			if _, err := registerNode(ctx, cs, name, hostIP, kubeletPort); err != nil && ctx.Err() == nil {
				log.Error("update node status", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-renew.C:
		}
	}
}

func renewLease(ctx context.Context, cs kubernetes.Interface, name string) error {
	leases := cs.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	dur := int32(leaseDuration / time.Second)
	lease, err := leases.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		node, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("get node for lease owner: %w", err)
		}
		lease = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{
				Name: name,
				OwnerReferences: []metav1.OwnerReference{{
					APIVersion: "v1", Kind: "Node", Name: name, UID: node.UID,
				}},
			},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: &name, LeaseDurationSeconds: &dur, RenewTime: &now},
		}
		if _, err := leases.Create(ctx, lease, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create lease: %w", err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("get lease: %w", err)
	}
	lease.Spec.HolderIdentity, lease.Spec.LeaseDurationSeconds, lease.Spec.RenewTime = &name, &dur, &now
	if _, err := leases.Update(ctx, lease, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update lease: %w", err)
	}
	return nil
}
