package simnode

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/record"
)

// kubelet runs the pods bound to one node as local processes.
type kubelet struct {
	cs      kubernetes.Interface
	node    string
	hostIP  string
	workDir string
	busybox string // a private copy, hardlinked into pod roots
	applets []string
	isApp   map[string]bool
	nss     *nsSwitcher
	src     objectSource
	rec     record.EventRecorder
	log     *slog.Logger

	mu      sync.Mutex
	workers map[types.UID]*podWorker
	byIP    map[string]types.UID
	nextIP  uint32
	wg      sync.WaitGroup
}

// listerSource reads API objects from informer caches.
type listerSource struct {
	cms  corelisters.ConfigMapLister
	secs corelisters.SecretLister
	svcs corelisters.ServiceLister
}

func (l listerSource) ConfigMap(ns, name string) (*corev1.ConfigMap, error) {
	return l.cms.ConfigMaps(ns).Get(name)
}

func (l listerSource) Secret(ns, name string) (*corev1.Secret, error) {
	return l.secs.Secrets(ns).Get(name)
}

func (l listerSource) Services(ns string) ([]*corev1.Service, error) {
	return l.svcs.Services(ns).List(labels.Everything())
}

// podUpdated hands a pod bound to this node to its worker, starting one
// for a pod seen for the first time.
func (k *kubelet) podUpdated(ctx context.Context, pod *corev1.Pod) {
	if pod.Spec.NodeName != k.node {
		return
	}
	k.mu.Lock()
	w, ok := k.workers[pod.UID]
	if !ok {
		w = &podWorker{
			k:      k,
			uid:    pod.UID,
			pod:    pod,
			log:    k.log.With("pod", pod.Namespace+"/"+pod.Name),
			kickc:  make(chan struct{}, 1),
			ctrs:   map[string]*ctr{},
			tokens: map[string]cachedToken{},
		}
		k.workers[pod.UID] = w
		k.wg.Add(1)
		go func() {
			defer k.wg.Done()
			w.run(ctx)
		}()
	}
	k.mu.Unlock()
	w.update(pod, false)
}

func (k *kubelet) podDeleted(pod *corev1.Pod) {
	k.mu.Lock()
	w := k.workers[pod.UID]
	k.mu.Unlock()
	if w != nil {
		w.update(pod, true)
	}
}

// kickUsers makes the workers of pods that use a ConfigMap or Secret
// re-read it, so volumes follow changes and waiting pods start once it
// appears.
func (k *kubelet) kickUsers(kind, ns, name string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, w := range k.workers {
		w.mu.Lock()
		pod := w.pod
		w.mu.Unlock()
		if pod.Namespace == ns && podUses(pod, kind, name) {
			w.kick()
		}
	}
}

// podUses reports whether pod refers to the ConfigMap or Secret in a
// volume, a projected source, env or envFrom.
func podUses(pod *corev1.Pod, kind, name string) bool {
	cm, sec := kind == "ConfigMap", kind == "Secret"
	for _, v := range pod.Spec.Volumes {
		switch {
		case cm && v.ConfigMap != nil && v.ConfigMap.Name == name,
			sec && v.Secret != nil && v.Secret.SecretName == name:
			return true
		case v.Projected != nil:
			for _, src := range v.Projected.Sources {
				if cm && src.ConfigMap != nil && src.ConfigMap.Name == name ||
					sec && src.Secret != nil && src.Secret.Name == name {
					return true
				}
			}
		}
	}
	all := append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...)
	for _, c := range all {
		for _, f := range c.EnvFrom {
			if cm && f.ConfigMapRef != nil && f.ConfigMapRef.Name == name ||
				sec && f.SecretRef != nil && f.SecretRef.Name == name {
				return true
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				continue
			}
			if cm && e.ValueFrom.ConfigMapKeyRef != nil && e.ValueFrom.ConfigMapKeyRef.Name == name ||
				sec && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == name {
				return true
			}
		}
	}
	return false
}

func (k *kubelet) removeWorker(uid types.UID) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.workers, uid)
}

