// Package simnode is a simulated kubelet, scheduler and ingress controller
// for a kube-apiserver that has no nodes. It exists so that end-to-end tests
// fail, as on a real cluster, when the objects they create are wrong.
//
// Pods run for real: each container's command, resolved like Kubernetes does
// (command replaces ENTRYPOINT, args CMD, $(VAR) expansion), runs as a busybox
// process chrooted into a per-pod root that holds the busybox image and the
// pod's volumes (configMap, secret, downwardAPI, projected, emptyDir, laid out
// like the kubelet's atomic writer and kept up to date), in the pod's own
// network and UTS namespaces and a new PID namespace, as the container's
// user. Pod IPs come from 127.1.0.0/16 and are only identities: traffic to a
// pod is dialed from inside its network namespace, so a pod's listener is
// reachable nowhere else and two pods can use one port.
//
// With Config.PodNetworkDir, a real node (test/env realnode.go) runs the
// pods instead, and simnode is only the ingress and Gateway controller,
// reaching pods through that node's pod network (podnet.go). The kubelet
// imitation stays for TESTENV_NODE=sim: it needs no container runtime and
// starts faster, and TestSimnodeFidelity keeps it as faithful as the real
// node, where TestRealNode runs the same cases.
//
// The ingress controller serves the Ingresses of one class the way
// ingress-nginx does and proxies to the ready pods its backend Service
// selects, as a pod of namespace ingress-nginx whose connections the
// pods' NetworkPolicies admit or drop (networkpolicy.go). It resolves Services itself: the API server refuses loopback
// addresses in EndpointSlices, so kube-controller-manager cannot publish
// the pods' endpoints.
package simnode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
)

// Config configures Run.
type Config struct {
	// Kubeconfig is the path of a kubeconfig with cluster-admin rights.
	Kubeconfig string
	// NodeName is the Node to register; default "simnode".
	NodeName string
	// IngressAddr is the loopback host:port to serve Ingresses on; empty
	// disables the ingress controller.
	IngressAddr string
	// IngressListenFD, when not 0, is an inherited descriptor listening
	// on IngressAddr: the environment holds the port from the moment it
	// picks it, so no other program on the machine can take it while
	// this one starts.
	IngressListenFD int
	// IngressClass is the class served; default "nginx".
	IngressClass string
	// WorkDir holds pod roots and logs; default a temporary directory
	// removed on exit.
	WorkDir string
	// BusyboxPath is a static busybox binary; default "/bin/busybox".
	BusyboxPath string
	// GatewayClass, when set, makes the ingress controller also serve the
	// HTTPRoutes attached to Gateways of this class, if the class's
	// controllerName is GatewayControllerName. The Gateway API CRDs must
	// be installed.
	GatewayClass string
	// GKE also serves, on IngressAddr, the Ingresses of GKE's classes
	// (GKEClasses) the way GKE's older ingress-gce did (see gke.go).
	GKE bool
	// PodNetworkDir, when set, is the CNI data directory of a real node
	// (test/cni): a real kubelet and kube-scheduler run the pods, and
	// simnode is only the ingress and Gateway controller, reaching pods
	// through the pod network (podnet.go) instead of its own kubelet.
	PodNetworkDir string
}

const hostIP = "127.0.0.1"