// allocateIP hands out a pod IP from 127.1.0.0/16. The address is only an
// identity: traffic to it is dialed inside the pod's network namespace.
func (k *kubelet) allocateIP(uid types.UID) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	const size = 1<<16 - 2
	for range size {
		k.nextIP = k.nextIP%size + 1
		ip := net.IPv4(127, 1, byte(k.nextIP>>8), byte(k.nextIP)).String()
		if k.nextIP&0xff == 0 || k.nextIP&0xff == 0xff {
			continue
		}
		if _, used := k.byIP[ip]; !used {
			k.byIP[ip] = uid
			return ip, nil
		}
	}
	return "", errors.New("pod IP range 127.1.0.0/16 exhausted")
}

func (k *kubelet) releaseIP(ip string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.byIP, ip)
}

// dialPod connects to port on a pod, from inside the pod's network
// namespace, the only place where the pod's listeners can be reached.
func (k *kubelet) dialPod(ctx context.Context, uid types.UID, port int) (net.Conn, error) {
	k.mu.Lock()
	w := k.workers[uid]
	k.mu.Unlock()
	if w == nil {
		return nil, fmt.Errorf("pod %s does not run on this node", uid)
	}
	ns, ip := w.network()
	if ns == nil {
		return nil, fmt.Errorf("pod %s has no network yet", uid)
	}
	return k.nss.dial(ctx, ns, net.JoinHostPort(ip, strconv.Itoa(port)))
}

// dialIP is dialPod for a pod IP; it refuses addresses that are not pods
// here, so nothing is ever dialed outside a pod's namespace.
func (k *kubelet) dialIP(ctx context.Context, addr string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: bad port: %w", addr, err)
	}
	k.mu.Lock()
	uid, ok := k.byIP[host]
	k.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("dial %s: no pod has IP %s on this node", addr, host)
	}
	return k.dialPod(ctx, uid, port)
}

// wait is for shutdown: workers kill their processes when ctx ends; this
// waits until they have.
func (k *kubelet) wait() { k.wg.Wait() }

// cachedToken is a projected service account token and when to renew it;
// the kubelet renews at 80% of the token's lifetime.
type cachedToken struct {
	data  []byte
	renew time.Time
}

// requestToken asks the API server for a bound token, as the kubelet does;
// if the server cannot issue tokens, a placeholder is mounted instead, which
// is harmless since pods here cannot reach the API server anyway.
func (k *kubelet) requestToken(ctx context.Context, pod *corev1.Pod, src *corev1.ServiceAccountTokenProjection) ([]byte, time.Time) {
	exp := int64(3607)
	if src.ExpirationSeconds != nil {
		exp = *src.ExpirationSeconds
	}
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	tr := &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			ExpirationSeconds: &exp,
			BoundObjectRef: &authenticationv1.BoundObjectReference{
				Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID,
			},
		},
	}
	if src.Audience != "" {
		tr.Spec.Audiences = []string{src.Audience}
	}
	resp, err := k.cs.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, tr, metav1.CreateOptions{})
	if err != nil {
		k.log.Info("service account token request failed, mounting a placeholder", "pod", pod.Namespace+"/"+pod.Name, "err", err)
		var b [16]byte
		_, _ = rand.Read(b[:])
		return []byte("simnode-placeholder-token-" + hex.EncodeToString(b[:])), time.Now().Add(time.Duration(exp) * time.Second * 8 / 10)
	}
	return []byte(resp.Status.Token), time.Now().Add(time.Duration(exp) * time.Second * 8 / 10)
}

// writePodStatus stores the status build computes from the current pod,
// re-reading the pod on conflicts. A pod that is gone needs no status.
func (k *kubelet) writePodStatus(ctx context.Context, pod *corev1.Pod, build func(*corev1.Pod) corev1.PodStatus) error {
	cur := pod
	for attempt := 0; ; attempt++ {
		st := build(cur)
		if statusEqual(&cur.Status, &st) {
			return nil
		}
		cp := cur.DeepCopy()
		cp.Status = st
		_, err := k.cs.CoreV1().Pods(cp.Namespace).UpdateStatus(ctx, cp, metav1.UpdateOptions{})
		switch {
		case err == nil, apierrors.IsNotFound(err):
			return nil
		case apierrors.IsConflict(err) && attempt < 5:
			cur, err = k.cs.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("get pod for status update: %w", err)
			}
			if cur.UID != pod.UID {
				return nil
			}
		default:
			return fmt.Errorf("update pod status: %w", err)
		}
	}
}