// Run registers the node and runs pods and Ingresses until ctx is done,
// then kills all pod processes and returns.
func Run(ctx context.Context, cfg Config) error {
	if cfg.NodeName == "" {
		cfg.NodeName = "simnode"
	}
	if cfg.IngressClass == "" {
		cfg.IngressClass = "nginx"
	}
	if cfg.BusyboxPath == "" {
		cfg.BusyboxPath = "/bin/busybox"
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("node", cfg.NodeName)

	if cfg.WorkDir == "" {
		dir, err := os.MkdirTemp("", "simnode-")
		if err != nil {
			return fmt.Errorf("create work dir: %w", err)
		}
		defer os.RemoveAll(dir)
		cfg.WorkDir = dir
	}
	workDir, err := filepath.Abs(cfg.WorkDir)
	if err != nil {
		return fmt.Errorf("work dir: %w", err)
	}
	// Pods of an earlier run died with it (Pdeathsig); their files are stale.
	if err := os.RemoveAll(filepath.Join(workDir, "pods")); err != nil {
		return fmt.Errorf("clean work dir: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(workDir, "pods"), 0o755); err != nil {
		return fmt.Errorf("create work dir: %w", err)
	}
	busybox, applets, err := prepareBusybox(cfg.BusyboxPath, workDir)
	if err != nil {
		return err
	}

	nss, err := newNSSwitcher()
	if err != nil {
		return err
	}
	defer nss.Close()
	// Fail now, not per pod, if network namespaces are unavailable.
	probeNS, err := nss.newNetNS("simnode-check")
	if err != nil {
		return fmt.Errorf("simnode needs network namespaces (run as root): %w", err)
	}
	probeNS.Close()

	restCfg, err := clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
	if err != nil {
		return fmt.Errorf("load kubeconfig: %w", err)
	}
	restCfg.QPS, restCfg.Burst = 100, 200
	restCfg.UserAgent = "simnode"
	cs, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return fmt.Errorf("create client: %w", err)
	}

	var lbIP string
	if cfg.IngressAddr != "" {
		if lbIP, err = loopbackHost(cfg.IngressAddr); err != nil {
			return err
		}
	}

	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	kubeletRec := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubelet", Host: cfg.NodeName})
	schedRec := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: schedulerName})

	factory := informers.NewSharedInformerFactory(cs, 0)
	nodeFactory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", cfg.NodeName).String()
	}))
	podInf := factory.Core().V1().Pods()
	cmInf := factory.Core().V1().ConfigMaps()
	secInf := factory.Core().V1().Secrets()
	svcInf := factory.Core().V1().Services()
	nodeInf := nodeFactory.Core().V1().Nodes()

	k := &kubelet{
		cs:      cs,
		node:    cfg.NodeName,
		hostIP:  hostIP,
		workDir: workDir,
		busybox: busybox,
		applets: applets,
		isApp:   map[string]bool{},
		nss:     nss,
		src:     listerSource{cms: cmInf.Lister(), secs: secInf.Lister(), svcs: svcInf.Lister()},
		rec:     kubeletRec,
		log:     log.With("component", "kubelet"),
		workers: map[types.UID]*podWorker{},
		byIP:    map[string]types.UID{},
	}
	for _, a := range applets {
		k.isApp[a] = true
	}
	realNode := cfg.PodNetworkDir != ""
	var pn *podNetwork
	dial := k.dialIP
	var kubeletSrv *http.Server
	var kubeletLn net.Listener
	var kubeletPort int
	if realNode {
		pn = newPodNetwork(cfg.PodNetworkDir, nss, log.With("component", "podnet"))
		dial = pn.dial
	} else {
		if kubeletSrv, kubeletLn, kubeletPort, err = k.kubeletServer(); err != nil {
			return err
		}
		defer kubeletLn.Close()
		if _, err := registerNode(ctx, cs, cfg.NodeName, hostIP, kubeletPort); err != nil {
			return err
		}
		log.Info("node registered", "workDir", workDir, "kubeletPort", kubeletPort)
	}
	sched := &scheduler{
		cs:    cs,
		node:  cfg.NodeName,
		pods:  podInf.Lister(),
		nodes: nodeInf.Lister(),
		rec:   schedRec,
		log:   log.With("component", "scheduler"),
		queue: workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]()),
	}

	onPod := func(obj any) {
		pod, ok := obj.(*corev1.Pod)
		if !ok {
			return
		}
		if realNode {
			pn.podUpdated(pod)
			return
		}
		if pod.Spec.NodeName == cfg.NodeName {
			k.podUpdated(ctx, pod)
			return
		}
		sched.enqueue(pod)
	}
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    onPod,
		UpdateFunc: func(_, obj any) { onPod(obj) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if pod, ok := obj.(*corev1.Pod); !ok {
			} else if realNode {
				pn.podDeleted(pod)
			} else {
				k.podDeleted(pod)
			}
		},
	}); err != nil {
		return fmt.Errorf("watch pods: %w", err)
	}
	kick := func(kind string) cache.ResourceEventHandlerFuncs {
		f := func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if m, err := meta.Accessor(obj); err == nil {
				k.kickUsers(kind, m.GetNamespace(), m.GetName())
			}
		}
		return cache.ResourceEventHandlerFuncs{AddFunc: f, UpdateFunc: func(_, obj any) { f(obj) }, DeleteFunc: f}
	}
	if _, err := cmInf.Informer().AddEventHandler(kick("ConfigMap")); err != nil {
		return fmt.Errorf("watch configmaps: %w", err)
	}
	if _, err := secInf.Informer().AddEventHandler(kick("Secret")); err != nil {
		return fmt.Errorf("watch secrets: %w", err)
	}
	if _, err := nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { sched.retryAll() },
		UpdateFunc: func(any, any) { sched.retryAll() },
	}); err != nil {
		return fmt.Errorf("watch node: %w", err)
	}

	var ic *ingressController
	if cfg.IngressAddr != "" {
		ingInf := factory.Networking().V1().Ingresses()
		classInf := factory.Networking().V1().IngressClasses()
		ic = &ingressController{
			cs:      cs,
			class:   cfg.IngressClass,
			lbIP:    lbIP,
			ings:    ingInf.Lister(),
			classes: classInf.Lister(),
			svcs:    svcInf.Lister(),
			pods:    podInf.Lister(),
			// The pods' NetworkPolicies decide what the controller
			// reaches, as the CNI's policy engine would (networkpolicy.go).
			dial: (&policyEngine{
				policies: factory.Networking().V1().NetworkPolicies().Lister(),
				nss:      factory.Core().V1().Namespaces().Lister(),
				pods:     podInf.Lister(),
			}).dialer(dial),
			log:    log.With("component", "ingress"),
			status: workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]()),
		}
		ic.init()
		if cfg.GKE {
			ic.gke = newGKEController(broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "loadbalancer-controller"}))
		}
		if cfg.GatewayClass != "" {
			dc, err := dynamic.NewForConfig(restCfg)
			if err != nil {
				return fmt.Errorf("create client: %w", err)
			}
			gwFactory := dynamicinformer.NewDynamicSharedInformerFactory(dc, 0)
			nsInf := factory.Core().V1().Namespaces()
			ic.gateway = newGatewayController(dc, gwFactory, cfg.GatewayClass, lbIP, svcInf.Lister(), nsInf.Lister(), log.With("component", "gateway"))
			if err := ic.gateway.register(svcInf.Informer(), nsInf.Informer()); err != nil {
				return err
			}
			gwFactory.Start(ctx.Done())
			defer gwFactory.Shutdown()
			for typ, ok := range gwFactory.WaitForCacheSync(ctx.Done()) {
				if !ok && ctx.Err() == nil {
					return fmt.Errorf("sync informer for %v (are the Gateway API CRDs installed?)", typ)
				}
			}
		}
		if _, err := ingInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { ic.rebuild(); ic.enqueueStatus(obj) },
			UpdateFunc: func(_, obj any) { ic.rebuild(); ic.enqueueStatus(obj) },
			DeleteFunc: func(any) { ic.rebuild() },
		}); err != nil {
			return fmt.Errorf("watch ingresses: %w", err)
		}
		if _, err := classInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { ic.rebuild(); ic.enqueueAllStatus() },
			UpdateFunc: func(any, any) { ic.rebuild(); ic.enqueueAllStatus() },
			DeleteFunc: func(any) { ic.rebuild(); ic.enqueueAllStatus() },
		}); err != nil {
			return fmt.Errorf("watch ingress classes: %w", err)
		}
	}

	factory.Start(ctx.Done())
	nodeFactory.Start(ctx.Done())
	defer factory.Shutdown()
	defer nodeFactory.Shutdown()
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok && ctx.Err() == nil {
			return fmt.Errorf("sync informer for %v", typ)
		}
	}
	nodeFactory.WaitForCacheSync(ctx.Done())

	var bg []func()
	goBG := func(f func()) {
		ch := make(chan struct{})
		bg = append(bg, func() { <-ch })
		go func() {
			defer close(ch)
			f()
		}()
	}
	if realNode {
		goBG(func() { pn.run(ctx) })
	} else {
		goBG(func() { heartbeat(ctx, cs, cfg.NodeName, hostIP, kubeletPort, log.With("component", "node")) })
		goBG(func() { serveKubelet(ctx, kubeletSrv, kubeletLn) })
		goBG(func() { sched.run(ctx) })
	}
	var srv *http.Server
	if ic != nil {
		// Serving only now makes "the ingress answers HTTP" mean
		// "ready": the node is registered and the caches are synced.
		ln, err := ingressListener(cfg)
		if err != nil {
			return fmt.Errorf("listen for ingress: %w", err)
		}
		ic.rebuild()
		goBG(func() { ic.runStatus(ctx) })
		if ic.gateway != nil {
			ic.gateway.rebuild()
			goBG(func() { ic.gateway.runStatus(ctx) })
		}
		srv = &http.Server{Handler: ic, ReadHeaderTimeout: 10 * time.Second}
		goBG(func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("ingress server", "err", err)
			}
		})
		log.Info("ingress controller serving", "addr", ln.Addr().String(), "class", cfg.IngressClass)
	}

	<-ctx.Done()
	log.Info("shutting down: killing pod processes")
	if srv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = srv.Shutdown(sctx)
		cancel()
	}
	k.wait()
	for _, wait := range bg {
		wait()
	}
	return nil
}

// prepareBusybox copies busybox into the work dir, so pod roots can
// hardlink it without a pod being able to modify the host's binary, and
// lists its applets.
func prepareBusybox(src, workDir string) (string, []string, error) {
	dst := filepath.Join(workDir, "busybox")
	if err := copyFile(src, dst, 0o755); err != nil {
		return "", nil, fmt.Errorf("copy busybox: %w", err)
	}
	out, err := exec.Command(dst, "--list").Output()
	if err != nil {
		return "", nil, fmt.Errorf("list busybox applets (%s must be a static busybox): %w", src, err)
	}
	return dst, strings.Fields(string(out)), nil
}

// ingressListener is the inherited listener of cfg.IngressListenFD, or a
// new one on cfg.IngressAddr.
func ingressListener(cfg Config) (net.Listener, error) {
	if cfg.IngressListenFD == 0 {
		return net.Listen("tcp", cfg.IngressAddr)
	}
	f := os.NewFile(uintptr(cfg.IngressListenFD), "ingress-listener")
	defer f.Close() // FileListener holds a descriptor of its own
	return net.FileListener(f)
}
